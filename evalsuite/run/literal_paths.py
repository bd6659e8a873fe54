"""Paths are never patterns: folder names (the run folder's, the data's) may hold [ ] * ?.

A shard pattern such as `RUN/data/eval-*.tfrecord` is a folder, taken as it is
written, and a glob of file names inside it. Only a --eval-data glob whose
folders do not exist as written is matched as a whole glob, as documented.
Libraries that read every character of a path as a glob (Beam's file
sinks, TensorFlow's checkpoint reader) get a path without those characters,
or an escaped pattern; the analysis reads the examples file by file, from
the list matched here.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import tempfile
from pathlib import Path


def matching_files(pattern: str | Path) -> list[str]:
    """The files a shard pattern names, sorted: its folder read literally, its last part as a glob."""
    folder, name = os.path.split(str(pattern))
    if not os.path.isdir(folder or "."):
        return sorted(glob.glob(str(pattern)))  # a --eval-data glob over folders
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    hidden_too = name.startswith(".")  # as glob: * does not match a leading dot
    return sorted(
        os.path.join(folder, entry)
        for entry in names
        if fnmatch.fnmatchcase(entry, name)
        and (hidden_too or not entry.startswith("."))
        and os.path.isfile(os.path.join(folder, entry))
    )


def as_glob(pattern: str | Path) -> str:
    """The same shard pattern for a library that reads the whole string as a glob: its folder escaped."""
    folder, name = os.path.split(str(pattern))
    if not folder or not os.path.isdir(folder) or not glob.has_magic(folder):
        return str(pattern)
    return os.path.join(glob.escape(folder), name)


@contextlib.contextmanager
def without_glob_characters(path: str | Path):
    """`path`, or while in use a symlink to it from a temporary folder when its name would be read as a glob.

    TensorFlow finds a SavedModel's variables by matching their path as a glob, so a model
    under a folder named run[1] would not load from its own path.
    """
    path = Path(path)
    if not glob.has_magic(str(path.absolute())):
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="evalsuite-") as scratch:
        link = Path(scratch) / "model"
        link.symlink_to(path.resolve(), target_is_directory=path.is_dir())
        yield link
