"""One folder per run: its layout, its manifest and its lock.

Stages share nothing but this folder. Each reads what the one before wrote
through `manifest.json`, and a stage is marked done there only after its
outputs have been renamed into place (`evalsuite.run.atomic`), so an interrupted
run never looks finished.
"""

from __future__ import annotations

import datetime as dt
import errno
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

from evalsuite.errors import InputError
from evalsuite.run import contract, stages
from evalsuite.run.atomic import write_json_atomic
from evalsuite.run.fingerprints import fingerprint_content
from evalsuite.safe_files import read_text

MANIFEST_NAME = contract.MANIFEST_NAME
MANIFEST_VERSION = 2  # 2: stage records follow the schemas in evalsuite/run/stages.py
LOCK_NAME = ".lock"


def new_run_path(root: Path = Path("runs")) -> Path:
    """A fresh dated folder under `root`, e.g. runs/2026-11-23T14-35-07."""
    stamp = dt.datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    path = root / stamp
    suffix = 1
    while path.exists():
        suffix += 1
        path = root / f"{stamp}-{suffix}"
    return path


class RunDir:
    """A run folder: paths to every artifact and the manifest that lists them."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock_handle = None

    # Layout -----------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST_NAME

    @property
    def data_dir(self) -> Path:
        return self.path / contract.DATA_DIR

    @property
    def models_dir(self) -> Path:
        return self.path / contract.MODELS_DIR

    @property
    def logs_root(self) -> Path:
        return self.path / contract.LOGS_DIR

    @property
    def analysis_dir(self) -> Path:
        return self.path / contract.ANALYSIS_DIR

    @property
    def tfma_dir(self) -> Path:
        return self.analysis_dir / contract.TFMA_DIR

    @property
    def gate_dir(self) -> Path:
        return self.path / contract.GATE_DIR

    @property
    def verdict_path(self) -> Path:
        return self.gate_dir / contract.VERDICT_NAME

    @property
    def junit_path(self) -> Path:
        return self.gate_dir / contract.JUNIT_NAME

    @property
    def gate_summary_path(self) -> Path:
        return self.gate_dir / contract.GATE_SUMMARY_NAME

    @property
    def report_dir(self) -> Path:
        return self.path / contract.REPORT_DIR

    @property
    def report_index(self) -> Path:
        return self.report_dir / contract.REPORT_INDEX_NAME

    @property
    def report_summary(self) -> Path:
        return self.report_dir / contract.REPORT_SUMMARY_NAME

    def portable(self, path: Path | str) -> str:
        """A path as a record stores it: relative when inside the run folder, so a copied run stays whole."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.path.resolve()))
        except ValueError:
            return str(path)

    def resolve(self, stored: str) -> Path:
        """The path a record stored with `portable`."""
        return Path(stored) if Path(stored).is_absolute() else self.path / stored

    def analysis_output_fingerprints(self) -> dict[str, str]:
        """Each file the analysis wrote, by its path in the run folder: the summary, validation and
        changed list it hands the gate, and TFMA's own results beside them."""
        files = [
            self.analysis_dir / name
            for name in (contract.SUMMARY_NAME, contract.VALIDATION_NAME, contract.CHANGED_NAME, contract.DISCOVERED_NAME)
        ]
        if self.tfma_dir.is_dir() and not self.tfma_dir.is_symlink():
            files += sorted(path for path in self.tfma_dir.rglob("*") if path.is_symlink() or not path.is_dir())
        return {relative(self, path): fingerprint_content(path) for path in files if path.exists() or path.is_symlink()}

    def model_dir(self, name: str) -> Path:
        return self.models_dir / plain_name(name)

    def keras_model_path(self, name: str) -> Path:
        return self.models_dir / f"{plain_name(name)}.keras"

    def logs_dir(self, name: str) -> Path:
        return self.logs_root / plain_name(name)

    # Lock -------------------------------------------------------------------
    def acquire(self) -> "RunDir":
        """Take the run folder's lock, or fail if another process holds it."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            self._created_lock = not (self.path / LOCK_NAME).exists()
            handle = open(self.path / LOCK_NAME, "a+")
        except OSError as error:
            raise InputError(f"{self.path}: cannot use run folder: {error.strerror}") from None
        if not os.access(self.path, os.W_OK):
            handle.close()
            raise InputError(f"{self.path}: run folder is not writable")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise InputError(
                    f"{self.path}: run folder is in use by another run; wait for it or pick another --run-dir"
                ) from None
            raise
        try:
            same = os.fstat(handle.fileno()).st_ino == os.stat(self.path / LOCK_NAME).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            # The lock file was removed by its last holder after we opened it: lock the new one.
            handle.close()
            return self.acquire()
        self._lock_handle = handle
        self._remove_stale_temporaries()
        return self

    def _remove_stale_temporaries(self) -> None:
        """Drop what an interrupted run left half-written; we hold the lock, so nobody is writing."""
        # Never through a symlink: a link under logs/ or models/ may point anywhere.
        root = self.path.resolve()
        folders = [self.path, self.models_dir, self.analysis_dir, self.gate_dir, self.report_dir]
        if self.logs_root.is_dir() and not self.logs_root.is_symlink():
            folders += list(self.logs_root.iterdir())
        for folder in folders:
            if folder.is_symlink() or not folder.is_dir() or not _inside(folder.resolve(), root):
                continue
            for entry in folder.iterdir():
                if entry.name.startswith(".") and (".tmp" in entry.name or ".old-" in entry.name):
                    if entry.is_dir() and not entry.is_symlink():
                        shutil.rmtree(entry, ignore_errors=True)
                    else:
                        entry.unlink(missing_ok=True)

    def release(self) -> None:
        if self._lock_handle is not None:
            if getattr(self, "_created_lock", False):
                # A lock file this run created goes with it: the folder is left as it was found.
                (self.path / LOCK_NAME).unlink(missing_ok=True)
            fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
            self._lock_handle.close()
            self._lock_handle = None

    def __enter__(self) -> "RunDir":
        return self if self._lock_handle is not None else self.acquire()

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None and getattr(self, "_claimed", False):
            # Stopped before any stage finished: the folder claimed for the run goes back as it was.
            try:
                if not self.read_manifest()["stages"]:
                    self.manifest_path.unlink(missing_ok=True)
            except InputError:
                pass
        self.release()

    # Manifest ---------------------------------------------------------------
    def read_manifest(self) -> dict:
        """The manifest, or an empty one for a new run; a broken one is an error."""
        if not self.manifest_path.exists():
            return {"version": MANIFEST_VERSION, "stages": {}}
        try:
            # Bounded and never blocking: a manifest that is a FIFO, a device or huge is one line, not a hang.
            manifest = json.loads(read_text(self.manifest_path, contract.MAX_JSON_BYTES, "manifest"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise InputError(f"{self.manifest_path}: corrupt manifest ({error})") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("stages"), dict):
            raise InputError(f"{self.manifest_path}: corrupt manifest (no 'stages' table)")
        if manifest.get("version") != MANIFEST_VERSION:
            raise InputError(
                f"{self.manifest_path}: manifest version {manifest.get('version')!r} is not "
                f"{MANIFEST_VERSION}; use a new --run-dir"
            )
        # The one reader of stage records: each must match its stage's declared schema.
        for stage, record in manifest["stages"].items():
            problem = stages.record_problem(stage, record) if stage in stages.ORDER else "not a stage"
            if problem:
                raise InputError(
                    f"{self.manifest_path}: corrupt manifest (stage {stage!r}: {problem}); use a new --run-dir"
                )
        return manifest

    def trained_seeds(self) -> int:
        """How many seeds the run's training produced (1 unless --seeds N)."""
        return len((self.stage("training") or {}).get("seeds") or []) or 1

    def claim(self) -> None:
        """Mark a new or empty folder as a run's at once, so an interrupted first stage leaves it ours."""
        if not self.manifest_path.exists():
            write_json_atomic(self.manifest_path, {"version": MANIFEST_VERSION, "stages": {}})
            self._claimed = True

    def refuse_input_inside(self, given: str | Path, flag: str) -> None:
        """Input data may not lie in a folder the run replaces, nor hold the run folder itself."""
        data, root = Path(given).resolve(), self.path.resolve()
        owned = [self.data_dir, self.models_dir, self.logs_root, self.analysis_dir, self.gate_dir, self.report_dir]
        for folder in owned:
            if _inside(data, folder.resolve()):
                raise InputError(f"{flag} {given}: inside {folder}, which this run replaces; move the data out of it")
        if data.is_dir() and _inside(root, data):
            raise InputError(f"{flag} {given}: holds the run folder {self.path}; put the run folder outside the data")

    def update_manifest(self, **fields: Any) -> dict:
        manifest = self.read_manifest()
        manifest.update(fields)
        write_json_atomic(self.manifest_path, manifest)
        return manifest

    def update_stage(self, name: str, **fields: Any) -> None:
        manifest = self.read_manifest()
        manifest["stages"][name].update(fields)
        write_json_atomic(self.manifest_path, manifest)

    def stage(self, name: str) -> dict | None:
        return self.read_manifest()["stages"].get(name)

    def record_stage(self, name: str, record: dict) -> None:
        """Mark a stage done; call only after its outputs are in place.

        The one writer of stage records: a record that does not match its
        stage's schema is never written.
        """
        record = {"status": "done", **record}
        problem = stages.record_problem(name, record)
        if problem:
            raise ValueError(f"the {name} stage's record does not match its schema: {problem}")
        manifest = self.read_manifest()
        manifest["stages"][name] = record
        write_json_atomic(self.manifest_path, manifest)

    def invalidate_from(self, name: str) -> None:
        """Before a stage writes anything: it and every stage after it stop looking done.

        The manifest goes first, then what downstream stages wrote that a reader
        could take for a verdict (the gate's files, the report), so an
        interrupted rerun never leaves a stale PASS behind.
        """
        downstream = stages.downstream(name)
        try:
            manifest = self.read_manifest()
            dropped = [stage for stage in downstream if manifest["stages"].pop(stage.name, None) is not None]
            if dropped:
                write_json_atomic(self.manifest_path, manifest)
        finally:
            # Even when the manifest cannot be written (a full disk), unlinking still works.
            for stage in downstream:
                for path in stage.verdict_files:
                    (self.path / path).unlink(missing_ok=True)

    def hold_report(self) -> dict | None:
        """Move the report out of sight while the gate decides again; returns its record.

        Held files are hidden temporaries: nothing serves them, and a run killed
        meanwhile has them removed under the next lock.
        """
        for path in self._report_files():
            if path.exists():  # renames first: they work even on a full disk
                os.replace(path, _held(path))
        manifest = self.read_manifest()
        record = manifest["stages"].pop("report", None)
        if record is not None:
            write_json_atomic(self.manifest_path, manifest)
        return record

    def restore_report(self, record: dict | None) -> None:
        """The gate said exactly what it said before: the held report is still true."""
        finals = self._report_files()
        if record is None or not all(_held(path).exists() for path in finals):
            self.drop_held_report()
            return
        for final in finals:
            os.replace(_held(final), final)
        self.record_stage("report", {k: v for k, v in record.items() if k != "status"})

    def drop_held_report(self) -> None:
        for path in self._report_files():
            _held(path).unlink(missing_ok=True)

    def _report_files(self) -> list[Path]:
        return [self.path / path for path in stages.stage("report").verdict_files]

    def forget_stage(self, name: str) -> None:
        manifest = self.read_manifest()
        if manifest["stages"].pop(name, None) is not None:
            write_json_atomic(self.manifest_path, manifest)

    def reusable(self, name: str, stage_fingerprint: str) -> dict | None:
        """The stage's record if it finished with this fingerprint and its outputs exist."""
        record = self.stage(name)
        if not record or record.get("status") != "done" or record.get("fingerprint") != stage_fingerprint:
            return None
        outputs = record.get("outputs", {})
        if not all((self.path / rel).exists() for rel in _flatten_paths(outputs)):
            return None
        return record

    def require_stage(self, name: str, what: str) -> dict:
        record = self.stage(name)
        if not record or record.get("status") != "done":
            raise InputError(f"{self.path}: no finished {what} in this run folder (run the {name} stage first)")
        return record


def _held(path: Path) -> Path:
    """Where a report file waits, hidden, while the gate decides again."""
    return path.with_name(f".{path.name}.held.tmp")


def plain_name(name: str) -> str:
    """A model or run name used as a folder name: it may not climb out of the run folder."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"{name!r}: not a valid model name (use a plain name such as epochs-6, or a path)")
    return name


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _flatten_paths(outputs: Any) -> list[str]:
    if isinstance(outputs, str):
        return [outputs]
    if isinstance(outputs, dict):
        return [p for value in outputs.values() for p in _flatten_paths(value)]
    if isinstance(outputs, list):
        return [p for value in outputs for p in _flatten_paths(value)]
    return []


def relative(run: RunDir, path: Path) -> str:
    return str(Path(path).relative_to(run.path))
