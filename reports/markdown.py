"""The report's short form, RUN/report/summary.md: the verdict, accuracy per class, provenance.

The verdict and both tables come from `evalsuite.tables`, the same renderers the
gate's summary.md, the pull-request comment and TensorBoard use.
"""

from __future__ import annotations

from evalsuite.formatting import code, esc
from evalsuite.tables import P_NOTE, markdown, per_feature_tables, verdict_markdown
from reports.comment import per_class_markdown


def summary_markdown(manifest: dict, summary: dict, verdict: dict | None, unjudged: str = "") -> str:
    stages = manifest.get("stages", {})
    data = stages.get("data", {})
    seed = stages.get("training", {}).get("config", {}).get("seed", "?")
    blocks = [
        verdict_markdown(verdict, summary["candidate"]["label"], summary["baseline"]["label"], unjudged).rstrip("\n"),
        "#### Accuracy per class",
        f"Accuracy on {summary['eval_data']['examples']} evaluation examples "
        f"({esc(summary['eval_data']['source'])}); delta = candidate - baseline; intervals: "
        f"{esc(summary.get('confidence_intervals') or 'not computed')}; {esc(P_NOTE)}.",
        per_class_markdown(summary),  # beyond 20 classes, the worst first and the rest folded, as in the comment
        *[f"#### Accuracy by {esc(name)}\n\n{markdown(table)}" for name, table in per_feature_tables(summary)],
        f"Data: {esc(data.get('source', '?'))}, fingerprint {code(data.get('fingerprint', '?'))}, "
        f"{esc(data.get('train_examples', '?'))} train / {esc(data.get('eval_examples', '?'))} eval examples; "
        f"seed {esc(seed)}; Beam runner {esc(summary.get('runner', '?'))}.",
    ]
    return "\n\n".join(blocks) + "\n"
