"""What to call each class: "digit 3" for MNIST, "Shirt" for Fashion-MNIST, or the user's names.

Names come, in order, from `--class-names`, from a `class_names.txt` beside
the data (one name per line, one line per class), from the class folders of
image data, from recognising a well-known data set by the bytes of its
evaluation labels, else "digit N" for ten classes and "class N" otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import unicodedata
import zlib
from pathlib import Path

from evalsuite.data.spec import MAX_CLASSES, MIN_CLASSES
from evalsuite.errors import InputError
from evalsuite.run.contract import class_of
from evalsuite.safe_files import MAX_TEXT_BYTES, read_bounded

NAMES_FILE = "class_names.txt"
FASHION_MNIST = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
# sha256 of the decoded evaluation-label IDX file (t10k-labels-idx1-ubyte), gzipped or not.
KNOWN_LABEL_FILES = {
    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34": FASHION_MNIST,
}


def parse_names(text: str, where: str, count: int | None = None) -> list[str]:
    """Distinct, printable names (one per class), from a comma-separated flag or a file's lines."""
    separator = "\n" if "\n" in text.strip() else ","
    return check_names([name.strip() for name in text.strip().split(separator)], where, count)


def check_names(names: list[str], where: str, count: int | None = None) -> list[str]:
    """`count` names (any number from 2 to 1,000 when None): non-empty, printable, distinct, at most 60 characters."""
    wanted = f"{count}" if count is not None else f"{MIN_CLASSES} to {MAX_CLASSES}"
    right_number = len(names) == count if count is not None else MIN_CLASSES <= len(names) <= MAX_CLASSES
    if not right_number or not all(names) or any(len(name) > 60 for name in names):
        raise InputError(f"{where}: need {wanted} class names of at most 60 characters, got {len(names)}")
    for number, name in enumerate(names, start=1):
        problem = _name_problem(name)
        if problem:
            raise InputError(f"{where}: class name {number} {problem}")
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        key = name.casefold()
        if key in seen:
            raise InputError(f"{where}: class names {seen[key]} and {number} are the same ({name!r})")
        seen[key] = number
    return names


# A class name reaches XML, Markdown tables, terminals and file listings: it must be one printable line.
RESERVED = ("overall",)


def _name_problem(name: str) -> str | None:
    for char in name:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Co", "Cn", "Zl", "Zp") or (category == "Cf" and char != "\u200d"):
            return f"holds a control or invisible character (U+{ord(char):04X}); use printable text"
    if name.casefold() in RESERVED:
        return f"{name!r} is reserved (it names the slice of all examples)"
    return None


def names_beside(path: Path) -> list[str] | None:
    """class_names.txt in a data folder, or beside a data file."""
    folder = path if path.is_dir() else path.parent
    file = folder / NAMES_FILE
    if not file.exists():
        return None
    # A pipe or device named class_names.txt is refused in one line, never read (or waited on).
    raw = read_bounded(file, MAX_TEXT_BYTES, "class names file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{file}: not UTF-8 text (byte {error.start}); save the class names as UTF-8") from None
    return parse_names(text, str(file))


def recognised(label_file_bytes: bytes) -> list[str] | None:
    return list(KNOWN_LABEL_FILES.get(hashlib.sha256(label_file_bytes).hexdigest(), ())) or None


def title(slice_id: str, names: list[str] | None) -> str:
    """'overall', 'digit 3' or 'Shirt' for a slice id (names are recorded for every data set but MNIST-like ones)."""
    class_id = class_of(slice_id)
    if class_id is None:
        return slice_id
    if names and 0 <= class_id < len(names):
        return names[class_id]
    return f"digit {class_id}"


def names_for(path: Path) -> list[str] | None:
    """Names from class_names.txt beside the data, else a recognised data set's, else None."""
    from evalsuite.data.files import find_idx

    names = names_beside(path)
    if names is None and path.is_dir():
        try:
            label_file = find_idx(path, "y_test")
            raw = label_file.read_bytes()
            names = recognised(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (InputError, OSError, EOFError, zlib.error, gzip.BadGzipFile):
            names = None
    return names
