"""The stages, declared once: what each reads and writes, its entry, its command, its manifest record.

Everything that needs the list reads it from here: the pipeline, invalidation
of later stages, the code fingerprints (from each entry module's imports),
the manifest's record schema, "where everything is", and the gate when it
must have the analysis run. Stages still never import each other; they meet
in the run folder.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field

from evalsuite.run import contract

# A record field's type: a name below, a nested {field: type} record, or ("list", type) / ("map", type).
# A name ending in "?" may also be null. Records may hold more fields than their schema names.
STR, INT, NUMBER, BOOL, ANY = "str", "int", "number", "bool", "any"

MODEL_RECORD = {"label": STR, "path": STR, "fingerprint": STR, "weights_fingerprint": "str?"}
TRAINED_MODEL = {
    "epochs": INT,
    "saved_model": STR,
    "keras_model": STR,
    "logs": STR,
    "fingerprint": STR,
    "keras_fingerprint": STR,
    "weights_fingerprint": STR,
}

# The data spec (evalsuite/data/spec.py): worked out by training, read by every later stage.
DATA_SPEC = {
    "height": INT,
    "width": INT,
    "channels": INT,
    "num_classes": INT,
    "class_names": ("list?", STR),
    "encoding": STR,
    "resize": "str?",
    "pixel_scaling": "str?",  # absent for 8-bit data
}


@dataclass(frozen=True)
class Stage:
    """One stage: its manifest name, its work, and what it hands to the stages after it."""

    name: str
    entry: str  # "module:function" doing the stage's work
    command: str  # `python -m COMMAND` runs it on its own
    reads: tuple[str, ...]
    writes: tuple[tuple[str, str], ...]  # (what, path in the run folder)
    record: dict = field(default_factory=dict)  # the manifest record's schema
    # Files a reader could take for a judged state: removed whenever this stage is redone.
    verdict_files: tuple[str, ...] = ()
    # The stage's code fingerprint decides its reuse (computed from its entry module's imports).
    code_fingerprinted: bool = False
    # Flags another command forwards when it has this stage run on its behalf: (option, flag, kind).
    forwarded: tuple[tuple[str, str, str], ...] = ()

    @property
    def module(self) -> str:
        return self.entry.split(":")[0]

    def function(self):
        module, name = self.entry.split(":")
        return getattr(importlib.import_module(module), name)

    def command_line(self, args) -> list[str]:
        """`python -m COMMAND` with the forwarded options `args` holds (an argparse namespace)."""
        argv = [sys.executable, "-m", self.command]
        for option, flag, kind in self.forwarded:
            value = getattr(args, option, None)
            if kind == "switch":
                argv += [flag] if value else []
            elif value is not None:
                argv += [flag, str(value)]
        return argv


STAGES = (
    Stage(
        name="data",
        entry="training.train:train",
        command="training",
        reads=("--data",),
        writes=(("evaluation data", contract.DATA_DIR),),
        record={
            "source": STR,
            "fingerprint": STR,
            "files_fingerprint": "str?",
            "eval_examples": INT,
            "eval_examples_per_class": ("map", INT),
            "pattern": STR,
            "class_names": ("list?", STR),
            "data_spec": DATA_SPEC,
            # Features the analysis slices by: name -> value -> examples (evalsuite/data/slice_features.py).
            "slice_features": ("map?", ("map", INT)),
            "outputs": ANY,
        },
    ),
    Stage(
        name="training",
        entry="training.train:train",
        command="training",
        reads=(contract.DATA_DIR,),
        writes=(("models", contract.MODELS_DIR), ("tensorboard logs", contract.LOGS_DIR)),
        record={"fingerprint": STR, "runs": ("map", TRAINED_MODEL), "config": ANY, "outputs": ANY, "seconds": NUMBER},
        code_fingerprinted=True,
    ),
    Stage(
        name="analysis",
        entry="analysis.evaluate:analyze",
        command="analysis",
        reads=(contract.MODELS_DIR, contract.DATA_DIR, "gate.toml"),
        writes=(("TFMA results", contract.ANALYSIS_DIR),),
        record={
            "fingerprint": STR,
            "output_fingerprints": ("map", STR),
            "baseline": MODEL_RECORD,
            "candidate": MODEL_RECORD,
            "eval_data": {"source": STR, "fingerprint": STR, "files_fingerprint": STR, "examples": INT},
            "pattern": STR,
            "rules": ANY,
            "runner": STR,
            "seed": INT,
            "outputs": ANY,
        },
        code_fingerprinted=True,
        forwarded=(
            ("run_dir", "--run-dir", "value"),
            ("baseline", "--baseline", "value"),
            ("candidate", "--candidate", "value"),
            ("eval_data", "--eval-data", "value"),
            ("rules", "--rules", "value"),
            ("seed", "--seed", "value"),
            ("force", "--force", "switch"),
            ("jackknife", "--jackknife", "switch"),
            ("quiet", "-q", "switch"),
        ),
    ),
    Stage(
        name="gate",
        entry="gates.gate:gate",
        command="gates",
        reads=(contract.ANALYSIS_DIR,),
        writes=(("gate verdict", f"{contract.GATE_DIR}/{contract.VERDICT_NAME}"),),
        record={
            "passed": BOOL,
            "state": STR,
            "judged": ANY,
            "verdict_fingerprint": STR,
            "outputs": ("map", STR),
        },
        verdict_files=(
            f"{contract.GATE_DIR}/{contract.VERDICT_NAME}",
            f"{contract.GATE_DIR}/{contract.JUNIT_NAME}",
            f"{contract.GATE_DIR}/{contract.GATE_SUMMARY_NAME}",
        ),
    ),
    Stage(
        name="report",
        entry="reports.build:build_report",
        command="reports",
        reads=(contract.DATA_DIR, contract.MODELS_DIR, contract.ANALYSIS_DIR, contract.GATE_DIR),
        writes=(("report", f"{contract.REPORT_DIR}/{contract.REPORT_INDEX_NAME}"),),
        record={"fingerprint": STR, "outputs": {"index": STR, "summary": STR}},
        verdict_files=(
            f"{contract.REPORT_DIR}/{contract.REPORT_INDEX_NAME}",
            f"{contract.REPORT_DIR}/{contract.REPORT_SUMMARY_NAME}",
        ),
        code_fingerprinted=True,
    ),
)
ORDER = tuple(stage.name for stage in STAGES)
_BY_NAME = {stage.name: stage for stage in STAGES}


def stage(name: str) -> Stage:
    return _BY_NAME[name]


def downstream(name: str) -> tuple[Stage, ...]:
    """This stage and every stage after it, in order."""
    return STAGES[ORDER.index(name) :]


def record_problem(name: str, record: object) -> str | None:
    """Why a stage's manifest record does not match its schema, or None."""
    if not isinstance(record, dict):
        return "not a record"
    if record.get("status") != "done":
        return f"status {record.get('status')!r} is not 'done'"
    return _problem(record, _BY_NAME[name].record, "") if name in _BY_NAME else None


def _problem(value: object, kind, where: str) -> str | None:
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            return f"{where.rstrip('.') or 'the record'} is not a record"
        for key, sub in kind.items():
            if key not in value:
                optional = (sub if isinstance(sub, str) else sub[0] if isinstance(sub, tuple) else "").endswith("?")
                if not optional:
                    return f"{where}{key} is missing"
                continue
            problem = _problem(value[key], sub, f"{where}{key}.")
            if problem:
                return problem
        return None
    if isinstance(kind, tuple):
        container, item = kind
        if value is None and container.endswith("?"):
            return None
        container = container.rstrip("?")
        if container == "list":
            if not isinstance(value, list):
                return f"{where.rstrip('.')} is not a list"
            items = enumerate(value)
        else:
            if not isinstance(value, dict):
                return f"{where.rstrip('.')} is not a table"
            items = value.items()
        for key, sub_value in items:
            problem = _problem(sub_value, item, f"{where}{key}.")
            if problem:
                return problem
        return None
    optional = kind.endswith("?")
    kind = kind.rstrip("?")
    if value is None and optional:
        return None
    ok = {
        STR: isinstance(value, str),
        INT: isinstance(value, int) and not isinstance(value, bool),
        NUMBER: isinstance(value, (int, float)) and not isinstance(value, bool),
        BOOL: isinstance(value, bool),
        ANY: True,
    }[kind]
    return None if ok else f"{where.rstrip('.')} is not a {kind}"
