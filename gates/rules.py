"""Gate rules: loaded from TOML, validated, and turned into TFMA thresholds.

The verdict is TFMA's own model validation, so what passes here is what TFX's
Evaluator would bless with the same EvalConfig.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import tomllib

from evalsuite.errors import InputError

DEFAULT_RULES_FILE = Path("gate.toml")
# TFMA computes in float32 (0.8999999761 for 0.9): value bounds get this much slack.
FLOAT_SLACK = 1e-6
NUM_CLASSES = 10

_SCHEMA: dict[str, dict[str, type]] = {
    "overall": {"min_improvement": float, "min_accuracy": float},
    "per_digit": {"max_drop": float},
    "gap_to_overall": {"max_gap": float},
    "significance": {"require": bool},
}

# What applies when no gate.toml is found: the same as the shipped gate.toml.
DEFAULT_RULES: dict[str, dict[str, Any]] = {
    "overall": {"min_improvement": 0.0},
    "per_digit": {"max_drop": 0.03},
    "significance": {"require": False},
}


@dataclass(frozen=True)
class GateRules:
    """Each rule is on when its number is set (None: off)."""

    min_improvement: float | None = None
    min_accuracy: float | None = None
    max_drop: float | None = None
    max_gap: float | None = None
    require_significant: bool = False
    source: str = "built-in defaults"

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def any_rule(self) -> bool:
        return any(
            value is not None for value in (self.min_improvement, self.min_accuracy, self.max_drop, self.max_gap)
        )


def load_rules(path: Path | None = None) -> GateRules:
    """Rules from `path`, else ./gate.toml, else the built-in defaults."""
    if path is None:
        if not DEFAULT_RULES_FILE.is_file():
            return parse_rules(DEFAULT_RULES, "built-in defaults")
        path = DEFAULT_RULES_FILE
    try:
        table = tomllib.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such rules file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read rules ({error})") from None
    except tomllib.TOMLDecodeError as error:
        raise InputError(f"{path}: not valid TOML ({error})") from None
    return parse_rules(table, str(path))


def parse_rules(table: dict, source: str) -> GateRules:
    """Validate a rules table; unknown keys, wrong types and impossible bounds are errors."""
    values: dict[str, Any] = {}
    for section, body in table.items():
        if section not in _SCHEMA:
            raise InputError(f"{source}: unknown section [{section}] (known: {', '.join(_SCHEMA)})")
        if not isinstance(body, dict):
            raise InputError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            name = f"{section}.{key}"
            if key not in _SCHEMA[section]:
                raise InputError(f"{source}: unknown key {name} (known: {', '.join(_SCHEMA[section])})")
            expected = _SCHEMA[section][key]
            if expected is bool:
                if not isinstance(value, bool):
                    raise InputError(f"{source}: {name} must be true or false, got {value!r}")
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise InputError(f"{source}: {name} must be a number, got {value!r}")
                if not math.isfinite(value) or not 0.0 <= value <= 1.0:
                    raise InputError(f"{source}: {name} must be a fraction in 0..1, got {value!r}")
                if key == "min_improvement" and value >= 1.0:
                    raise InputError(f"{source}: {name} = {value!r} can never be met (accuracy is at most 1)")
                value = float(value)
            values[name] = value
    rules = GateRules(
        min_improvement=values.get("overall.min_improvement"),
        min_accuracy=values.get("overall.min_accuracy"),
        max_drop=values.get("per_digit.max_drop"),
        max_gap=values.get("gap_to_overall.max_gap"),
        require_significant=values.get("significance.require", False),
        source=source,
    )
    if not rules.any_rule:
        raise InputError(f"{source}: no rules configured; a gate without rules refuses to bless")
    if rules.require_significant and rules.min_improvement is None:
        raise InputError(f"{source}: significance.require needs overall.min_improvement")
    return rules


def strict_change_bound(min_improvement: float, examples: int) -> float:
    """TFMA's change thresholds are inclusive (diff >= bound); make "diff > m" exact.

    Accuracy on n examples moves in steps of 1/n, so "diff > m" equals
    "diff >= the midpoint between the last step at or below m and the next".
    The midpoint also absorbs TFMA's float32 noise (0.04000002 for 0.04).
    """
    steps = math.floor(min_improvement * examples + 1e-9)
    return (steps + 0.5) / examples


def inclusive_drop_bound(max_drop: float, examples: int) -> float:
    """ "diff >= -max_drop", with the bound moved half a step down to absorb float noise."""
    if examples <= 0:
        return -max_drop
    steps = math.ceil(-max_drop * examples - 1e-9)
    return (steps - 0.5) / examples


def slice_id(slice_key) -> str:
    """'overall', 'label=3' or 'overall vs label=3' for a TFMA (cross-)slice key."""
    if not slice_key:
        return "overall"
    if is_cross_slice(slice_key):
        return f"{slice_id(slice_key[0])} vs {slice_id(slice_key[1])}"
    return ",".join(f"{column}={value}" for column, value in slice_key)


def is_cross_slice(slice_key) -> bool:
    """TFMA cross-slice keys are (baseline_key, comparison_key); plain keys hold (column, value)."""
    return len(slice_key) == 2 and all(
        isinstance(part, tuple) and all(isinstance(x, tuple) for x in part) for part in slice_key
    )


def tfma_metric_config(rules: GateRules, total_examples: int, examples_per_class: dict[str, int]):
    """The SparseCategoricalAccuracy MetricConfig carrying every rule as a TFMA threshold."""
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    metric = cfg.MetricConfig(class_name="SparseCategoricalAccuracy")
    if rules.min_improvement is not None or rules.min_accuracy is not None:
        threshold = cfg.MetricThreshold()
        if rules.min_improvement is not None:
            threshold.change_threshold.direction = cfg.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = strict_change_bound(rules.min_improvement, total_examples)
        if rules.min_accuracy is not None:
            threshold.value_threshold.lower_bound.value = rules.min_accuracy - FLOAT_SLACK
        # A threshold on the MetricConfig itself would apply to every slice.
        metric.per_slice_thresholds.append(
            cfg.PerSliceMetricThreshold(slicing_specs=[cfg.SlicingSpec()], threshold=threshold)
        )
    if rules.max_drop is not None:
        for digit in range(NUM_CLASSES):
            count = examples_per_class.get(str(digit), 0)
            threshold = cfg.MetricThreshold()
            threshold.change_threshold.direction = cfg.MetricDirection.HIGHER_IS_BETTER
            threshold.change_threshold.absolute.value = inclusive_drop_bound(rules.max_drop, count)
            metric.per_slice_thresholds.append(
                cfg.PerSliceMetricThreshold(
                    slicing_specs=[cfg.SlicingSpec(feature_values={"label": str(digit)})], threshold=threshold
                )
            )
    if rules.max_gap is not None:
        threshold = cfg.MetricThreshold()
        # TFMA's cross-slice value is (overall - digit).
        threshold.value_threshold.upper_bound.value = rules.max_gap + FLOAT_SLACK
        metric.cross_slice_thresholds.append(
            cfg.CrossSliceMetricThreshold(cross_slicing_specs=[gap_cross_slicing_spec()], threshold=threshold)
        )
    return metric


def gap_cross_slicing_spec():
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    return cfg.CrossSlicingSpec(
        baseline_spec=cfg.SlicingSpec(), slicing_specs=[cfg.SlicingSpec(feature_keys=["label"])]
    )
