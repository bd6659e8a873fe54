"""Training curves read back from the TensorBoard event files the runs wrote."""

from __future__ import annotations

from pathlib import Path

from reports.event_files import read_scalars

CURVE_TAGS = ("epoch_loss", "epoch_accuracy")


def read_curves(logs_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{'train' | 'validation': {tag: [(epoch, value), ...]}} for one run's log folder."""
    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for split in ("train", "validation"):
        folder = logs_dir / split
        if folder.is_dir():
            curves[split] = read_scalars(folder, CURVE_TAGS)
    return curves
