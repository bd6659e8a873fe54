"""The report stage: built from saved results only; nothing is recomputed to draw."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from analysis.evaluate import load_summary
from evalsuite import progress
from evalsuite.errors import InputError
from evalsuite.rundir import RunDir, code_fingerprint, fingerprint, relative, write_text_atomic
from reports.html_report import write_html_report
from reports.markdown import summary_markdown
from reports.tensorboard_summaries import write_tfma_summaries


@dataclass
class ReportResult:
    index: Path
    summary: Path
    seconds: float


def load_verdict(run: RunDir) -> dict | None:
    path = run.gate_dir / "verdict.json"
    if not run.stage("gate") or not path.exists():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: corrupt verdict ({error})") from None


def build_report(run: RunDir, log=progress.log) -> ReportResult:
    started = time.perf_counter()
    manifest = run.read_manifest()
    run.require_stage("analysis", "analysis")
    summary = load_summary(run)
    verdict = load_verdict(run)
    stages = manifest["stages"]
    report_fingerprint = fingerprint(
        summary,
        verdict,
        stages.get("training", {}).get("runs"),
        stages.get("data", {}).get("fingerprint"),
        code_fingerprint("reports"),
    )
    record = run.reusable("report", report_fingerprint)
    if record is not None:
        index = run.path / record["outputs"]["index"]
        log(f"report: reused {index} (results unchanged)")
        return ReportResult(index=index, summary=run.path / record["outputs"]["summary"], seconds=0.0)
    run.forget_stage("report")
    markdown_path = run.report_dir / "summary.md"
    write_text_atomic(markdown_path, summary_markdown(manifest, summary, verdict))
    index = write_html_report(run, manifest, summary, verdict)
    event_folders = write_tfma_summaries(run, manifest, summary)
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
