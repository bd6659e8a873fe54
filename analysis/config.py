"""What one analysis is asked to do: which models, which data, which options."""

from __future__ import annotations

from dataclasses import dataclass

from evalsuite.run.contract import DEFAULT_BASELINE, DEFAULT_CANDIDATE, DEFAULT_SEED


@dataclass(frozen=True)
class AnalysisConfig:
    baseline: str = DEFAULT_BASELINE
    candidate: str = DEFAULT_CANDIDATE
    eval_data: str | None = None
    jackknife: bool = False
    beam_args: tuple[str, ...] = ()
    seed: int = DEFAULT_SEED
    baseline_note: str | None = None  # e.g. an empty registry's rubber-stamp, carried to the verdict as a warning
    baseline_info: str | None = None  # e.g. a candidate that is the blessed model itself, carried as a note
