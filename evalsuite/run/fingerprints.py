"""Content fingerprints: short, stable hashes of what a stage consumed or wrote.

Names and contents are length-prefixed, so no two different sets of files
hash alike by moving bytes from one file into the next.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any, Iterable

from evalsuite.errors import InputError


def fingerprint(*parts: Any) -> str:
    """A short, stable content hash of JSON-able parts."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray, memoryview)):
            digest.update(bytes(part))
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode("utf-8"))
        digest.update(b"\x00")
    return digest.hexdigest()[:16]


def fingerprint_tree(path: Path) -> str:
    """Hash every file under `path` (length-prefixed names and contents), in a stable order.

    A symlink inside is refused: what it points to could change without the
    tree's own bytes changing.
    """
    digest = hashlib.sha256()
    for folder, folders, files in sorted(os.walk(path)):
        folders.sort()
        for name in sorted(files + [d for d in folders if (Path(folder) / d).is_symlink()]):
            file = Path(folder) / name
            if file.is_symlink():
                raise InputError(f"{file}: a symlink inside a model folder; copy the model instead")
            _hash_name_into(digest, str(file.relative_to(path)))
            _hash_file_into(digest, file)
    return digest.hexdigest()[:16]


def fingerprint_files(paths: list[Path]) -> str:
    """Hash the named files' names and contents, in the given order."""
    return fingerprint_named_files((Path(path).name, Path(path)) for path in paths)


def fingerprint_content(path: Path) -> str:
    """One file's bytes, whatever it is called: a copy keeps its fingerprint."""
    return fingerprint_named_files([("", Path(path))])


def fingerprint_named_files(files: Iterable[tuple[str, Path]], *parts: Any) -> str:
    """Hash each (name, file) pair's name and contents in the given order, then JSON-able `parts`."""
    digest = hashlib.sha256()
    for name, path in files:
        _hash_name_into(digest, name)
        _hash_file_into(digest, path)
    for part in parts:
        _hash_name_into(digest, json.dumps(part, sort_keys=True))
    return digest.hexdigest()[:16]


def fingerprint_shards(pattern: str | Path) -> str | None:
    """The bytes of the evaluation shards a pattern names, as they are on disk now (None: no shard)."""
    from evalsuite.run.literal_paths import matching_files

    shards = [Path(p) for p in matching_files(pattern)]
    return fingerprint_files(shards) if shards else None


def _hash_name_into(digest, name: str) -> None:
    raw = name.encode("utf-8")
    digest.update(len(raw).to_bytes(8, "big") + raw)


def _hash_file_into(digest, path: Path) -> None:
    status = os.stat(path)
    if not stat.S_ISREG(status.st_mode):
        # Opening a pipe or a device would block or read forever.
        raise InputError(f"{path}: not a plain file")
    digest.update(status.st_size.to_bytes(8, "big"))
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
