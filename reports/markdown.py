"""The short report: verdict and per-digit accuracy as Markdown, for pull requests."""

from __future__ import annotations

from evalsuite.formatting import esc, fmt, interval_text


def per_digit_rows(summary: dict) -> list[dict]:
    """One row per slice: both models' accuracy, the delta and its interval."""
    rows = []
    for sid in summary["slices"]:
        base = summary["models"]["baseline"].get(sid, {})
        cand = summary["models"]["candidate"].get(sid, {})
        delta = summary["deltas"].get(sid, {})
        rows.append(
            {
                "slice": sid,
                "examples": cand.get("examples"),
                "baseline": base.get("accuracy"),
                "candidate": cand.get("accuracy"),
                "delta": delta.get("accuracy"),
                "interval": delta.get("accuracy_ci"),
            }
        )
    return rows


def summary_markdown(manifest: dict, summary: dict, verdict: dict | None) -> str:
    base_label, cand_label = summary["baseline"]["label"], summary["candidate"]["label"]
    lines = []
    if verdict is None:
        lines.append("## Gate: not run")
    else:
        state = "PASSED" if verdict["passed"] else "FAILED"
        failed = [c for c in verdict["checks"] if not c["passed"]]
        lines.append(f"## Gate {state}: `{esc(cand_label)}` vs `{esc(base_label)}`")
        lines.append("")
        lines.append(f"{len(verdict['checks']) - len(failed)} of {len(verdict['checks'])} checks passed.")
        for check in failed:
            lines.append(f"- **FAIL** {esc(check['rule'])}: {esc(check['message'])}")
    data = manifest.get("stages", {}).get("data", {})
    lines += [
        "",
        f"Accuracy on {summary['eval_data']['examples']} evaluation examples "
        f"({esc(summary['eval_data']['source'])}); intervals: {esc(summary.get('confidence_intervals') or 'off')}.",
        "",
        f"| slice | examples | {esc(base_label)} | {esc(cand_label)} | delta | 95% CI of delta |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for row in per_digit_rows(summary):
        lines.append(
            f"| {esc(row['slice'])} | {row['examples'] or '-':.0f} | {fmt(row['baseline'])} | {fmt(row['candidate'])} | "
            f"{fmt(row['delta'], True)} | {interval_text(row['interval'])} |"
            if row["examples"] is not None
            else f"| {esc(row['slice'])} | - | {fmt(row['baseline'])} | {fmt(row['candidate'])} | "
            f"{fmt(row['delta'], True)} | {interval_text(row['interval'])} |"
        )
    lines += [
        "",
        f"Data: {esc(data.get('source', '?'))}, fingerprint `{esc(data.get('fingerprint', '?'))}`, "
        f"{data.get('train_examples', '?')} train / {data.get('eval_examples', '?')} eval examples; "
        f"seed {esc(manifest.get('stages', {}).get('training', {}).get('config', {}).get('seed', '?'))}.",
    ]
    return "\n".join(lines) + "\n"
