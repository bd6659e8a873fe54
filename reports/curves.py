"""Training curves read back from the TensorBoard event files the runs wrote."""

from __future__ import annotations

from pathlib import Path

CURVE_TAGS = ("epoch_loss", "epoch_accuracy")


def read_curves(logs_dir: Path) -> dict[str, dict[str, list[tuple[int, float]]]]:
    """{'train' | 'validation': {tag: [(epoch, value), ...]}} for one run's log folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util import tensor_util

    curves: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for split in ("train", "validation"):
        folder = logs_dir / split
        if not folder.is_dir():
            continue
        accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "scalars": 0})
        accumulator.Reload()
        tags = accumulator.Tags()
        series = {}
        for tag in CURVE_TAGS:
            if tag in tags.get("tensors", []):
                events = accumulator.Tensors(tag)
                series[tag] = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in events]
            elif tag in tags.get("scalars", []):
                series[tag] = [(e.step, float(e.value)) for e in accumulator.Scalars(tag)]
        curves[split] = series
    return curves
