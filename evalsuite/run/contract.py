"""The run folder's contract: every artifact's name, the serving signature, and
checked readers of what one stage hands the next.

Stages never import each other; they meet here and in the files this module
names. A reader validates shape and types before anyone trusts a number, so a
file that parses but is wrong is one clear `InputError` (exit 2), never a
traceback or a verdict drawn from it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from evalsuite import safe_files
from evalsuite.errors import InputError

# The serving signature every SavedModel offers (what TFMA calls).
SIGNATURE = "serving_default"
SIGNATURE_INPUT = "examples"
OUTPUT_KEY = "probabilities"
IMAGE_KEY = "image"
LABEL_KEY = "label"

# Model roles in the analysis and the verdict.
BASELINE, CANDIDATE = "baseline", "candidate"

# The reference case's defaults, in one place: one seed, and the 3- and 6-epoch models of one trajectory.
DEFAULT_SEED = 42
DEFAULT_EPOCHS = (3, 6)


def run_name(epochs: int, seed: int | None = None) -> str:
    """The name of the model (and its logs) trained for `epochs` epochs: epochs-6.

    A recipe's further seeds (`--seeds N`) carry theirs: epochs-6-seed-43. The
    first seed's models keep the plain names, so one seed is today's run.
    """
    return f"epochs-{epochs}" if seed is None else f"epochs-{epochs}-seed-{seed}"


def seed_of(name: str) -> int | None:
    """The seed in a further seed's run name (epochs-6-seed-43 -> 43); None for a plain name."""
    head, _, tail = name.rpartition("-seed-")
    return int(tail) if head.startswith("epochs-") and tail.isdigit() else None


DEFAULT_BASELINE, DEFAULT_CANDIDATE = run_name(min(DEFAULT_EPOCHS)), run_name(max(DEFAULT_EPOCHS))
ROLES = (BASELINE, CANDIDATE)

# TFMA metric names as they appear in TFMA's output.
RECIPE_CELLS, RECIPE_OUTCOMES, RECIPE_FLOOR = "recipe_paired_cells", "recipe_outcome_sums", "recipe_churn_floor"
ACCURACY = "sparse_categorical_accuracy"
CROSSENTROPY = "sparse_categorical_crossentropy"
EXAMPLE_COUNT = "example_count"

# Artifact names inside the run folder.
MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
MODELS_DIR = "models"
LOGS_DIR = "logs"
ANALYSIS_DIR = "analysis"
TFMA_DIR = "tfma"
SUMMARY_NAME = "summary.json"
VALIDATION_NAME = "validation.json"
CHANGED_NAME = "changed.json"
DISCOVERED_NAME = "discovered.json"
GATE_DIR = "gate"
VERDICT_NAME = "verdict.json"
JUNIT_NAME = "junit.xml"
GATE_SUMMARY_NAME = "summary.md"
REPORT_DIR = "report"
REPORT_INDEX_NAME = "index.html"
REPORT_SUMMARY_NAME = "summary.md"
TENSORBOARD_EVAL_RUN = "tfma"

# JSON files a reader accepts; anything larger is not ours (a hostile file must not eat memory).
MAX_JSON_BYTES = safe_files.MAX_JSON_BYTES


def slice_ids(num_classes: int) -> list[str]:
    """The slices every analysis has: overall, then one per class."""
    return ["overall"] + class_slices(num_classes)


def class_slices(num_classes: int) -> list[str]:
    return [class_slice(c) for c in range(num_classes)]


def num_classes_of(eval_data: dict) -> int:
    """K, from the data spec an analysis summary's eval_data carries (older summaries: its classes)."""
    spec = eval_data.get("data_spec")
    if isinstance(spec, dict) and isinstance(spec.get("num_classes"), int):
        return spec["num_classes"]
    return len(eval_data.get("examples_per_class") or {})


def class_slice(class_id: int) -> str:
    return f"{LABEL_KEY}={class_id}"


def class_of(slice_id: str) -> int | None:
    """3 for 'label=3'; None for 'overall'."""
    column, _, value = slice_id.partition("=")
    return int(value) if column == LABEL_KEY and value.isdigit() else None


def read_json(path: Path, what: str, *, missing: str) -> Any:
    """A JSON file, through the bounded reader: missing, corrupt, piped or oversized is an InputError naming it."""
    try:
        return json.loads(safe_files.read_text(path, MAX_JSON_BYTES, what))
    except FileNotFoundError:
        raise InputError(f"{path}: missing {what} ({missing})") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: corrupt {what} ({error})") from None


def _require(condition: bool, path: Path, what: str, problem: str) -> None:
    if not condition:
        raise InputError(f"{path}: corrupt {what} ({problem})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_count(value: Any, at_most: int | None = None) -> bool:
    """A non-negative int (JSON's true and false are not counts), optionally bounded."""
    return (
        isinstance(value, int) and not isinstance(value, bool) and value >= 0 and (at_most is None or value <= at_most)
    )


def _is_fraction(value: Any) -> bool:
    return _is_number(value) and -1e-6 <= value <= 1 + 1e-6


def load_summary(analysis_dir: Path) -> dict:
    """analysis/summary.json, checked: every slice of both models with counts and accuracies in range."""
    path = analysis_dir / SUMMARY_NAME
    what = "analysis summary"
    summary = read_json(path, what, missing="run the analysis stage")
    _require(isinstance(summary, dict), path, what, "not an object")
    for key in ("baseline", "candidate", "eval_data", "models", "deltas", "slices"):
        _require(key in summary, path, what, f"no {key!r}")
    eval_data = summary["eval_data"]
    _require(isinstance(eval_data, dict), path, what, "'eval_data' is not an object")
    total = eval_data.get("examples")
    _require(_is_count(total) and total > 0, path, what, "bad example count")
    per_class = eval_data.get("examples_per_class")
    _require(isinstance(per_class, dict), path, what, "bad examples_per_class")
    for role in ROLES:
        _require(isinstance(summary[role], dict) and isinstance(summary[role].get("label"), str), path, what, role)
        slices = summary["models"].get(role) if isinstance(summary["models"], dict) else None
        _require(isinstance(slices, dict), path, what, f"no results for the {role}")
        for sid, metrics in slices.items():
            _require(isinstance(metrics, dict), path, what, f"{role} {sid} is not an object")
            accuracy, examples = metrics.get("accuracy"), metrics.get("examples")
            if accuracy is not None:
                _require(_is_fraction(accuracy), path, what, f"{role} accuracy on {sid} is {accuracy!r}")
            if examples is not None:
                _require(
                    _is_number(examples) and 0 <= examples <= total,
                    path,
                    what,
                    f"{role} example count on {sid} is {examples!r}",
                )
    _require(isinstance(summary["deltas"], dict), path, what, "'deltas' is not an object")
    for sid, delta in summary["deltas"].items():
        _require(isinstance(delta, dict), path, what, f"delta on {sid} is not an object")
        value = delta.get("accuracy")
        if value is not None:
            _require(_is_number(value) and -1 <= value <= 1, path, what, f"delta on {sid} is {value!r}")
    paired = summary.get("paired", {})
    _require(isinstance(paired, dict), path, what, "'paired' is not an object")
    for sid, counts in paired.items():
        _require(isinstance(counts, dict), path, what, f"paired counts on {sid} are not an object")
        for cell in PAIRED_CELLS:
            value = counts.get(cell)
            _require(_is_count(value, total), path, what, f"paired count {cell} on {sid} is {value!r}")
    return summary


def load_validation(analysis_dir: Path) -> dict:
    """analysis/validation.json: TFMA's ValidationResult as plain JSON."""
    path = analysis_dir / VALIDATION_NAME
    what = "TFMA validation result"
    validation = read_json(path, what, missing="run the analysis stage")
    _require(isinstance(validation, dict), path, what, "not a ValidationResult")
    per_slice = validation.get("metric_validations_per_slice", [])
    _require(isinstance(per_slice, list), path, what, "not a ValidationResult")
    for entry in per_slice:
        _require(isinstance(entry, dict) and isinstance(entry.get("failures", []), list), path, what, "bad entry")
    return validation


def load_verdict(gate_dir: Path) -> dict:
    """gate/verdict.json, checked for the fields every reader relies on."""
    path = gate_dir / VERDICT_NAME
    what = "verdict"
    verdict = read_json(path, what, missing="run the gate")
    _require(isinstance(verdict, dict), path, what, "not an object")
    _require(verdict.get("state") in VERDICT_STATES, path, what, f"state {verdict.get('state')!r}")
    _require(isinstance(verdict.get("passed"), bool), path, what, "'passed' is not true or false")
    _require(verdict["passed"] == (verdict["state"] == "passed"), path, what, "'passed' disagrees with 'state'")
    _require(isinstance(verdict.get("checks", []), list), path, what, "'checks' is not a list")
    _require(isinstance(verdict.get("judged", {}), dict), path, what, "'judged' is not an object")
    return verdict


# The four cells of the paired table, per slice: baseline right/wrong x candidate right/wrong.
BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, BOTH_WRONG = "both_right", "newly_right", "newly_wrong", "both_wrong"
PAIRED_CELLS = (BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, BOTH_WRONG)

# What a verdict file can say. Only "passed" lets CI through.
VERDICT_STATES = ("passed", "failed", "unjudged")


def load_changed(analysis_dir: Path) -> dict:
    """analysis/changed.json: the examples whose outcome changed, and their counts per slice."""
    path = analysis_dir / CHANGED_NAME
    what = "list of changed examples"
    changed = read_json(path, what, missing="run the analysis stage")
    _require(isinstance(changed, dict), path, what, "not an object")
    _require(isinstance(changed.get("examples"), list), path, what, "no 'examples' list")
    counts = changed.get("counts")
    _require(isinstance(counts, dict), path, what, "no 'counts'")
    for sid, cells in counts.items():
        _require(isinstance(cells, dict), path, what, f"counts on {sid}")
        for cell in (NEWLY_RIGHT, NEWLY_WRONG):
            value = cells.get(cell)
            _require(_is_count(value), path, what, f"{cell} on {sid}")
    for example in changed["examples"]:
        _require(
            isinstance(example, dict)
            and isinstance(example.get("index"), int)
            and isinstance(example.get("label"), int)
            and example.get("change") in (NEWLY_RIGHT, NEWLY_WRONG)
            and isinstance(example.get("baseline"), dict)
            and isinstance(example.get("candidate"), dict),
            path,
            what,
            "an example without index, label, change and both predictions",
        )
    return changed


DISCOVERED_STATES = ("regressed", "not confirmed")


def load_discovered(analysis_dir: Path) -> dict:
    """analysis/discovered.json: the slices discovery kept, each with its counts on both halves and its status."""
    path = analysis_dir / DISCOVERED_NAME
    what = "discovered slices"
    discovered = read_json(path, what, missing="run the analysis stage")
    _require(isinstance(discovered, dict), path, what, "not an object")
    _require(isinstance(discovered.get("slices"), list), path, what, "no 'slices' list")
    for found in discovered["slices"]:
        _require(isinstance(found, dict), path, what, "a slice that is not an object")
        _require(isinstance(found.get("id"), str) and isinstance(found.get("description"), str), path, what, "a slice without id and description")
        _require(found.get("status") in DISCOVERED_STATES, path, what, f"status {found.get('status')!r}")
        _require(all(_is_count(i) for i in found.get("members", [None])), path, what, f"members of {found.get('id')}")
        for half in ("discovery", "confirmation"):
            counts = found.get(half)
            _require(isinstance(counts, dict), path, what, f"{half} counts of {found['id']}")
            for cell in ("examples", NEWLY_RIGHT, NEWLY_WRONG):
                _require(_is_count(counts.get(cell)), path, what, f"{half} {cell} of {found['id']}")
    return discovered
