"""The slicing browser's numbers read from TFMA's own output with `tfma.load_eval_result`.

In the shape reports/slices_data.py reads from summary.json, plus what the
summary leaves out: every slice's confusion matrix (TFMA's confusion-matrix
plot per slice) and both models' cross-slice values. Importing TFMA costs
seconds (TensorFlow and Beam), so only `python -m reports view` reads it,
after it has printed its URLs; `disagreements` names any number where
summary.json says something else (a summary edited or left from another
analysis).
"""

from __future__ import annotations

import math
from pathlib import Path

from evalsuite.data.slice_features import is_cross_slice, tfma_slice_id
from evalsuite.errors import InputError
from evalsuite.run.contract import (
    ACCURACY,
    BOTH_RIGHT,
    BOTH_WRONG,
    CANDIDATE,
    CROSSENTROPY,
    EXAMPLE_COUNT,
    NEWLY_RIGHT,
    NEWLY_WRONG,
    PAIRED_CELLS,
    ROLES,
    class_of,
)
from evalsuite.run.literal_paths import without_glob_characters
from reports.slices_data import TFMA_SOURCE

TOLERANCE = 1e-6
MAX_LISTED = 3


def numbers_from_tfma(tfma_dir: Path) -> dict:
    """Per-model metrics, paired counts, accuracy diffs, cross slices and confusion matrices, as TFMA wrote them."""
    import tensorflow_model_analysis as tfma

    if tfma_dir.is_symlink() or not tfma_dir.is_dir():
        raise InputError(f"{tfma_dir}: no TFMA output here (run the analysis stage)")
    models: dict[str, dict] = {role: {} for role in ROLES}
    paired, deltas, cross, confusion = {}, {}, {}, {}
    for role in ROLES:
        try:
            with without_glob_characters(tfma_dir) as readable:
                result = tfma.load_eval_result(str(readable), model_name=role)
        except Exception as error:  # noqa: BLE001 - any failure of TFMA's reader is the output's, said in a line
            raise InputError(f"{tfma_dir}: TFMA's output cannot be read ({type(error).__name__}: {_first_line(error)})") from None
        for key, outputs in result.slicing_metrics:
            values = ((outputs or {}).get("") or {}).get("") or {}
            metrics = {
                "examples": _count(values.get(EXAMPLE_COUNT)),
                "accuracy": _number(values.get(ACCURACY)),
                "crossentropy": _number(values.get(CROSSENTROPY)),
            }
            if is_cross_slice(key):
                cross.setdefault(tfma_slice_id(key), {})[role] = metrics
                continue
            sid = tfma_slice_id(key)
            models[role][sid] = metrics
            if role == CANDIDATE:
                if all(cell in values for cell in PAIRED_CELLS):
                    paired[sid] = {cell: _count(values[cell]) for cell in (BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, BOTH_WRONG)}
                if f"{ACCURACY}_diff" in values:
                    deltas[sid] = _number(values[f"{ACCURACY}_diff"])
        if not models[role]:
            raise InputError(f"{tfma_dir}: TFMA's output holds no metrics for the {role} (run the analysis stage)")
        for key, outputs in result.plots or []:
            if is_cross_slice(key) or class_of(tfma_slice_id(key)) is not None:
                continue  # a class's matrix is its row of the overall one
            cells = _confusion_cells(outputs)
            if cells is not None:
                confusion.setdefault(tfma_slice_id(key), {})[role] = cells
    return {
        "models": models,
        "paired": paired,
        "deltas": deltas,
        "cross": {sid: {role: by_role.get(role, {}) for role in ROLES} for sid, by_role in sorted(cross.items())},
        "confusion": confusion,
        "source": TFMA_SOURCE,
    }


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [""])[0][:200]


def _number(value) -> float | None:
    if isinstance(value, dict):
        if "boundedValue" in value:
            return _number(value["boundedValue"].get("value"))
        value = value.get("doubleValue")
    return None if value is None else float(value)


def _count(value) -> int | None:
    number = _number(value)
    return None if number is None or not math.isfinite(number) else int(round(number))


def _confusion_cells(outputs) -> list[list[int]] | None:
    """[true, predicted, count] cells of TFMA's multi-class confusion matrix plot (its one threshold)."""
    plot = ((outputs or {}).get("") or {}).get("") or {}
    for value in plot.values():
        matrices = value.get("matrices") if isinstance(value, dict) else None
        if isinstance(matrices, list) and matrices and isinstance(matrices[0], dict):
            cells = {}
            for entry in matrices[0].get("entries", []):
                count = int(round(float(entry.get("numWeightedExamples", 0))))
                if count:
                    cell = (int(entry.get("actualClassId", 0)), int(entry.get("predictedClassId", 0)))
                    cells[cell] = cells.get(cell, 0) + count
            return [[t, p, c] for (t, p), c in sorted(cells.items())]
    return None


def disagreements(tfma: dict, summary: dict) -> list[str]:
    """Where TFMA's output and a reading of summary.json (slices_data.numbers_from_summary) differ, one line each."""
    found = []
    for role in ROLES:
        theirs, ours = tfma["models"][role], summary["models"][role]
        for sid in sorted(set(theirs) | set(ours)):
            if sid not in theirs or sid not in ours:
                found.append(f"{role} slice {sid} is only in {'TFMA' if sid in theirs else 'summary.json'}")
                continue
            for metric in ("examples", "accuracy", "crossentropy"):
                if _differ(theirs[sid].get(metric), ours[sid].get(metric)):
                    found.append(f"{role} {metric} on {sid}: TFMA {theirs[sid].get(metric)}, summary.json {ours[sid].get(metric)}")
    for sid in sorted(set(tfma["paired"]) | set(summary["paired"])):
        if tfma["paired"].get(sid) != summary["paired"].get(sid):
            found.append(f"paired counts on {sid}: TFMA {tfma['paired'].get(sid)}, summary.json {summary['paired'].get(sid)}")
    for sid in sorted(set(tfma["deltas"]) | set(summary["deltas"])):
        if _differ(tfma["deltas"].get(sid), summary["deltas"].get(sid)):
            found.append(f"delta on {sid}: TFMA {tfma['deltas'].get(sid)}, summary.json {summary['deltas'].get(sid)}")
    overall = summary["confusion"].get("overall", {})
    for role in ROLES:
        if role in overall and overall[role] != tfma["confusion"].get("overall", {}).get(role):
            found.append(f"{role} confusion matrix differs")
    return found


def _differ(a, b) -> bool:
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > TOLERANCE


def disagreement_warning(found: list[str]) -> str | None:
    if not found:
        return None
    listed = "; ".join(found[:MAX_LISTED]) + (f"; and {len(found) - MAX_LISTED} more" if len(found) > MAX_LISTED else "")
    return (
        f"TFMA's output and analysis/summary.json disagree on {len(found)} numbers ({listed}); the table shows "
        "TFMA's, and the report and the gate read the summary: rerun the analysis"
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m reports.slices_tfma TFMA_DIR`: the numbers as JSON on stdout (the view runs it in its own process)."""
    import json
    import sys

    from evalsuite.errors import run_cli

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m reports.slices_tfma RUN/analysis/tfma", file=sys.stderr)
        return 2

    def work() -> int:
        numbers = numbers_from_tfma(Path(argv[0]))
        sys.stdout.write(json.dumps(numbers, sort_keys=True) + "\n")
        sys.stdout.flush()
        return 0

    return run_cli(work)


if __name__ == "__main__":
    raise SystemExit(main())
