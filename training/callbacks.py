"""Callbacks that let one training trajectory yield several complete runs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import keras


class LogsSoFar(keras.callbacks.Callback):
    """When epoch `epochs` (1-based) has ended, copy a TensorBoard callback's logs so far to `log_dir`.

    One trajectory, one TensorBoard callback: the logs of its first `epochs`
    epochs are the events a separate run of `epochs` epochs writes (the same
    weights, bitwise: tests/test_training.py), so the shorter run's log folder
    is a copy of them rather than a second callback writing every event and
    histogram again. Put it after the TensorBoard callback, which must have
    written the epoch first.
    """

    def __init__(self, tensorboard: keras.callbacks.TensorBoard, epochs: int, log_dir: Path):
        super().__init__()
        self.tensorboard = tensorboard
        self.epochs = epochs
        self.log_dir = log_dir

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 != self.epochs:
            return
        # Keras keeps its summary writers in `_writers` and flushes only some of them per epoch.
        for writer in self.tensorboard._writers.values():
            writer.flush()
        shutil.copytree(self.tensorboard.log_dir, self.log_dir)


class ExportAtEpoch(keras.callbacks.Callback):
    """Call `export(model)` once, when epoch `epochs` (1-based) has ended."""

    def __init__(self, epochs: int, export: Callable):
        super().__init__()
        self.epochs = epochs
        self.export = export

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epochs:
            self.export(self.model)


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch, for logs that are not a terminal (no bar, no ANSI codes)."""

    def __init__(self, log: Callable[[str], None]):
        super().__init__()
        self.log = log
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        logs = logs or {}
        parts = [
            f"{label} {logs[key]:.4f}"
            for key, label in (
                ("loss", "loss"),
                ("accuracy", "accuracy"),
                ("val_loss", "validation loss"),
                ("val_accuracy", "validation accuracy"),
            )
            if key in logs
        ]
        total = self.params.get("epochs", "?")
        self.log(
            f"training: epoch {epoch + 1}/{total} - {', '.join(parts)} ({time.perf_counter() - self._started:.1f}s)"
        )
