"""The short report: verdict and per-class accuracy as Markdown, for pull requests."""

from __future__ import annotations

from evalsuite.class_names import title
from evalsuite.formatting import esc, fmt, interval_text, p_value_text


def per_class_rows(summary: dict) -> list[dict]:
    """One row per slice: both models' accuracy, the delta, its paired interval and counts."""
    names = summary["eval_data"].get("class_names")
    rows = []
    for sid in summary["slices"]:
        base = summary["models"]["baseline"].get(sid, {})
        cand = summary["models"]["candidate"].get(sid, {})
        delta = summary["deltas"].get(sid, {})
        paired = summary.get("paired", {}).get(sid, {})
        rows.append(
            {
                "slice": sid,
                "title": title(sid, names),
                "examples": cand.get("examples"),
                "baseline": base.get("accuracy"),
                "candidate": cand.get("accuracy"),
                "delta": delta.get("accuracy"),
                "interval": delta.get("accuracy_ci"),
                "p_value": delta.get("mcnemar_mid_p"),
                "newly_right": paired.get("newly_right"),
                "newly_wrong": paired.get("newly_wrong"),
            }
        )
    return rows


def verdict_headline(verdict: dict | None, unjudged: str) -> str:
    if verdict is None:
        return f"UNJUDGED ({unjudged})"
    return "PASSED" if verdict["passed"] else "FAILED"


def summary_markdown(manifest: dict, summary: dict, verdict: dict | None, unjudged: str = "") -> str:
    base_label, cand_label = summary["baseline"]["label"], summary["candidate"]["label"]
    lines = [f"## Gate {esc(verdict_headline(verdict, unjudged))}: `{esc(cand_label)}` vs `{esc(base_label)}`"]
    if verdict is not None:
        lines.append("")
        lines += [f"> **Warning:** {esc(warning)}" for warning in verdict.get("warnings", [])]
        failed = [c for c in verdict["checks"] if not c["passed"]]
        lines.append(f"{len(verdict['checks']) - len(failed)} of {len(verdict['checks'])} checks passed.")
        for check in failed:
            lines.append(f"- **FAIL** {esc(check['rule'])}: {esc(check['message'])}")
    data = manifest.get("stages", {}).get("data", {})
    lines += [
        "",
        f"Accuracy on {summary['eval_data']['examples']} evaluation examples "
        f"({esc(summary['eval_data']['source'])}); intervals: {esc(summary.get('confidence_intervals') or 'off')}; "
        "p: two-sided McNemar mid-p.",
        "",
        f"| slice | examples | {esc(base_label)} | {esc(cand_label)} | delta | 95% CI of delta | p | newly right | newly wrong |",
        "|---|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for row in per_class_rows(summary):
        examples = "-" if row["examples"] is None else f"{row['examples']:.0f}"
        lines.append(
            f"| {esc(row['title'])} | {examples} | {fmt(row['baseline'])} | {fmt(row['candidate'])} | "
            f"{fmt(row['delta'], True)} | {interval_text(row['interval'])} | {p_value_text(row['p_value'])} | "
            f"{_count(row['newly_right'])} | {_count(row['newly_wrong'])} |"
        )
    lines += [
        "",
        f"Data: {esc(data.get('source', '?'))}, fingerprint `{esc(data.get('fingerprint', '?'))}`, "
        f"{data.get('train_examples', '?')} train / {data.get('eval_examples', '?')} eval examples; "
        f"seed {esc(manifest.get('stages', {}).get('training', {}).get('config', {}).get('seed', '?'))}; "
        f"Beam runner {esc(summary.get('runner', '?'))}.",
    ]
    return "\n".join(lines) + "\n"


def _count(value) -> str:
    return "-" if value is None else str(value)
