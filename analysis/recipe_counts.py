"""A TFMA metric over every seed's pair of models: what the recipe verdict needs, per slice.

With `--seeds N` the run holds N baselines and N candidates, one pair per
training seed, all scored on the same examples in the same Beam pipeline.
Per slice, one combiner counts:

- each seed's paired table (both right, newly right, newly wrong, both wrong),
  so every seed's delta, accuracies and newly-wrong rate follow exactly;
- the sum and the sum of squares, over examples, of D_i = sum over seeds of
  (candidate right - baseline right): the spread of the seed-averaged outcome
  over examples, the finite test set's share of the recipe's uncertainty
  (evalsuite/rules/recipe_stats.py);
- the churn floor's numerator, for the candidates and for the baselines: over
  ordered pairs of seeds (a, b), the examples a gets right and b wrong. An
  example k of N seeds get right adds k (N - k), so no pair is visited.

Every count is an exact integer, whatever the grouping or merge order.
"""

from __future__ import annotations

import json
from typing import Iterable

import numpy as np
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.proto import config_pb2

from analysis.fused import _arrays
from analysis.paired import CountingCombiner
from evalsuite.run.contract import (
    CANDIDATE,
    PAIRED_CELLS,
    RECIPE_CELLS,
    RECIPE_FLOOR,
    RECIPE_OUTCOMES,
)

_TALLY_NAME = "_recipe_tally"


class _Tally:
    __slots__ = ("cells", "outcomes", "floor")

    def __init__(self, seeds: int):
        self.cells = np.zeros((seeds, len(PAIRED_CELLS)), np.int64)
        self.outcomes = np.zeros(2, np.int64)  # sum of D_i, sum of D_i ** 2
        self.floor = np.zeros(2, np.int64)  # candidates, baselines

    def add(self, other: "_Tally") -> None:
        self.cells += other.cells
        self.outcomes += other.outcomes
        self.floor += other.floor


class _RecipeCombiner(CountingCombiner):
    def __init__(self, key, pairs: list[tuple[str, str]]):
        super().__init__(key)
        self._pairs = pairs

    def create_accumulator(self) -> _Tally:
        return _Tally(len(self._pairs))

    def add_input(self, tally: _Tally, element) -> _Tally:
        rights = {}
        for name in {name for pair in self._pairs for name in pair}:
            probabilities, labels = _arrays(element, name)
            rights[name] = probabilities.argmax(axis=1) == labels
        base = np.stack([rights[baseline] for baseline, _ in self._pairs])
        cand = np.stack([rights[candidate] for _, candidate in self._pairs])
        tally.add(count_outcomes(base, cand))
        return tally


def count_outcomes(base: np.ndarray, cand: np.ndarray) -> _Tally:
    """The recipe's counts of (seeds, examples) right/wrong matrices of the baselines and the candidates."""
    seeds = len(base)
    tally = _Tally(seeds)
    for seed in range(seeds):
        b, c = base[seed], cand[seed]
        cell = np.where(b & c, 0, np.where(c, 1, np.where(b, 2, 3)))
        tally.cells[seed] += np.bincount(cell, minlength=len(PAIRED_CELLS))
    outcome = cand.sum(axis=0, dtype=np.int64) - base.sum(axis=0, dtype=np.int64)
    tally.outcomes += [int(outcome.sum()), int((outcome * outcome).sum())]
    for row, right in enumerate((cand, base)):
        k = right.sum(axis=0, dtype=np.int64)
        tally.floor[row] += int((k * (seeds - k)).sum())
    return tally


def _computations(
    name: str,
    eval_config: config_pb2.EvalConfig,
    model_names: Iterable[str],
    output_names: Iterable[str] = ("",),
    example_weighted: bool = False,
    pairs: list | None = None,
) -> metric_types.MetricComputations:
    pairs = [tuple(pair) for pair in pairs or []]
    tally_key = metric_types.MetricKey(name=_TALLY_NAME, model_name=CANDIDATE, example_weighted=example_weighted)
    keys = {
        field: metric_types.MetricKey(name=field, model_name=CANDIDATE, example_weighted=example_weighted)
        for field in (RECIPE_CELLS, RECIPE_OUTCOMES, RECIPE_FLOOR)
    }

    def result(metrics):
        tally = metrics[tally_key]
        return {keys[RECIPE_CELLS]: tally.cells, keys[RECIPE_OUTCOMES]: tally.outcomes, keys[RECIPE_FLOOR]: tally.floor}

    return [
        metric_types.MetricComputation(
            keys=[tally_key], preprocessors=None, combiner=_RecipeCombiner(tally_key, pairs)
        ),
        metric_types.DerivedMetricComputation(keys=list(keys.values()), result=result),
    ]


class RecipeCounts(metric_types.Metric):
    """Every seed's paired table, the seed-averaged outcome's sums and the churn floor, per slice."""

    def __init__(self, pairs: list | None = None, name: str = "recipe_counts"):
        super().__init__(_computations, name=name, pairs=pairs)

    @property
    def compute_confidence_interval(self) -> bool:
        return False  # the recipe's interval is worked out from these counts


metric_types.register_metric(RecipeCounts)


def recipe_metrics_spec(pairs: list[tuple[str, str]]) -> config_pb2.MetricsSpec:
    """The MetricsSpec that counts `pairs` ((baseline, candidate) model names, one per seed)."""
    config = config_pb2.MetricConfig(
        class_name="RecipeCounts", module=__name__, config=f'"pairs": {json.dumps([list(p) for p in pairs])}'
    )
    return config_pb2.MetricsSpec(metrics=[config], model_names=[CANDIDATE])


def recipe_counts_from_metrics(values: dict) -> dict | None:
    """One slice's recipe counts from TFMA's loaded metrics (arrays as TFMA writes them), or None if absent."""
    if not all(name in values for name in (RECIPE_CELLS, RECIPE_OUTCOMES, RECIPE_FLOOR)):
        return None
    return counts_as_json(_array(values[RECIPE_CELLS]), _array(values[RECIPE_OUTCOMES]), _array(values[RECIPE_FLOOR]))


def counts_as_json(cells: np.ndarray, outcomes: np.ndarray, floor: np.ndarray) -> dict:
    """One slice's recipe counts as summary.json keeps them."""
    return {
        "per_seed": [dict(zip(PAIRED_CELLS, (int(x) for x in row))) for row in cells.reshape(-1, len(PAIRED_CELLS))],
        "outcome_sum": int(outcomes[0]),
        "outcome_square_sum": int(outcomes[1]),
        "floor_candidates": int(floor[0]),
        "floor_baselines": int(floor[1]),
    }


def _array(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, dict) and "arrayValue" in value:
        array = value["arrayValue"]
        numbers = array.get("int64Values") or array.get("int32Values") or []
        return np.asarray([int(x) for x in numbers], np.int64).reshape([int(d) for d in array.get("shape", [-1])])
    raise ValueError(f"not a TFMA array value: {str(value)[:80]}")
