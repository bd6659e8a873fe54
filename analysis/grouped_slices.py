"""Slicing by groups: TFMA's unbatch and slice-key stages in one, keeping the examples batched.

TFMA's default pipeline splits every batch of predictions into one extract
per example and finds each example's slices on its own; everything after
that is Python work per example. This stage finds the slice keys of the
distinct values of the sliced-on features once per batch (with TFMA's own
slicer), groups the batch's examples that share the same slices, and emits
one extract per group holding that group's labels, predictions and weights
as arrays. The metrics downstream (`analysis/fused.py`) take arrays.
"""

from __future__ import annotations

import collections

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import extractor, slice_key_extractor, unbatch_extractor
from tensorflow_model_analysis.slicer import slicer_lib as slicer
from tensorflow_model_analysis.utils import util

KEPT = (constants.LABELS_KEY, constants.PREDICTIONS_KEY, constants.EXAMPLE_WEIGHTS_KEY)
# The default stages this one stands in for.
REPLACED = (unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME, slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME)


def _take(value, rows: np.ndarray):
    if isinstance(value, dict):
        return {key: _take(item, rows) for key, item in value.items()}
    return None if value is None else np.asarray(value)[rows]


def _slicing_specs(eval_config) -> list:
    specs = list(eval_config.slicing_specs)
    for cross in eval_config.cross_slicing_specs:
        specs += [cross.baseline_spec, *cross.slicing_specs]
    return specs


class _GroupBySlices(beam.DoFn):
    def __init__(self, eval_config):
        self._eval_config = eval_config

    def setup(self):
        specs = _slicing_specs(self._eval_config)
        self._specs = list(dict.fromkeys(slicer.SingleSliceSpec(spec=spec) for spec in specs))
        self._columns = sorted({key for spec in specs for key in [*spec.feature_keys, *spec.feature_values]})

    def process(self, batch):
        features = util.get_features_from_extracts(batch)
        size = util.batch_size(batch)
        columns = [np.asarray(features[name]).reshape(size, -1) for name in self._columns]
        rows = zip(*[[tuple(row) for row in column.tolist()] for column in columns]) if columns else [()] * size
        slices_of: dict[tuple, frozenset] = {}
        groups: dict[frozenset, list[int]] = collections.defaultdict(list)
        for index, row in enumerate(rows):
            keys = slices_of.get(row)
            if keys is None:
                values = {name: np.asarray(value) for name, value in zip(self._columns, row)}
                keys = slices_of[row] = frozenset(slicer.get_slices_for_features_dicts([], values, self._specs))
            groups[keys].append(index)
        for keys, members in groups.items():
            members = np.asarray(members)
            group = {key: _take(batch[key], members) for key in KEPT if key in batch}
            group[constants.SLICE_KEY_TYPES_KEY] = slicer.slice_keys_to_numpy_array(sorted(keys))
            yield group


def grouped_slice_key_extractor(eval_config) -> extractor.Extractor:
    """Stands in for TFMA's unbatch and slice-key extractors (under the slice-key stage's name)."""
    return extractor.Extractor(
        stage_name=slice_key_extractor.SLICE_KEY_EXTRACTOR_STAGE_NAME,
        ptransform=beam.ParDo(_GroupBySlices(eval_config)),
    )


def grouped_extractors(default_extractors: list, eval_config) -> list:
    """TFMA's default extractors with the per-example stages replaced by the grouping one."""
    return [e for e in default_extractors if e.stage_name not in REPLACED] + [grouped_slice_key_extractor(eval_config)]
