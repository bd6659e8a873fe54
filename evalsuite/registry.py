"""A blessed-model registry that is a folder: what a team accepted last, and everything before it.

Each blessing is one entry, `DIR/<UTC time>-<model fingerprint>/`, holding the
SavedModel (`model/`), its Keras file when there is one, and `record.json`:
the verdict, the evaluation data's fingerprint and size, the rules, the
metrics per class, the split the model was trained on, the run folder and
the git commit. Entries are assembled under a hidden temporary name and
renamed into place last, so readers never see half of one and two blessings
at once never clobber each other.

A record carries a checksum of itself and the fingerprints of its model's
files. That checksum is an unkeyed sha256: it catches accidents (a truncated
or partly copied entry, flipped bits, an edit that left the checksum alone),
not someone with write access to the registry, who can recompute it; guard
the folder with file permissions for that. The newest blessing must verify:
an entry that does not, and could be the newest, is exit 2 naming it, never
a silent fall-back to an older blessing. Nothing is read through a symlink.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from evalsuite.errors import InputError
from evalsuite.run.fingerprints import fingerprint_content, fingerprint_tree
from evalsuite.safe_files import read_text

RECORD_NAME = "record.json"
MODEL_DIR = "model"
KERAS_NAME = "model.keras"
SEEDS_DIR = "seeds"  # a recipe's further seeds' candidates, blessed with the first in one entry
PREFIX = "blessed:"
MAX_RECORD_BYTES = 1 << 20
STAGING_PREFIX = ".incoming-"
STAGING_LOCK = ".assembling"
BLESSED_AT = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


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


def record_checksum(record: dict) -> str:
    """sha256 of the record without its checksum: detects accidental damage, not deliberate forgery."""
    body = {k: v for k, v in record.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode("utf-8")).hexdigest()


def entries(registry: Path, warn=None) -> list[Entry]:
    """Valid entries, newest blessing first; anything truncated, edited or linked from elsewhere is skipped.

    For listing the registry. A registry that holds entries but no valid one is
    an error, never taken for an empty one; so is a registry folder that does
    not exist (a mistyped path must not pass as a first run). The baseline is
    chosen by `newest`, which refuses rather than skips.
    """
    found, damaged = _scan(registry)
    for name, problem in damaged:
        if warn:
            warn(f"registry entry {Path(registry) / name} skipped: {problem}")
    if damaged and not found:
        raise InputError(f"{registry}: none of its {len(damaged)} entries can be trusted (see the warnings); refusing")
    return found


def newest(registry: Path, warn=None) -> Entry | None:
    """The newest blessing, for a baseline; None for an empty registry.

    An entry that does not verify is skipped (with a warning) only when it is
    provably older than the newest one that does: both the time in its folder
    name, which damage to its files cannot change, and any time its record
    claims must be earlier. Otherwise it may be the newest blessing, and taking
    an older one in its place would judge against the wrong model: exit 2.
    """
    found, damaged = _scan(registry)
    best = found[0] if found else None
    for name, problem in damaged:
        item = Path(registry) / name
        if not item.is_dir() and not BLESSED_AT.match(name.split("-", 1)[0]):
            # A file the product never writes (a README beside the entries) is no blessing at all.
            if warn:
                warn(f"{item}: not a registry entry (the product writes folders named by their blessing time); ignored")
            continue
        claimed = _claimed_times(item)
        if best is None or not claimed or max(claimed) >= best.record["blessed_at"]:
            raise InputError(
                f"{Path(registry) / name}: registry entry cannot be verified ({problem}) and may be the newest "
                "blessing; restore or remove it (an older blessing never stands in for it)"
            )
        if warn:
            warn(f"registry entry {Path(registry) / name} skipped: {problem} (older than {best.name})")
    return best


def _scan(registry: Path) -> tuple[list[Entry], list[tuple[str, str]]]:
    """The entries that verify, newest blessing first, and (name, why) for every one that does not."""
    if registry.is_symlink() or (registry.exists() and not registry.is_dir()):
        raise InputError(f"{registry}: not a registry folder")
    if not registry.exists():
        raise InputError(f"{registry}: no such registry folder (for a first run, create it empty)")
    found, damaged = [], []
    with os.scandir(registry) as scan:
        for item in scan:
            if item.name.startswith("."):
                continue
            record, problem = _read_entry(item)
            if problem:
                damaged.append((item.name, problem))
            else:
                found.append(Entry(item.name, Path(item.path), record))
    damaged.sort()
    # Newest by the blessing time its checksummed record states, not by how a folder happens to be named.
    found.sort(key=lambda entry: (entry.record["blessed_at"], entry.name), reverse=True)
    return found, damaged


def _claimed_times(folder: Path) -> list[str]:
    """The blessing times an unverified entry claims: its folder name's, and its record's if readable.

    Empty when its name holds none: then nothing says how old it is.
    """
    stamp = folder.name.split("-", 1)[0]
    if not BLESSED_AT.match(stamp):
        return []
    claimed = [stamp]
    record_path = folder / RECORD_NAME
    if not folder.is_symlink() and _regular_file(record_path):
        try:
            record = json.loads(read_text(record_path, MAX_RECORD_BYTES, "registry record"))
            if isinstance(record, dict) and isinstance(record.get("blessed_at"), str):
                claimed.append(record["blessed_at"])
        except (InputError, OSError, ValueError):
            pass
    return claimed


def _regular_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _read_entry(item: os.DirEntry) -> tuple[dict | None, str | None]:
    """An entry's record, or why the entry cannot be trusted. Never follows a link or opens a pipe."""
    if item.is_symlink() or not item.is_dir(follow_symlinks=False):
        return None, "a symlink or not a folder"
    folder = Path(item.path)
    record_path, model, keras_file = folder / RECORD_NAME, folder / MODEL_DIR, folder / KERAS_NAME
    if model.is_symlink() or not model.is_dir():
        return None, "no model folder (or a symlink)"
    if not _regular_file(record_path):
        return None, "no record (or not a plain file)"
    for path in model.rglob("*"):
        if path.is_symlink():
            return None, "its model holds a symlink"
    try:
        record = json.loads(read_text(record_path, MAX_RECORD_BYTES, "record"))
    except InputError as error:
        return None, str(error).split(": ", 1)[-1]
    except (OSError, ValueError) as error:
        return None, f"unreadable record ({error})"
    if not isinstance(record, dict) or record.get("checksum") != record_checksum(record):
        return None, "the record does not match its checksum (truncated or edited)"
    if not isinstance(record.get("blessed_at"), str) or not BLESSED_AT.match(record["blessed_at"]):
        return None, "the record has no valid blessing time"
    try:
        if record.get("model_fingerprint") != fingerprint_tree(model):
            return None, "the model does not match the fingerprint its record names"
    except InputError as error:
        return None, str(error)
    keras_fingerprint = record.get("keras_fingerprint")
    if keras_file.exists() or keras_file.is_symlink():
        if not _regular_file(keras_file) or keras_fingerprint != fingerprint_content(keras_file):
            return None, "its Keras file does not match the fingerprint its record names"
    elif keras_fingerprint is not None:
        return None, "its Keras file is missing"
    return record, None


def latest(registry: Path, warn=None) -> Entry | None:
    """The newest entry that verifies, skipping damaged ones: for listings only; a baseline comes from `newest`."""
    found = entries(registry, warn)
    return found[0] if found else None


def resolve_baseline(
    reference: str,
    on_empty: str,
    fallback: str,
    log,
    warn,
    candidate_weights: str | None = None,
    run_split: dict | None = None,
) -> tuple[str, str | None, str | None]:
    """`blessed:DIR` as a model: the newest blessed model, or what an empty registry means.

    Returns the baseline, a warning for the verdict and a note for the verdict.
    An empty registry is stated, never implied: with registry.on_empty =
    "rubber-stamp" the candidate is judged against `fallback` (this run's own
    baseline) with a warning saying so; with "refuse" it is exit 2. A
    candidate that *is* the newest blessed model (the same weights, as a
    deterministic retraining gives) has nothing to beat there: it is "same as
    blessed", judged against `fallback`, which asks again the question it
    passed when it was blessed.

    With `run_split` (the split this run evaluates on, evalsuite/data/split_identity.py),
    a blessed model trained on another split of the same data is judged against,
    with a warning that part of this run's evaluation examples were among its
    training examples.
    """
    folder = folder_of(reference)
    entry = newest(folder, warn=warn)
    if entry is not None and candidate_weights is not None:
        if entry.record.get("weights_fingerprint") == candidate_weights:
            info = (
                f"same as blessed: the candidate has the weights of the newest blessed model "
                f"({entry.name} in {folder}), so it is judged against {fallback}"
            )
            log(f"baseline: {info}")
            return fallback, None, info
    if entry is not None:
        from evalsuite.data.split_identity import overlap_warning

        log(f"baseline: {entry.name}, the newest blessed model in {folder}")
        warning = overlap_warning(entry.record.get("training_split"), run_split, f"{entry.name} in {folder}")
        if warning:
            warn(warning)
        return str(entry.model), warning, None
    if on_empty == "refuse":
        raise InputError(f"{folder}: no blessed model yet, and registry.on_empty = 'refuse'")
    note = (
        f"no blessed model in {folder} yet (first run): judged against {fallback} instead "
        "(registry.on_empty = 'rubber-stamp')"
    )
    warn(note)
    return fallback, note, None
