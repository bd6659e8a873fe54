"""The gate's rules as TFMA thresholds: the data from `evalsuite.rules.definitions` made into protos.

The verdict's point decisions are TFMA's own model validation, so what passes
here is what TFX's Evaluator would bless with the same EvalConfig.
"""

from __future__ import annotations

from evalsuite.rules.definitions import Threshold, tfma_thresholds
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import LABEL_KEY


def _proto_threshold(threshold: Threshold):
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    proto = cfg.MetricThreshold()
    if threshold.kind == "change":
        proto.change_threshold.direction = cfg.MetricDirection.HIGHER_IS_BETTER
        proto.change_threshold.absolute.value = threshold.lower
    else:
        if threshold.lower is not None:
            proto.value_threshold.lower_bound.value = threshold.lower
        if threshold.upper is not None:
            proto.value_threshold.upper_bound.value = threshold.upper
    return proto


def _slicing_spec(slice_id: str):
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    if slice_id == "overall":
        return cfg.SlicingSpec()
    column, _, value = slice_id.partition("=")
    return cfg.SlicingSpec(feature_values={column: value})


def gap_cross_slicing_spec():
    """Overall against each class: TFMA's cross-slice value is (overall - class)."""
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    return cfg.CrossSlicingSpec(
        baseline_spec=cfg.SlicingSpec(), slicing_specs=[cfg.SlicingSpec(feature_keys=[LABEL_KEY])]
    )


def attach_thresholds(metric_configs: dict, rules: GateRules, eval_data: dict) -> None:
    """Add each rule's thresholds to the MetricConfig of its metric (keyed by TFMA metric name).

    A threshold on a MetricConfig itself would apply to every slice, so each
    goes through per_slice_thresholds (or cross_slice_thresholds) instead.
    """
    from tensorflow_model_analysis.proto import config_pb2 as cfg

    total, per_class, per_feature = (eval_data[k] for k in ("examples", "examples_per_class", "slice_features"))
    for threshold in tfma_thresholds(rules, total, per_class, per_feature):
        metric = metric_configs[threshold.metric]
        if threshold.slice == "overall vs label":
            metric.cross_slice_thresholds.append(
                cfg.CrossSliceMetricThreshold(
                    cross_slicing_specs=[gap_cross_slicing_spec()], threshold=_proto_threshold(threshold)
                )
            )
        else:
            metric.per_slice_thresholds.append(
                cfg.PerSliceMetricThreshold(
                    slicing_specs=[_slicing_spec(threshold.slice)], threshold=_proto_threshold(threshold)
                )
            )
