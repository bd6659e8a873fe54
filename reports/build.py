"""The report stage: built from saved results only; nothing is recomputed to draw."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from evalsuite import progress
from evalsuite.run.atomic import write_text_atomic
from evalsuite.run.contract import load_changed, load_discovered, load_summary
from evalsuite.run.fingerprints import fingerprint
from evalsuite.run.folder import RunDir, relative
from evalsuite.run.stage_code import stage_code_fingerprint
from reports.judged import verdict_for


@dataclass
class ReportResult:
    index: Path
    summary: Path
    seconds: float


def build_report(run: RunDir, log=progress.log) -> ReportResult:
    started = time.perf_counter()
    manifest = run.read_manifest()
    run.require_stage("analysis", "analysis")
    summary = load_summary(run.analysis_dir)
    changed = load_changed(run.analysis_dir)
    discovered = load_discovered(run.analysis_dir)
    verdict, unjudged = verdict_for(run, summary)
    stages = manifest["stages"]
    report_fingerprint = fingerprint(
        summary,
        changed,  # the slicing browser shows each changed example
        discovered,
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
    from reports.discovered_section import discovered_html, discovered_images
    from reports.html_report import changed_grids, confusion_figures, render
    from reports.markdown import summary_markdown
    from reports.slices_page import write_slices_page
    from reports.tensorboard_summaries import write_tfma_summaries

    markdown_path = run.report_summary
    write_text_atomic(markdown_path, summary_markdown(manifest, summary, verdict, unjudged))
    # Drawn once each: the same figures go to the report and to TensorBoard.
    grids = changed_grids(run, changed, summary)
    confusion = confusion_figures(summary)
    index = run.report_index
    where_worse = discovered_html(discovered, discovered_images(run, changed, discovered, summary))
    write_text_atomic(
        index, render(run, manifest, summary, verdict, unjudged, changed, grids, confusion, where_worse)
    )
    slices = write_slices_page(run, summary, changed, discovered)
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
                "slices": relative(run, slices),
                "tensorboard": [relative(run, folder) for folder in event_folders],
            },
        },
    )
    log(f"report: {index} in {seconds:.1f}s")
    return ReportResult(index=index, summary=markdown_path, seconds=seconds)
