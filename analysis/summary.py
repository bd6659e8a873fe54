"""TFMA's results made plain JSON for the gate and the report.

`summary.json`: model -> slice -> metric, with the candidate-minus-baseline
diffs, the paired counts, their intervals and each model's overall confusion
matrix (a class's slice would only repeat that class's row of it);
`validation.json`: TFMA's ValidationResult, so the gate reads it without
importing TFMA.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from analysis.models import ModelRef
from evalsuite.data.slice_features import is_cross_slice, slice_id, tfma_slice_id
from evalsuite.rules import paired_stats
from evalsuite.run.contract import (
    ACCURACY,
    BASELINE,
    CANDIDATE,
    CROSSENTROPY,
    EXAMPLE_COUNT,
    LABEL_KEY,
    NEWLY_RIGHT,
    NEWLY_WRONG,
)
from evalsuite.run.literal_paths import without_glob_characters

if TYPE_CHECKING:
    from analysis.config import AnalysisConfig


PAIRED_INTERVALS = "Tango score interval of the paired delta (95%)"


def summarize(
    tfma_path: Path,
    baseline: ModelRef,
    candidate: ModelRef,
    eval_data: dict,
    config: AnalysisConfig,
    runner: str,
    recipe=(),
) -> dict:
    """Flatten TFMA's results to model -> slice -> metric, with diffs, paired counts and intervals."""
    import tensorflow_model_analysis as tfma

    from analysis.paired import paired_counts_from_metrics
    from evalsuite.run.contract import num_classes_of, slice_ids

    num_classes = num_classes_of(eval_data)

    from analysis.recipe_counts import recipe_counts_from_metrics

    models, deltas, confusion, cross_slices, paired, recipe_slices = {}, {}, {}, {}, {}, {}
    for name in (BASELINE, CANDIDATE):
        with without_glob_characters(tfma_path) as readable:  # TFMA finds its files by glob
            result = tfma.load_eval_result(str(readable), model_name=name)
        per_slice = {}
        for slice_key, outputs in result.slicing_metrics:
            values = ((outputs or {}).get("") or {}).get("") or {}
            if is_cross_slice(slice_key):
                if name == CANDIDATE and ACCURACY in values:
                    cross_slices[tfma_slice_id(slice_key)] = {"accuracy_gap": _number(values[ACCURACY])}
                continue
            sid = tfma_slice_id(slice_key)
            per_slice[sid] = {
                "examples": _count(values.get(EXAMPLE_COUNT)),
                "accuracy": _number(values.get(ACCURACY)),
                "crossentropy": _number(values.get(CROSSENTROPY)),
            }
            if config.jackknife:
                per_slice[sid]["accuracy_ci"] = _interval(values.get(ACCURACY))
            if name == CANDIDATE:
                counts = paired_counts_from_metrics(values, _number)
                if counts is not None:
                    paired[sid] = counts
                tally = recipe_counts_from_metrics(values) if recipe else None
                if tally is not None:
                    recipe_slices[sid] = tally
                if f"{ACCURACY}_diff" in values:
                    deltas[sid] = {"accuracy": _number(values[f"{ACCURACY}_diff"])}
        models[name] = dict(sorted(per_slice.items(), key=lambda item: _slice_order(item[0])))
        confusion[name] = _confusion_matrices(result, num_classes)
    for sid, counts in paired.items():
        n = sum(counts.values())
        if sid in deltas and n:
            low, high = paired_stats.tango_interval(counts[NEWLY_RIGHT], counts[NEWLY_WRONG], n)
            deltas[sid]["accuracy_ci"] = [round(low, 6), round(high, 6)]
            deltas[sid]["mcnemar_mid_p"] = paired_stats.mcnemar_mid_p(counts[NEWLY_RIGHT], counts[NEWLY_WRONG])
    summary = {
        "baseline": {"label": baseline.label, "path": str(baseline.path), "fingerprint": baseline.fingerprint},
        "candidate": {"label": candidate.label, "path": str(candidate.path), "fingerprint": candidate.fingerprint},
        "eval_data": {
            k: eval_data.get(k)
            for k in (
                "source",
                "fingerprint",
                "files_fingerprint",
                "examples",
                "examples_per_class",
                "class_names",
                "data_spec",
                "slice_features",
            )
        },
        "confidence_intervals": PAIRED_INTERVALS + ("; per-model accuracy: TFMA jackknife" if config.jackknife else ""),
        "runner": runner,
        "slices": [sid for sid in slice_ids(num_classes) if sid in models[CANDIDATE]],
        # Per slice feature, its slices in the order of its values (evalsuite/data/slice_features.py).
        "feature_slices": {
            name: sorted((slice_id(name, value) for value in counts), key=_slice_order)
            for name, counts in sorted((eval_data.get("slice_features") or {}).items())
        },
        "models": models,
        "deltas": dict(sorted(deltas.items(), key=lambda item: _slice_order(item[0]))),
        "paired": dict(sorted(paired.items(), key=lambda item: _slice_order(item[0]))),
        "cross_slices": cross_slices,
        "confusion_matrices": confusion,
        "notes": [config.baseline_note] if config.baseline_note else [],
        "info": [config.baseline_info] if config.baseline_info else [],
    }
    if recipe:
        summary["recipe"] = {
            "seeds": [s.seed for s in recipe],
            "baselines": [s.baseline.label for s in recipe],
            "candidates": [s.candidate.label for s in recipe],
            "shared_baseline": len({s.baseline_name for s in recipe}) == 1,
            "slices": dict(sorted(recipe_slices.items(), key=lambda item: _slice_order(item[0]))),
        }
    return summary


def _slice_order(sid: str):
    """Overall, then the classes, then each slice feature's values (numbers by value)."""
    if sid == "overall":
        return (0, "", 0, sid)
    column, _, value = sid.partition("=")
    number = int(value) if value.lstrip("-").isdigit() else 0
    return (1, "", number, sid) if column == LABEL_KEY else (2, column, number, sid)


def _number(value) -> float | None:
    if value is None:
        return None
    if isinstance(value, dict):
        if "boundedValue" in value:
            return _number(value["boundedValue"].get("value"))
        if "doubleValue" in value:
            return float(value["doubleValue"])
        return None
    return float(value)


def _count(value) -> int | None:
    number = _number(value)
    return None if number is None else int(round(number))


def _interval(value) -> list[float] | None:
    if isinstance(value, dict) and "boundedValue" in value:
        bounded = value["boundedValue"]
        return [float(bounded.get("lowerBound", math.nan)), float(bounded.get("upperBound", math.nan))]
    return None


def _confusion_matrices(result, num_classes: int) -> dict[str, list[list[int]]]:
    """The overall slice's K x K matrix [true][predicted] from TFMA's confusion-matrix plot.

    Only the overall one: one per slice is K^3 numbers (210 MB of JSON at 200 classes).
    """
    matrices = {}
    for slice_key, outputs in result.plots or []:
        if slice_key:
            continue
        plot = ((outputs or {}).get("") or {}).get("") or {}
        entries = None
        for value in plot.values():
            if isinstance(value, dict) and "entries" in value:
                entries = value["entries"]
            elif isinstance(value, dict):
                for inner in value.values():
                    if isinstance(inner, list) and inner and isinstance(inner[0], dict) and "entries" in inner[0]:
                        entries = inner[0]["entries"]
        if entries is None:
            continue
        matrix = [[0] * num_classes for _ in range(num_classes)]
        for entry in entries:
            actual, predicted = int(entry.get("actualClassId", 0)), int(entry.get("predictedClassId", 0))
            if 0 <= actual < num_classes and 0 <= predicted < num_classes:
                matrix[actual][predicted] = int(round(float(entry.get("numWeightedExamples", 0))))
        matrices[tfma_slice_id(slice_key)] = matrix
    return matrices


def validation_as_json(tfma_path: Path) -> dict:
    """TFMA's ValidationResult as plain JSON, so the gate reads it without importing TFMA."""
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    with without_glob_characters(tfma_path) as readable:  # TFMA finds its files by glob
        result = tfma.load_validation_result(str(readable))
    validation = json_format.MessageToDict(result, preserving_proto_field_name=True)
    # TFMA lists slices in the order Beam's combines finished: sorted, the same results give the same file.
    for entry in validation.get("metric_validations_per_slice", []):
        entry.get("failures", []).sort(key=_canonical)
    validation.get("metric_validations_per_slice", []).sort(key=lambda entry: _canonical(entry, "slice_key", "cross_slice_key"))
    details = validation.get("validation_details", {})
    details.get("slicing_details", []).sort(key=lambda detail: _canonical(detail, "slicing_spec", "cross_slicing_spec"))
    return validation


def _canonical(value: dict, *keys: str) -> str:
    """`value`'s `keys` (all of it without keys) as one sortable string."""
    return json.dumps({key: value.get(key) for key in keys} if keys else value, sort_keys=True)
