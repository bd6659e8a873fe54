"""The report stage: built from saved results only; nothing is recomputed to draw."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from evalsuite import progress
from evalsuite.atomic import write_text_atomic
from evalsuite.contract import load_changed, load_summary, load_verdict
from evalsuite.fingerprints import fingerprint, fingerprint_files
from evalsuite.rundir import RunDir, relative
from evalsuite.stage_code import stage_code_fingerprint


@dataclass
class ReportResult:
    index: Path
    summary: Path
    seconds: float


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


def build_report(run: RunDir, log=progress.log) -> ReportResult:
    started = time.perf_counter()
    manifest = run.read_manifest()
    run.require_stage("analysis", "analysis")
    summary = load_summary(run.analysis_dir)
    changed = load_changed(run.analysis_dir)
    verdict, unjudged = verdict_for(run, summary)
    stages = manifest["stages"]
    report_fingerprint = fingerprint(
        summary,
        verdict,
        unjudged,
        stages.get("training", {}).get("runs"),
        stages.get("data", {}).get("fingerprint"),
        stage_code_fingerprint("report"),
    )
    record = run.reusable("report", report_fingerprint)
    if record is not None:
        index = run.path / record["outputs"]["index"]
        log(f"report: reused {index} (results unchanged)")
        return ReportResult(index=index, summary=run.path / record["outputs"]["summary"], seconds=0.0)
    run.invalidate_from("report")
    # Imported only to draw: a reused report costs no matplotlib import.
    from reports.html_report import changed_grids, confusion_figures, render
    from reports.markdown import summary_markdown
    from reports.tensorboard_summaries import write_tfma_summaries

    markdown_path = run.report_summary
    write_text_atomic(markdown_path, summary_markdown(manifest, summary, verdict, unjudged))
    # Drawn once each: the same figures go to the report and to TensorBoard.
    grids = changed_grids(run, changed, summary)
    confusion = confusion_figures(summary)
    index = run.report_index
    write_text_atomic(index, render(run, manifest, summary, verdict, unjudged, changed, grids, confusion))
    event_folders = write_tfma_summaries(run, manifest, summary, changed, grids, confusion)
    seconds = time.perf_counter() - started
    run.record_stage(
        "report",
        {
            "fingerprint": report_fingerprint,
            "seconds": round(seconds, 3),
            "outputs": {
                "index": relative(run, index),
                "summary": relative(run, markdown_path),
                "tensorboard": [relative(run, folder) for folder in event_folders],
            },
        },
    )
    log(f"report: {index} in {seconds:.1f}s")
    return ReportResult(index=index, summary=markdown_path, seconds=seconds)
