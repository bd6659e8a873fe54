"""What a zip archive may inflate to, checked from its directory before any library unpacks it.

A `.keras` file is a zip. A few megabytes of zeros can declare gigabytes, and
Keras inflates its members into memory before building the model. The sizes
the archive's directory declares bound what Python's `zipfile` (which Keras
uses) will ever produce: it stops at a member's declared size and fails its
CRC check if more was packed. So checking the declared sizes is enough.

Real models compress little (weights are close to random bytes); a member
that inflates many times over, past a size where it matters, is a bomb.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from evalsuite.errors import InputError

MAX_TOTAL_BYTES = 4 << 30  # everything the archive declares, inflated
MAX_RATIO = 100  # inflated / compressed, for anything past RATIO_FLOOR_BYTES
RATIO_FLOOR_BYTES = 64 << 20  # smaller than this, no ratio can hurt
MAX_MEMBERS = 10_000


def check_zip_bounds(path: Path, what: str) -> None:
    """Refuse, in one line naming the file, a zip whose declared contents exceed the bounds above."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as error:
        raise InputError(f"{path}: {what} is not a readable zip archive ({error})") from None
    if len(members) > MAX_MEMBERS:
        raise InputError(f"{path}: {what} holds {len(members)} files, more than {MAX_MEMBERS}; refusing to open it")
    total = sum(member.file_size for member in members)
    packed = sum(member.compress_size for member in members)
    for member in members:
        if member.file_size > RATIO_FLOOR_BYTES and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise InputError(
                f"{path}: {what} member {member.filename!r} inflates {member.compress_size} bytes to "
                f"{member.file_size} (over {MAX_RATIO} times): a zip bomb, not a model; refusing to open it"
            )
    if total > MAX_TOTAL_BYTES:
        raise InputError(
            f"{path}: {what} declares {total} bytes inflated, over the {MAX_TOTAL_BYTES}-byte bound; "
            "refusing to open it"
        )
    if total > RATIO_FLOOR_BYTES and total > MAX_RATIO * max(packed, 1):
        raise InputError(
            f"{path}: {what} inflates {packed} bytes to {total} (over {MAX_RATIO} times): a zip bomb, not a model; "
            "refusing to open it"
        )
