"""A TFMA metric that compares the two models example by example.

Per slice it counts the four cells of the paired table (both right, newly
right, newly wrong, both wrong; "newly" is the candidate against the
baseline) and the churn rates (flip rate, newly-wrong rate). It runs inside
the same Beam pipeline as every other metric, so it scales with the runner.

Built as TFMA's own `flip_metrics` are: a combiner with no preprocessor
receives every model's label and prediction for each example; each count is
its own metric (thresholds look up a key named after the metric), all
sharing one counting computation, which TFMA computes once.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis.metrics import metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.utils import model_util

from evalsuite.run.contract import BOTH_RIGHT, BOTH_WRONG, LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG, OUTPUT_KEY, PAIRED_CELLS

FLIP_RATE = "flip_rate"
NEWLY_WRONG_RATE = "newly_wrong_rate"
PAIRED_METRICS = (*PAIRED_CELLS, FLIP_RATE, NEWLY_WRONG_RATE)
_COUNTS_NAME = "_paired_outcome_counts"


@dataclasses.dataclass
class _Counts:
    both_right: int = 0
    newly_right: int = 0
    newly_wrong: int = 0
    both_wrong: int = 0

    def add(self, other: "_Counts") -> None:
        for cell in PAIRED_CELLS:
            setattr(self, cell, getattr(self, cell) + getattr(other, cell))

    @property
    def examples(self) -> int:
        return sum(getattr(self, cell) for cell in PAIRED_CELLS)


def _argmax_right(inputs, eval_config, model_name: str) -> Iterable[bool]:
    fast = _argmax_right_fast(inputs, model_name)
    if fast is not None:
        return fast
    return [
        int(np.argmax(np.asarray(prediction).reshape(-1))) == int(np.asarray(label).reshape(-1)[0])
        for label, prediction, _ in metric_util.to_label_prediction_example_weight(
            inputs, eval_config=eval_config, model_name=model_name, flatten=False, allow_none=False
        )
    ]


def model_outputs(inputs, model_name: str):
    """(prediction, label) of one model in TFMA's metric inputs; None where the inputs do not hold them."""
    prediction, label = inputs.prediction, inputs.label
    if isinstance(prediction, dict):
        prediction = prediction.get(model_name, prediction)
        if isinstance(prediction, dict):
            prediction = prediction.get(OUTPUT_KEY)
    if isinstance(label, dict):
        label = label.get(model_name, label)
        if isinstance(label, dict):
            label = label.get(LABEL_KEY)
    return prediction, label


def _argmax_right_fast(inputs, model_name: str) -> list[bool] | None:
    """The common case read directly (one example, a K-way probability vector, one int label).

    TFMA's general helper spends most of this metric's time on lookups that do not
    apply here; anything else falls back to it.
    """
    prediction, label = model_outputs(inputs, model_name)
    if prediction is None or label is None or isinstance(prediction, dict) or isinstance(label, dict):
        return None
    prediction, label = np.asarray(prediction), np.asarray(label)
    if prediction.ndim != 1 or prediction.size < 2 or label.size != 1:
        return None
    return [int(np.argmax(prediction)) == int(label.reshape(-1)[0])]


class CountingCombiner(beam.CombineFn):
    """A combiner whose accumulator holds counts with an `add(other)`: merged into a fresh one, output under its key."""

    def __init__(self, key):
        self._key = key

    def merge_accumulators(self, accumulators: Iterable):
        # A fresh accumulator: TFMA's own flip metrics start from the first one and
        # count it twice when handed a list (as the jackknife does).
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged.add(accumulator)
        return merged

    def extract_output(self, accumulator) -> dict:
        return {self._key: accumulator}


class _PairedCountsCombiner(CountingCombiner):
    """Counts the paired table of one candidate against the baseline."""

    def __init__(self, key, eval_config, baseline_model_name: str, model_name: str):
        super().__init__(key)
        self._eval_config = eval_config
        self._baseline = baseline_model_name
        self._candidate = model_name

    def create_accumulator(self) -> _Counts:
        return _Counts()

    def add_input(self, accumulator: _Counts, element) -> _Counts:
        baseline = _argmax_right(element, self._eval_config, self._baseline)
        candidate = _argmax_right(element, self._eval_config, self._candidate)
        if len(baseline) != len(candidate):
            raise ValueError("baseline and candidate gave different numbers of predictions for one example")
        for base_right, cand_right in zip(baseline, candidate):
            if base_right and cand_right:
                accumulator.both_right += 1
            elif cand_right:
                accumulator.newly_right += 1
            elif base_right:
                accumulator.newly_wrong += 1
            else:
                accumulator.both_wrong += 1
        return accumulator


def paired_value(cells: dict[str, int], name: str) -> float:
    """One paired metric from the four cells: a cell's count, the flip rate or the newly-wrong rate."""
    examples = sum(cells[cell] for cell in PAIRED_CELLS)
    if name in PAIRED_CELLS:
        return float(cells[name])
    if not examples:
        return float("nan")
    if name == FLIP_RATE:
        return (cells[NEWLY_RIGHT] + cells[NEWLY_WRONG]) / examples
    if name == NEWLY_WRONG_RATE:
        return cells[NEWLY_WRONG] / examples
    raise ValueError(f"unknown paired metric {name!r}")


def _value(counts: _Counts, name: str) -> float:
    return paired_value(dataclasses.asdict(counts), name)


class PairedOutcome(metric_types.Metric):
    """One cell or rate of the paired table (`name` picks which)."""

    def __init__(self, name: str = NEWLY_WRONG):
        if name not in PAIRED_METRICS:
            raise ValueError(f"PairedOutcome name must be one of {PAIRED_METRICS}, got {name!r}")
        super().__init__(_paired_computations, name=name)

    @property
    def compute_confidence_interval(self) -> bool:
        return False  # the gate derives exact paired intervals from the counts


def _paired_computations(
    name: str,
    eval_config: config_pb2.EvalConfig,
    model_names: Iterable[str],
    output_names: Iterable[str] = ("",),
    example_weighted: bool = False,
) -> metric_types.MetricComputations:
    baseline_spec = model_util.get_baseline_model_spec(eval_config)
    baseline = baseline_spec.name if baseline_spec else None
    computations = []
    for model_name in model_names:
        if baseline is None or model_name == baseline:
            continue
        for output_name in output_names or ("",):
            counts_key = metric_types.MetricKey(
                name=_COUNTS_NAME, model_name=model_name, output_name=output_name, example_weighted=example_weighted
            )
            computations.append(
                metric_types.MetricComputation(
                    keys=[counts_key],
                    preprocessors=None,
                    combiner=_PairedCountsCombiner(counts_key, eval_config, baseline, model_name),
                )
            )
            key = metric_types.MetricKey(
                name=name, model_name=model_name, output_name=output_name, example_weighted=example_weighted
            )

            def result(metrics, key=key, counts_key=counts_key):
                return {key: _value(metrics[counts_key], key.name)}

            computations.append(metric_types.DerivedMetricComputation(keys=[key], result=result))
    return computations


def paired_metric_configs() -> dict:
    """One MetricConfig per paired metric, keyed by its TFMA name."""
    return {
        name: config_pb2.MetricConfig(class_name="PairedOutcome", module=__name__, config=f'"name": "{name}"')
        for name in PAIRED_METRICS
    }


def paired_counts_from_metrics(values: dict, number) -> dict | None:
    """The four paired counts of one slice from TFMA's loaded metrics, or None if absent."""
    if not all(cell in values for cell in PAIRED_CELLS):
        return None
    return {cell: int(round(number(values[cell]))) for cell in (BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, BOTH_WRONG)}
