"""Callbacks that let one training trajectory yield several complete runs."""

from __future__ import annotations

from typing import Callable

import keras


class TensorBoardUntil(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback that finishes its log after `last_epoch` epochs.

    Its log folder then holds exactly what a separate run of `last_epoch`
    epochs would have written: scalars, histograms and graph.
    """

    def __init__(self, last_epoch: int, **kwargs):
        super().__init__(**kwargs)
        self.last_epoch = last_epoch
        self._finished = False

    def on_epoch_end(self, epoch, logs=None):
        if self._finished:
            return
        super().on_epoch_end(epoch, logs)
        if epoch + 1 >= self.last_epoch:
            super().on_train_end()
            self._finished = True

    def on_train_end(self, logs=None):
        if not self._finished:
            super().on_train_end(logs)
            self._finished = True


def _skip_when_finished(name: str):
    parent = getattr(keras.callbacks.TensorBoard, name)

    def method(self, *args, **kwargs):
        if not self._finished:
            return parent(self, *args, **kwargs)

    method.__name__ = name
    return method


for _hook in (
    "on_epoch_begin",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
):
    setattr(TensorBoardUntil, _hook, _skip_when_finished(_hook))


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
