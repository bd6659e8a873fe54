"""Each example's predicted class and confidence under both models, written from inside TFMA's own pass.

The changed-examples list needs every example's prediction by each model; TFMA
has them in its extracts right after its predictions extractor. This stage sits
there, passes the extracts on untouched, and on a side branch of the same Beam
pipeline writes, with Beam's own text sink, one line per batch: a table of
the digest of each serialized example, then class and confidence (the float32
the model gave) for the baseline and the candidate. The examples are not
numbered inside Beam (no order survives a pipeline), so `analysis/changed.py`
numbers them afterwards by reading the files in order and matching digests: a
read, not a second inference pass.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
from tensorflow_model_analysis import constants
from tensorflow_model_analysis.extractors import extractor, predictions_extractor

from analysis.changed import OUTCOME_DTYPE, OUTCOME_PREFIX, OUTCOME_SUFFIX, digests
from evalsuite.run.contract import BASELINE, CANDIDATE, OUTPUT_KEY

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


class _OutcomeLines(beam.DoFn):
    def process(self, extracts):
        records = extracts[constants.INPUT_KEY]
        if len(records) == 0:
            return
        outputs = {role: _predictions(extracts, role) for role in (BASELINE, CANDIDATE)}
        table = np.empty(len(records), dtype=OUTCOME_DTYPE)
        table["digest"] = digests(records)
        for role, prefix in ((BASELINE, "base"), (CANDIDATE, "cand")):
            table[f"{prefix}_class"] = outputs[role].argmax(axis=1)
            table[f"{prefix}_confidence"] = outputs[role].max(axis=1)
        # One line per batch: Beam's cost per element, paid per example, would be most of this stage.
        yield table.tobytes().hex()


class _Tap(beam.PTransform):
    def __init__(self, folder: Path):
        super().__init__()
        self._prefix = str(folder / OUTCOME_PREFIX)

    def expand(self, extracts):
        _ = (
            extracts
            | "OutcomeLines" >> beam.ParDo(_OutcomeLines())
            | "WriteOutcomeLines" >> beam.io.WriteToText(self._prefix, file_name_suffix=OUTCOME_SUFFIX)
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
