"""Which verdict a report may show: the gate's, and only for exactly the results drawn beside it."""

from __future__ import annotations

from evalsuite.run.contract import load_verdict
from evalsuite.run.fingerprints import fingerprint_files
from evalsuite.run.folder import RunDir


def verdict_for(run: RunDir, summary: dict) -> tuple[dict | None, str]:
    """The gate's verdict on exactly these results, or None and why the run counts as unjudged.

    A verdict is shown only when the manifest records the gate as done and the
    verdict names the same models, data and analysis as the summary drawn beside it.
    """
    record = run.stage("gate")
    if not record or not run.verdict_path.exists():
        return None, "the gate has not judged these results"
    if record.get("verdict_fingerprint") != fingerprint_files([run.verdict_path]):
        return None, f"{run.verdict_path} is not the verdict the gate wrote (changed since)"
    verdict = load_verdict(run.gate_dir)
    if verdict["state"] != record.get("state"):
        return None, f"{run.verdict_path} says {verdict['state']}, the manifest says {record.get('state')}"
    if verdict["state"] == "unjudged":
        return None, f"the gate could not decide: {verdict.get('reason', '?')}"
    judged = verdict.get("judged", {})
    analysis = run.stage("analysis") or {}
    same = (
        judged == record.get("judged")
        and judged.get("analysis") == analysis.get("fingerprint")
        and judged.get("candidate", {}).get("fingerprint") == summary["candidate"].get("fingerprint")
        and judged.get("baseline", {}).get("fingerprint") == summary["baseline"].get("fingerprint")
        and judged.get("eval_data", {}).get("fingerprint") == summary["eval_data"].get("fingerprint")
    )
    if not same:
        return None, f"{run.verdict_path} was not made from these results"
    return verdict, ""
