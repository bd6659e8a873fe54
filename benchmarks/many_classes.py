"""The documented maximum of classes, end to end: training, analysis, gate and report as whole processes.

Random 8x8 grey images, two per class for training and two for evaluation, the
two models 1 and 2 epochs of one trajectory. Each stage's seconds and peak
memory (the largest resident set of its process or any worker it waited for);
the analysis keeps one K x K confusion matrix per model, so its memory grows
with K^2, not with K^3 (it was killed at 24 GB at 1,000 classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PER_CLASS = 2
SIDE = 8
TARGET_PEAK_MB = 4096
STAGES = ("training", "analysis", "gates", "reports")


def write_data(path: Path, classes: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), PER_CLASS)
    train, test = (rng.integers(0, 256, (len(labels), SIDE, SIDE), dtype=np.uint8) for _ in range(2))
    np.savez(path, x_train=train, y_train=labels, x_test=test, y_test=labels)
    return path


def bench(classes: int, root: Path, run_process, log) -> list[dict]:
    """One run of `classes` classes in `root`; `run_process(module, *args)` -> {"seconds", "peak_mb"}."""
    data = write_data(root / f"classes-{classes}.npz", classes)
    run_dir = root / f"run-{classes}-classes"
    arguments = {
        "training": ("--data", str(data), "--epochs", "1,2", "--histogram-freq", "0"),
        "analysis": (),
        "gates": (),
        "reports": (),
    }
    rows = []
    for stage in STAGES:
        log(f"scale: {classes:,} classes: {stage} ...")
        result = run_process(stage, "--run-dir", str(run_dir), *arguments[stage], "-q")
        rows.append({"measure": f"{stage} seconds", "size": f"{classes:,} classes", "value": result["seconds"]})
        rows.append({"measure": f"{stage} peak MB", "size": f"{classes:,} classes", "value": result["peak_mb"]})
    summary_bytes = (run_dir / "analysis" / "summary.json").stat().st_size
    report_bytes = sum(f.stat().st_size for f in (run_dir / "report").rglob("*") if f.is_file())
    rows.append({"measure": "summary.json MB", "size": f"{classes:,} classes", "value": summary_bytes / 1e6})
    rows.append({"measure": "report MB", "size": f"{classes:,} classes", "value": report_bytes / 1e6})
    peak = max(row["value"] for row in rows if row["measure"].endswith("peak MB"))
    rows.append({"measure": "peak MB, largest stage", "size": f"{classes:,} classes", "value": peak})
    return rows
