"""Each example's row, written from inside TFMA's own pass: its position, label and outcome under both models.

The changed-examples list needs every example's prediction by each model; TFMA
has them in its extracts right after its predictions extractor. This stage sits
there, passes the extracts on untouched, and on a side branch of the same Beam
pipeline writes with Beam's TFRecord sink one record per batch: a table
(`analysis/outcome_table.py`) of each example's position and label, then class
and confidence (the float32 the model gave) for the baseline and the candidate.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import extractor, predictions_extractor

from analysis.outcome_table import OUTCOME_DTYPE, OUTCOME_PREFIX, OUTCOME_SUFFIX, POSITION_FEATURE
from evalsuite.run.contract import BASELINE, CANDIDATE, LABEL_KEY, OUTPUT_KEY

STAGE_NAME = "WriteOutcomes"


def _predictions(extracts: dict, model: str) -> np.ndarray:
    """The model's class probabilities in TFMA's batched extracts: {model: array} or {model: {output: array}}."""
    prediction = extracts[constants.PREDICTIONS_KEY]
    if not isinstance(prediction, dict) or model not in prediction:
        raise ValueError(f"TFMA's extracts hold no predictions of the {model}")
    prediction = prediction[model]
    if isinstance(prediction, dict):
        prediction = prediction[OUTPUT_KEY]
    return np.asarray(prediction).reshape(len(extracts[constants.INPUT_KEY]), -1)


def _feature(extracts: dict, name: str) -> np.ndarray:
    """One value per example of a feature in TFMA's batched extracts."""
    values = np.asarray(extracts[constants.FEATURES_KEY][name])
    return values.reshape(len(values), -1)[:, 0]


def outcome_rows(extracts: dict) -> np.ndarray:
    """One batch's rows from TFMA's batched extracts."""
    outputs = {role: _predictions(extracts, role) for role in (BASELINE, CANDIDATE)}
    table = np.empty(len(extracts[constants.INPUT_KEY]), dtype=OUTCOME_DTYPE)
    table["position"] = _feature(extracts, POSITION_FEATURE)
    table["label"] = _feature(extracts, LABEL_KEY)
    for role, prefix in ((BASELINE, "base"), (CANDIDATE, "cand")):
        table[f"{prefix}_class"] = outputs[role].argmax(axis=1)
        table[f"{prefix}_confidence"] = outputs[role].max(axis=1)
    return table


class _OutcomeRecords(beam.DoFn):
    def process(self, extracts):
        if len(extracts[constants.INPUT_KEY]) == 0:
            return
        # One record per batch: Beam's cost per element, paid per example, would be most of this stage.
        yield outcome_rows(extracts).tobytes()


class _Tap(beam.PTransform):
    def __init__(self, folder: Path):
        super().__init__()
        self._prefix = str(folder / OUTCOME_PREFIX)

    def expand(self, extracts):
        _ = (
            extracts
            | "OutcomeRecords" >> beam.ParDo(_OutcomeRecords())
            | "WriteOutcomeRecords" >> beam.io.WriteToTFRecord(self._prefix, file_name_suffix=OUTCOME_SUFFIX)
        )
        return extracts


def with_outcome_tap(extractors: list, folder: Path) -> list:
    """`extractors` with the outcome stage right after TFMA's predictions extractor (batched extracts there)."""
    stages = [e.stage_name for e in extractors]
    if predictions_extractor.PREDICTIONS_EXTRACTOR_STAGE_NAME not in stages:
        raise ValueError(f"no predictions extractor among TFMA's stages ({', '.join(stages)})")
    at = stages.index(predictions_extractor.PREDICTIONS_EXTRACTOR_STAGE_NAME) + 1
    tap = extractor.Extractor(stage_name=STAGE_NAME, ptransform=_Tap(folder))
    return [*extractors[:at], tap, *extractors[at:]]
