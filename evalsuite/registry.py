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
    from evalsuite.fingerprints import fingerprint_tree

    return fingerprint_tree(folder)


def bless(
    registry: Path, model: Path, keras_file: Path | None, record: dict, expected_fingerprint: str | None = None
) -> Entry:
    """Copy `model` into the registry with `record`; atomic, and safe beside other blessings.

    The copy itself is fingerprinted: with `expected_fingerprint` (what the gate
    judged), a model that changed since it was judged is refused, not blessed.
    """
    if registry.is_symlink():
        raise InputError(f"{registry}: the registry may not be a symlink")
    registry.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=registry))
    try:
        shutil.copytree(model, staging / MODEL_DIR, symlinks=True)
        model_fingerprint = _tree_fingerprint(staging / MODEL_DIR)
        if expected_fingerprint is not None and model_fingerprint != expected_fingerprint:
            raise InputError(f"{model}: the candidate changed since the gate judged it; nothing blessed")
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
    """Valid entries, newest first; anything truncated, edited or linked from elsewhere is skipped.

    A registry that holds entries but no valid one is an error, never taken for an empty one.
    """
    if not registry.exists():
        return []
    if registry.is_symlink() or not registry.is_dir():
        raise InputError(f"{registry}: not a registry folder")
    found, skipped = [], 0
    with os.scandir(registry) as scan:
        for item in scan:
            if item.name.startswith("."):
                continue
            problem = _problem(registry, item)
            skipped += bool(problem)
            if problem:
                if warn:
                    warn(f"registry entry {Path(registry) / item.name} skipped: {problem}")
                continue
            record = json.loads((Path(item.path) / RECORD_NAME).read_text("utf-8"))
            found.append(Entry(item.name, Path(item.path), record))
    if skipped and not found:
        raise InputError(f"{registry}: none of its {skipped} entries can be trusted (see the warnings); refusing")
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
    try:
        if record.get("model_fingerprint") != _tree_fingerprint(model):
            return "the model does not match the fingerprint its record names"
    except InputError as error:
        return str(error)
    return None


def latest(registry: Path, warn=None) -> Entry | None:
    found = entries(registry, warn)
    return found[0] if found else None


def resolve_baseline(reference: str, on_empty: str, fallback: str, log, warn) -> tuple[str, str | None]:
    """`blessed:DIR` as a model path: the newest blessed model, or what an empty registry means.

    An empty registry is stated, never implied: with registry.on_empty =
    "rubber-stamp" the candidate is judged against `fallback` (this run's own
    baseline), and the returned note says so for the verdict; with "refuse" it
    is exit 2. Returns the baseline and that note (None when a blessed model was found).
    """
    folder = folder_of(reference)
    entry = latest(folder, warn=warn)
    if entry is not None:
        log(f"baseline: {entry.name}, the newest blessed model in {folder}")
        return str(entry.model), None
    if on_empty == "refuse":
        raise InputError(f"{folder}: no blessed model yet, and registry.on_empty = 'refuse'")
    note = (
        f"no blessed model in {folder} yet (first run): judged against {fallback} instead "
        "(registry.on_empty = 'rubber-stamp')"
    )
    warn(note)
    return fallback, note
