"""Blessing a model into the registry: an entry assembled under a hidden name and published last.

Readers never see half an entry, two blessings at once never clobber each
other, and a blessing killed half-way leaves a hidden folder the next one
removes (`evalsuite/registry.py` says what an entry holds).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from evalsuite.errors import InputError
from evalsuite.registry import (
    KERAS_NAME,
    MODEL_DIR,
    RECORD_NAME,
    SEEDS_DIR,
    STAGING_LOCK,
    STAGING_PREFIX,
    Entry,
    record_checksum,
)
from evalsuite.run.fingerprints import fingerprint_content, fingerprint_tree


@dataclass
class Staged:
    """A blessing assembled under a hidden name, invisible to readers until `publish` renames it into place.

    Its staging lock stays held until then, so a concurrent blessing never
    takes it for an abandoned one.
    """

    registry: Path
    path: Path
    record: dict
    lock: IO
    target: Path | None = None  # the name `publish` is renaming to, set before the rename

    def publish(self) -> Entry:
        """Rename the assembled entry into place: the one step that makes a blessing visible."""
        (self.path / STAGING_LOCK).unlink()
        stamp, model_fingerprint = self.record["blessed_at"], self.record["model_fingerprint"]
        try:
            for attempt in range(100):
                name = f"{stamp}-{model_fingerprint}" + (f"-{attempt}" if attempt else "")
                self.target = self.registry / name
                try:
                    os.rename(self.path, self.target)  # fails if the name is taken: never replaces an entry
                    return Entry(name, self.target, self.record)
                except OSError:
                    self.target = None
                    if not (self.registry / name).exists():
                        raise
            raise InputError(f"{self.registry}: could not find a free entry name for {stamp}")
        finally:
            self.lock.close()

    def discard(self) -> None:
        """Undo this blessing wherever it stopped: drop the hidden copy, or retract the entry just renamed."""
        self.lock.close()
        if self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)
        elif self.target is not None and self.target.is_dir():
            retract(Entry(self.target.name, self.target, self.record))


def stage(
    registry: Path,
    model: Path,
    keras_file: Path | None,
    record: dict,
    expected_fingerprint: str | None = None,
    expected_keras_fingerprint: str | None = None,
    seed_models: dict[str, tuple[Path, str]] | None = None,
) -> Staged:
    """Assemble an entry for `model` with `record` under a hidden name; nothing is visible until `publish`.

    `seed_models` (a recipe's further seeds: label -> (SavedModel, judged fingerprint))
    go into the same entry under `seeds/<label>`; `model` stays the entry's model,
    the one a later run's `--baseline blessed:DIR` is judged against.

    The copies themselves are fingerprinted: with `expected_fingerprint` (what
    the gate judged) and `expected_keras_fingerprint` (what training exported),
    a model or Keras file that changed since is refused, not blessed.
    """
    if registry.is_symlink():
        raise InputError(f"{registry}: the registry may not be a symlink")
    if registry.exists() and not registry.is_dir():
        raise InputError(f"{registry}: not a registry folder")
    registry.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(registry)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=registry))
    # Held while the entry is assembled: a staging folder nobody holds was abandoned by a killed blessing.
    lock = open(staging / STAGING_LOCK, "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.copytree(model, staging / MODEL_DIR, symlinks=True)
        model_fingerprint = fingerprint_tree(staging / MODEL_DIR)
        if expected_fingerprint is not None and model_fingerprint != expected_fingerprint:
            raise InputError(f"{model}: the candidate changed since the gate judged it; nothing blessed")
        keras_fingerprint = None
        if keras_file is not None:
            shutil.copy2(keras_file, staging / KERAS_NAME)
            keras_fingerprint = fingerprint_content(staging / KERAS_NAME)
            if expected_keras_fingerprint is not None and keras_fingerprint != expected_keras_fingerprint:
                raise InputError(f"{keras_file}: changed since training exported it; nothing blessed")
        for label, (path, judged) in (seed_models or {}).items():
            copy = staging / SEEDS_DIR / label
            shutil.copytree(path, copy, symlinks=True)
            if fingerprint_tree(copy) != judged:
                raise InputError(f"{path}: the candidate changed since the gate judged it; nothing blessed")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
        full = {
            **record,
            "blessed_at": stamp,
            "model_fingerprint": model_fingerprint,
            "keras_fingerprint": keras_fingerprint,
            "format": 1,
        }
        full["checksum"] = record_checksum(full)
        with open(staging / RECORD_NAME, "w", encoding="utf-8") as handle:
            json.dump(full, handle, indent=2, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(staging, 0o755)
        return Staged(registry, staging, full, lock)
    except BaseException:
        lock.close()
        shutil.rmtree(staging, ignore_errors=True)
        raise


def bless(
    registry: Path,
    model: Path,
    keras_file: Path | None,
    record: dict,
    expected_fingerprint: str | None = None,
    expected_keras_fingerprint: str | None = None,
    seed_models: dict[str, tuple[Path, str]] | None = None,
) -> Entry:
    """Assemble and publish in one go (see `stage`); atomic, and safe beside other blessings."""
    staged = stage(
        registry, model, keras_file, record, expected_fingerprint, expected_keras_fingerprint, seed_models
    )
    try:
        return staged.publish()
    except BaseException:
        staged.discard()
        raise


def remove_abandoned_staging(registry: Path, grace_seconds: float = 3600) -> None:
    """Drop half-assembled entries whose blessing was killed.

    One whose lock is free was abandoned; one without a lock file is either
    between two steps of a live blessing or left by a kill at that moment, so
    it goes only once it is older than `grace_seconds`.
    """
    import time

    for item in registry.iterdir():
        if not item.name.startswith(STAGING_PREFIX) or item.is_symlink() or not item.is_dir():
            continue
        try:
            # Never blocks: a lock file that is a FIFO opens at once (O_NONBLOCK), and a link is not followed.
            lock = os.open(item / STAGING_LOCK, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(lock)
        except FileNotFoundError:
            try:
                if time.time() - item.stat().st_mtime < grace_seconds:
                    continue
            except FileNotFoundError:
                continue
        except OSError:
            continue  # another blessing is assembling it right now
        shutil.rmtree(item, ignore_errors=True)


def retract(entry: Entry) -> None:
    """Take back an entry published by a blessing whose gate did not finish saying so."""
    retired = entry.path.with_name(f"{STAGING_PREFIX}retracted-{entry.name}")
    with contextlib.suppress(FileNotFoundError):
        os.rename(entry.path, retired)
        shutil.rmtree(retired, ignore_errors=True)
