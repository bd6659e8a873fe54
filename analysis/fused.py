"""One TFMA metric for everything the gate reads, computed on numpy arrays of many examples at once.

Per slice, one combiner counts each model's confusion matrix (true class x
predicted class) and the paired table of candidate against baseline, and
sums each model's cross-entropy; every number TFMA reports (example count,
accuracy, cross-entropy, the confusion-matrix plot, the paired cells and
rates) is a derived metric of those counts, under the name the Keras and TFMA
metrics it replaces use, so thresholds, diffs and validation are TFMA's own.
`analysis/grouped_slices.py` hands it groups of examples as arrays: the work
per example is numpy's, not a Python call per example, slice, model and
metric (TFMA's Keras wrappers and plot spent most of the analysis there).

The numbers are those of the metrics it replaces, bit for bit where they are
exact: accuracy is float32(right) / float32(examples), as Keras'
MeanMetricWrapper divides its float32 total by its float32 count (counts are
exact integers in float32 below 2**24); the confusion-matrix plot has TFMA's
entries at its default threshold 0.0 (a model whose largest probability is
not above 0 predicts no class). Cross-entropy computes each example's loss as
Keras' backend does (the softmax cross-entropy of the clipped
log-probabilities, in float32, with numpy) and sums the losses exactly (as
integers in units of 2**-50), so the mean does not depend on how Beam bundles
the examples or how many workers run; Keras' float32 running sum does, and
differs from it in the last places. It is reported, never gated.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics.multi_class_confusion_matrix_metrics import (
    NO_PREDICTED_CLASS_ID,
    Matrices,
    MatrixEntryKey,
)
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

from analysis.paired import PAIRED_METRICS, CountingCombiner, model_outputs, paired_value
from evalsuite.run.contract import ACCURACY, CROSSENTROPY, EXAMPLE_COUNT, OUTPUT_KEY, PAIRED_CELLS

CONFUSION_PLOT = "multi_class_confusion_matrix_plot"
PER_MODEL = (EXAMPLE_COUNT, ACCURACY, CROSSENTROPY, CONFUSION_PLOT)
# What the Keras and TFMA metric classes it stands in for are called in an EvalConfig.
REPLACES = {
    "ExampleCount": EXAMPLE_COUNT,
    "SparseCategoricalAccuracy": ACCURACY,
    "SparseCategoricalCrossentropy": CROSSENTROPY,
    "MultiClassConfusionMatrixPlot": CONFUSION_PLOT,
}
EPSILON = 1e-7  # Keras' backend epsilon, as its cross-entropy clips
# Losses are summed as integers in units of 2**-LOSS_SCALE_BITS: exact in any order. A loss is
# below 17 (-log 1e-7), so a scaled one is below 2**55 and 256 of them sum within int64.
LOSS_SCALE_BITS = 50
SUM_CHUNK = 256
_COUNTS_NAME = "_fused_counts"


_NO_CELLS = (np.zeros(0, np.int64), np.zeros(0, np.int64))


def _merged_cells(mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]):
    """Two sparse matrices' (codes, tallies) as one, codes sorted and unique."""
    if not len(mine[0]):
        return theirs
    if not len(theirs[0]):
        return mine
    codes, inverse = np.unique(np.concatenate([mine[0], theirs[0]]), return_inverse=True)
    tallies = np.zeros(len(codes), np.int64)
    np.add.at(tallies, inverse, np.concatenate([mine[1], theirs[1]]))
    return codes, tallies


class _Counts:
    """Both models' confusion matrices (the last column: no class predicted), the paired cells, the losses.

    The matrices are sparse, (codes, tallies) with code = true class * (K + 1) + column: a class's
    slice holds one row, so K + 1 slices cost K^2 in all, not K^3 (16 GB at 1,000 classes).
    """

    __slots__ = ("classes", "cells", "right", "paired", "losses", "finite")

    def __init__(self):
        self.classes: int | None = None  # K
        self.cells = [_NO_CELLS, _NO_CELLS]  # per model, the nonzero cells of its matrix
        self.right = [0, 0]  # per model, examples whose argmax is the label (as Keras counts them)
        self.paired = np.zeros(len(PAIRED_CELLS), np.int64)
        self.losses = [0, 0]  # per model, the exact sum of the losses scaled by 2**LOSS_SCALE_BITS
        self.finite = [True, True]  # per model, every loss a finite number

    @property
    def matrices(self) -> np.ndarray | None:
        """Both matrices dense, (2, K, K + 1) int64 (for checks on few classes)."""
        if self.classes is None:
            return None
        dense = np.zeros((2, self.classes * (self.classes + 1)), np.int64)
        for index, (codes, tallies) in enumerate(self.cells):
            dense[index, codes] = tallies
        return dense.reshape(2, self.classes, self.classes + 1)

    def add(self, other: "_Counts") -> None:
        if other.classes is not None:
            self.classes = other.classes
        self.cells = [_merged_cells(mine, theirs) for mine, theirs in zip(self.cells, other.cells)]
        self.paired += other.paired
        self.right = [mine + theirs for mine, theirs in zip(self.right, other.right)]
        self.losses = [mine + theirs for mine, theirs in zip(self.losses, other.losses)]
        self.finite = [mine and theirs for mine, theirs in zip(self.finite, other.finite)]


def _arrays(element, model_name: str) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities (n, K), labels (n,)) of one model for a group of examples (or a single one)."""
    prediction, label = model_outputs(element, model_name)
    if prediction is None or label is None or isinstance(prediction, dict) or isinstance(label, dict):
        raise ValueError(f"no {OUTPUT_KEY!r} prediction or label of model {model_name!r} in the metric inputs")
    labels = np.asarray(label).reshape(-1).astype(np.int64)
    return np.asarray(prediction).reshape(len(labels), -1), labels


def _losses(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Each example's sparse categorical cross-entropy as Keras' backend computes it from probabilities, in float32:
    the softmax cross-entropy of the clipped log-probabilities (TensorFlow's kernel: max-shifted log-sum-exp)."""
    one, epsilon = np.float32(1), np.float32(EPSILON)
    logits = np.log(np.clip(probabilities.astype(np.float32), epsilon, one - epsilon))
    shifted = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]


def _exact_sum(losses: np.ndarray) -> int:
    """The losses' sum in units of 2**-LOSS_SCALE_BITS (each rounded to the unit), as an exact integer."""
    scaled = np.rint(np.ldexp(losses.astype(np.float64), LOSS_SCALE_BITS)).astype(np.int64)
    return sum(int(scaled[start : start + SUM_CHUNK].sum()) for start in range(0, len(scaled), SUM_CHUNK))


class _FusedCombiner(CountingCombiner):
    def __init__(self, key, baseline: str, candidate: str):
        super().__init__(key)
        self._models = (baseline, candidate)

    def create_accumulator(self) -> _Counts:
        return _Counts()

    def add_input(self, counts: _Counts, element) -> _Counts:
        right = []
        for index, model_name in enumerate(self._models):
            probabilities, labels = _arrays(element, model_name)
            n, classes = probabilities.shape
            counts.classes = classes
            rows = np.arange(n)
            predicted = probabilities.argmax(axis=1)
            column = np.where(probabilities[rows, predicted] > 0.0, predicted, classes)
            new_cells = np.unique(labels * (classes + 1) + column, return_counts=True)
            counts.cells[index] = _merged_cells(counts.cells[index], (new_cells[0], new_cells[1].astype(np.int64)))
            right.append(predicted == labels)
            counts.right[index] += int(np.count_nonzero(right[-1]))
            losses = _losses(probabilities, labels)
            if np.all(np.isfinite(losses)):
                counts.losses[index] += _exact_sum(losses)
            else:
                counts.finite[index] = False
        baseline, candidate = right
        cell = np.where(baseline & candidate, 0, np.where(candidate, 1, np.where(baseline, 2, 3)))
        counts.paired += np.bincount(cell, minlength=len(PAIRED_CELLS))
        return counts


def _value(counts: _Counts, name: str, index: int):
    codes, tallies = counts.cells[index]
    examples = int(tallies.sum())
    if name == EXAMPLE_COUNT:
        return float(examples)
    if name == ACCURACY:
        return float(np.float32(counts.right[index]) / np.float32(examples)) if examples else float("nan")
    if name == CROSSENTROPY:
        if not counts.finite[index]:
            return float("nan")
        # int / int is correctly rounded; the power-of-two scaling is exact.
        return (
            float(np.float32(np.ldexp(counts.losses[index] / examples, -LOSS_SCALE_BITS))) if examples else float("nan")
        )
    if name == CONFUSION_PLOT:
        classes = counts.classes or 0
        entries = {}
        for code, tally in zip(codes.tolist(), tallies.tolist()):
            actual, column = divmod(code, classes + 1)
            predicted = column if column < classes else NO_PREDICTED_CLASS_ID
            entries[MatrixEntryKey(actual, predicted)] = float(tally)
        matrices = Matrices()
        matrices[0.0] = entries
        return matrices.to_proto().multi_class_confusion_matrix_at_thresholds
    return paired_value(dict(zip(PAIRED_CELLS, counts.paired.tolist())), name)


def _computations(
    name: str,
    eval_config: config_pb2.EvalConfig,
    model_names: Iterable[str],
    output_names: Iterable[str] = ("",),
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    baseline = model_util.get_baseline_model_spec(eval_config).name
    candidate = next(spec.name for spec in eval_config.model_specs if spec.name != baseline)
    # One counting computation (TFMA computes a computation shared by several metrics once).
    counts_key = metric_types.MetricKey(name=_COUNTS_NAME, model_name=candidate, example_weighted=example_weighted)
    computations = [
        metric_types.MetricComputation(
            keys=[counts_key], preprocessors=None, combiner=_FusedCombiner(counts_key, baseline, candidate)
        )
    ]
    for model_name in model_names:
        index = 0 if model_name == baseline else 1
        kind = metric_types.PlotKey if name == CONFUSION_PLOT else metric_types.MetricKey
        key = kind(name=name, model_name=model_name, example_weighted=example_weighted)

        def result(metrics, key=key, index=index):
            return {key: _value(metrics[counts_key], key.name, index)}

        computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


class Fused(metric_types.Metric):
    """One of the fused numbers (`name` picks which); all share one counting pass."""

    def __init__(self, name: str = ACCURACY):
        if name not in PER_MODEL + PAIRED_METRICS:
            raise ValueError(f"Fused name must be one of {PER_MODEL + PAIRED_METRICS}, got {name!r}")
        super().__init__(_computations, name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False  # the gate derives exact paired intervals from the counts


metric_types.register_metric(Fused)


def fused_config(name: str, template: config_pb2.MetricConfig | None = None) -> config_pb2.MetricConfig:
    """The MetricConfig of fused metric `name`, keeping `template`'s thresholds."""
    config = config_pb2.MetricConfig()
    if template is not None:
        config.CopyFrom(template)
    config.class_name, config.module, config.config = "Fused", __name__, f'"name": "{name}"'
    return config
