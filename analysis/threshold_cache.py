"""TFMA's thresholds worked out once per EvalConfig, not once per slice.

TFMA 0.52's validator rebuilds every threshold of the EvalConfig for each slice
it checks (`metrics_validator.validate_metrics`). With a per-class threshold on
each of K classes that is K slices x K thresholds: 2 million threshold records
at 1,000 classes, about 100 s of a 1,000-example analysis. The function is pure
in its arguments, so its result is kept per serialized config: the same
thresholds, the same validation, bit for bit.
"""

from __future__ import annotations

import collections

_KEPT = 4  # configs remembered; one analysis uses one


def install() -> None:
    """Route TFMA's threshold lookup through the cache (idempotent, per process)."""
    from tensorflow_model_analysis.metrics import metric_specs

    original = metric_specs.metric_thresholds_from_metrics_specs
    if getattr(original, "_evalsuite_cached", False):
        return
    kept: collections.OrderedDict = collections.OrderedDict()

    def cached(metrics_specs, eval_config=None):
        key = (
            tuple(spec.SerializeToString(deterministic=True) for spec in metrics_specs),
            None if eval_config is None else eval_config.SerializeToString(deterministic=True),
        )
        if key not in kept:
            # Computed on private copies: the protos it hands out never change under the cache.
            specs = [type(spec).FromString(data) for spec, data in zip(metrics_specs, key[0])]
            config = None if eval_config is None else type(eval_config).FromString(key[1])
            kept[key] = original(specs, eval_config=config)
            while len(kept) > _KEPT:
                kept.popitem(last=False)
        # A fresh mapping of the same lists: callers copy, but never share a mutable result.
        return collections.defaultdict(list, kept[key])

    cached._evalsuite_cached = True
    metric_specs.metric_thresholds_from_metrics_specs = cached
