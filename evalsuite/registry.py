"""A blessed-model registry that is a folder: what a team accepted last, and everything before it.

Each blessing is one entry, `DIR/<UTC time>-<model fingerprint>/`, holding the
SavedModel (`model/`), its Keras file when there is one, and `record.json`:
the verdict, the evaluation data's fingerprint and size, the rules, the
metrics per class, the run folder and the git commit. Entries are assembled
under a temporary name and renamed into place, so readers never see half of
one and two blessings at once never clobber each other. A record carries a
checksum of itself and of its model; a truncated or edited entry is skipped
with a warning, never trusted. Nothing is read through a symlink.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from evalsuite.errors import InputError

RECORD_NAME = "record.json"
MODEL_DIR = "model"
KERAS_NAME = "model.keras"
PREFIX = "blessed:"
MAX_RECORD_BYTES = 1 << 20


@dataclass(frozen=True)
class Entry:
    name: str
    path: Path
    record: dict

    @property
    def model(self) -> Path:
        return self.path / MODEL_DIR


def is_reference(text: str | None) -> bool:
    return bool(text) and text.startswith(PREFIX)


def folder_of(reference: str) -> Path:
    folder = reference[len(PREFIX) :]
    if not folder:
        raise InputError(f"{reference!r}: name the registry folder, e.g. blessed:models/blessed")
    return Path(folder)


def _record_checksum(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def _tree_fingerprint(folder: Path) -> str:
    from evalsuite.rundir import fingerprint_tree

    return fingerprint_tree(folder)


def bless(registry: Path, model: Path, keras_file: Path | None, record: dict) -> Entry:
    """Copy `model` into the registry with `record`; atomic, and safe beside other blessings."""
    registry.mkdir(parents=True, exist_ok=True)
    if registry.is_symlink():
        raise InputError(f"{registry}: the registry may not be a symlink")
    model_fingerprint = _tree_fingerprint(model)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=registry))
    try:
        shutil.copytree(model, staging / MODEL_DIR, symlinks=True)
        if keras_file is not None and keras_file.is_file():
            shutil.copy2(keras_file, staging / KERAS_NAME)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        full = {
            **record,
            "blessed_at": stamp,
            "model_fingerprint": model_fingerprint,
            "format": 1,
        }
        full["checksum"] = _record_checksum(full)
        with open(staging / RECORD_NAME, "w", encoding="utf-8") as handle:
            json.dump(full, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, 0o755)
        for attempt in range(100):
            name = f"{stamp}-{model_fingerprint}" + (f"-{attempt}" if attempt else "")
            try:
                os.rename(staging, registry / name)  # fails if the name is taken: never replaces an entry
                return Entry(name, registry / name, full)
            except OSError:
                if not (registry / name).exists():
                    raise
        raise InputError(f"{registry}: could not find a free entry name for {stamp}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def entries(registry: Path, warn=None) -> list[Entry]:
    """Valid entries, newest first; anything truncated, edited or linked from elsewhere is skipped."""
    if not registry.exists():
        return []
    if registry.is_symlink() or not registry.is_dir():
        raise InputError(f"{registry}: not a registry folder")
    found = []
    with os.scandir(registry) as scan:
        for item in scan:
            if item.name.startswith("."):
                continue
            problem = _problem(registry, item)
            if problem:
                if warn:
                    warn(f"registry entry {Path(registry) / item.name} skipped: {problem}")
                continue
            record = json.loads((Path(item.path) / RECORD_NAME).read_text("utf-8"))
            found.append(Entry(item.name, Path(item.path), record))
    return sorted(found, key=lambda entry: entry.name, reverse=True)


def _problem(registry: Path, item: os.DirEntry) -> str | None:
    if item.is_symlink() or not item.is_dir(follow_symlinks=False):
        return "a symlink or not a folder"
    folder = Path(item.path)
    record_path, model = folder / RECORD_NAME, folder / MODEL_DIR
    if record_path.is_symlink() or model.is_symlink() or not model.is_dir():
        return "no model folder (or a symlink)"
    for path in model.rglob("*"):
        if path.is_symlink():
            return "its model holds a symlink"
    try:
        if record_path.stat().st_size > MAX_RECORD_BYTES:
            return "record too large"
        record = json.loads(record_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return f"unreadable record ({error})"
    if not isinstance(record, dict) or record.get("checksum") != _record_checksum(record):
        return "the record does not match its checksum (truncated or edited)"
    if record.get("model_fingerprint") != _tree_fingerprint(model):
        return "the model does not match the fingerprint its record names"
    return None


def latest(registry: Path, warn=None) -> Entry | None:
    found = entries(registry, warn)
    return found[0] if found else None


def resolve_baseline(reference: str, on_empty: str, fallback: str, log, warn) -> str:
    """`blessed:DIR` as a model path: the newest blessed model, or what an empty registry means.

    An empty registry is stated, never implied: with registry.on_empty =
    "rubber-stamp" the candidate is judged against `fallback` (this run's own
    baseline) and says there is no blessed model yet; with "refuse" it is exit 2.
    """
    folder = folder_of(reference)
    entry = latest(folder, warn=warn)
    if entry is not None:
        log(f"baseline: {entry.name}, the newest blessed model in {folder}")
        return str(entry.model)
    if on_empty == "refuse":
        raise InputError(f"{folder}: no blessed model yet, and registry.on_empty = 'refuse'")
    warn(
        f"{folder}: no blessed model yet (first run); judging against {fallback} instead "
        "(registry.on_empty = 'rubber-stamp')"
    )
    return fallback
