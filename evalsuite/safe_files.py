"""One bounded reader for every file the product reads, and a type check for data inputs.

A path may name a FIFO (opening it for reading waits for a writer that never
comes), a device such as /dev/zero (it never ends), a folder, or a file far
larger than any the product writes. `read_bounded` opens without blocking,
checks what it opened (fstat on the descriptor, so a file swapped after a
check is still caught), refuses anything but a regular file within its size
bound, and only then reads. Each refusal is one InputError line naming the file.

Data inputs (.npz, IDX, TFRecords) are read by libraries that open the path
themselves; `require_data_file` refuses a pipe or device there before any
library opens it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from evalsuite.errors import InputError

MAX_JSON_BYTES = 64 << 20  # docs/reliability.md's bound on every JSON file the product reads
MAX_TEXT_BYTES = 64 << 10  # small text settings: class_names.txt, train.toml, gate.toml


def kind_of(mode: int) -> str:
    """What a file is, in words, for a refusal."""
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_bounded(path: Path | str, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file at `path`, at most `limit` of them, or one InputError line.

    A missing file raises FileNotFoundError (callers name what is missing);
    other OS errors pass through as they are (exit 2, naming the file).
    """
    # O_NONBLOCK: opening a FIFO returns at once instead of waiting for a writer.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path}: {what} is {kind_of(status.st_mode)}, not a regular file; refusing to read it")
        if status.st_size > limit:
            raise InputError(
                f"{path}: {what} is {status.st_size} bytes, over the {limit}-byte bound; refusing to read it"
            )
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise InputError(f"{path}: {what} grew past the {limit}-byte bound while being read; refusing it")
    return data


def read_text(path: Path | str, limit: int, what: str = "file") -> str:
    """`read_bounded`, decoded as UTF-8; bytes that are not UTF-8 are one line naming the file."""
    data = read_bounded(path, limit, what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: {what} is not UTF-8 text (byte {error.start})") from None


def require_data_file(path: Path | str, what: str = "data file") -> None:
    """Refuse a pipe, device or socket given as data before any library opens (and blocks on) it.

    Follows symlinks: a link to /dev/zero is a device. A missing path is left
    for the reader to name.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise InputError(f"{path}: {what} is {kind_of(mode)}, not a regular file; refusing to read it")
