"""Per-example features to slice the evaluation by, beyond the true class.

An .npz carries them as arrays `meta_<name>` aligned with `y_test`; image
folders as `DIR/test.csv` (or `DIR/val.csv`, beside the evaluation folder)
with a `path` column (relative to that folder, as `cat/001.jpg`) and one
column per feature. Values are integers or short strings. Each value becomes a
TFMA slice with its own metrics and its own check, so a feature has at most
MAX_VALUES distinct values. The training config names which features to slice
by (`[slicing] features` or `--slice-by`); only those are read and checked.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError
from evalsuite.run.contract import IMAGE_KEY, LABEL_KEY
from evalsuite.safe_files import read_bounded

NPZ_PREFIX = "meta_"
MAX_VALUES = 50
MAX_VALUE_LENGTH = 60
MAX_CSV_BYTES = 64 << 20
NUMBER_LIKE = re.compile(r"[+-]?(\d[\d_]*\.?[\d_]*|\.\d[\d_]*)([eE][+-]?\d+)?|[+-]?(inf|nan|infinity)", re.I)
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")
RESERVED = (IMAGE_KEY, LABEL_KEY, "overall", "path")


def check_name(name: str, where: str) -> str:
    if not NAME.fullmatch(name) or name.lower() in RESERVED:
        raise InputError(
            f"{where}: feature name {name!r} must be a letter then letters, digits or _ (at most 40), "
            f"and not one of {', '.join(RESERVED)}"
        )
    return name


def check_values(name: str, values, count: int, where: str) -> np.ndarray:
    """int64 for whole numbers, else str; `count` values, at most MAX_VALUES distinct, each one printable line."""
    values = np.asarray(values)
    if values.ndim != 1 or len(values) != count:
        raise InputError(f"{where}: feature {name!r} has shape {values.shape}, expected ({count},) (one per example)")
    if values.dtype.kind in "iub":
        values = values.astype(np.int64)
    elif values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        values = values.astype(np.int64)
    elif values.dtype.kind in "US":
        values = np.array([_text(v, name, where) for v in values.tolist()], dtype=str)
    else:
        raise InputError(f"{where}: feature {name!r} has dtype {values.dtype}; slice features are integers or strings")
    distinct = np.unique(values)
    if len(distinct) > MAX_VALUES:
        raise InputError(
            f"{where}: feature {name!r} has {len(distinct)} distinct values; at most {MAX_VALUES} "
            "(each value is a slice with its own check)"
        )
    return values


def _text(value, name: str, where: str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    text = text.strip()
    bad = [c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")]
    if not text or len(text) > MAX_VALUE_LENGTH or bad or "," in text:
        raise InputError(
            f"{where}: feature {name!r} has the value {text[:40]!r}; values are one printable line of 1 to "
            f"{MAX_VALUE_LENGTH} characters without commas"
        )
    if NUMBER_LIKE.fullmatch(text):
        # TFMA matches a slice value that reads as a number as that number: "01" and "1" would be one slice.
        raise InputError(
            f"{where}: feature {name!r} has the text value {text!r}, which reads as a number; "
            "give whole numbers as integers, or text with a letter in it"
        )
    return text


def missing(name: str, carried, where: str) -> InputError:
    return InputError(
        f"{where}: no slice feature {name!r} (named by --slice-by or train.toml's [slicing] features) "
        f"in these evaluation data; they carry: {', '.join(sorted(carried)) or 'none'} (.npz arrays meta_<name>, "
        "or a {test,val}.csv beside image folders)"
    )


def from_npz(path: Path, count: int, wanted: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The `meta_<name>` arrays of an .npz for the `wanted` names, checked against `count` evaluation examples.

    Arrays no one asked for are neither read nor checked.
    """
    if not wanted:
        return {}
    with np.load(path, allow_pickle=False) as archive:
        carried = [key[len(NPZ_PREFIX) :] for key in archive.files if key.startswith(NPZ_PREFIX)]
        features = {}
        for name in wanted:
            if name not in carried:
                raise missing(name, carried, str(path))
            try:
                values = archive[NPZ_PREFIX + name]
            except ValueError:
                raise InputError(f"{path}: meta_{name} holds objects; refusing to unpickle") from None
            features[name] = check_values(name, values, count, str(path))
    return features


def csv_beside(split: Path) -> Path | None:
    """DIR/test.csv for DIR/test (DIR/val.csv for DIR/val), when there is one."""
    file = split.parent / f"{split.name}.csv"
    return file if file.exists() else None


def from_csv(file: Path, split: Path, images: list[Path], wanted: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The `wanted` columns of `file`, one row per image of `split` (its `path` column, relative to `split`)."""
    raw = read_bounded(file, MAX_CSV_BYTES, "slice features table")  # a pipe or device is refused, not read
    try:
        with io.StringIO(raw.decode("utf-8-sig"), newline="") as handle:
            reader = csv.DictReader(handle)
            columns = [(name or "").strip() for name in reader.fieldnames or []]
            rows = []
            for number, row in enumerate(reader, start=2):
                if None in row:
                    raise InputError(f"{file}: line {number} has more fields than the header")
                rows.append({(key or "").strip(): (value or "").strip() for key, value in row.items()})
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{file}: not a UTF-8 CSV file ({error})") from None
    if "path" not in columns:
        raise InputError(f"{file}: needs a 'path' column (each image's path under {split.name}/, as cat/001.jpg)")
    for name in wanted:
        if name not in columns:
            raise missing(name, [c for c in columns if c != "path"], str(file))
    by_path: dict[str, dict] = {}
    for number, row in enumerate(rows, start=2):
        key = _relative(row.get("path", ""), split)
        if key in by_path:
            raise InputError(f"{file}: line {number} lists {key} a second time")
        by_path[key] = row
    listed = [image.relative_to(split).as_posix() for image in images]
    absent = [key for key in listed if key not in by_path]
    if absent:
        raise InputError(f"{file}: no row for {split.name}/{absent[0]} ({len(absent)} images have none)")
    unknown = sorted(set(by_path) - set(listed))
    if unknown:
        raise InputError(f"{file}: a row names {unknown[0]}, which is not an image under {split}")
    features = {}
    for name in wanted:
        column = [by_path[key].get(name, "") for key in listed]
        empty = [key for key, value in zip(listed, column) if not value]
        if empty:
            raise InputError(f"{file}: feature {name!r} is empty for {empty[0]}")
        # Whole numbers written plainly are integers; anything else ("007", "1.0", "phone") is text.
        plain = all(re.fullmatch(r"-?(0|[1-9]\d{0,17})", value) for value in column)
        values = np.array(column, dtype=str).astype(np.int64) if plain else np.array(column, dtype=str)
        features[name] = check_values(name, values, len(listed), str(file))
    return features


def _relative(text: str, split: Path) -> str:
    """'cat/1.jpg', 'test/cat/1.jpg' and './cat/1.jpg' all name split/cat/1.jpg."""
    parts = [p for p in text.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) > 2 and parts[0] == split.name:  # an image is <class>/<file> under the split
        parts = parts[1:]
    return "/".join(parts)


def value_counts(features: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Examples per value of each feature, values in their natural order."""
    return {
        name: {str(value): int(count) for value, count in zip(*np.unique(values, return_counts=True))}
        for name, values in features.items()
    }


def features_fingerprint(features: dict[str, np.ndarray]) -> str | None:
    """The features' names and values (None without any): kept apart from the images', as they shape no model."""
    if not features:
        return None
    from evalsuite.run.fingerprints import fingerprint

    return fingerprint(*[[name, values.dtype.kind, values.tolist()] for name, values in sorted(features.items())])


def slice_id(name: str, value) -> str:
    return f"{name}={value}"


CROSS_SEPARATOR = " vs "  # between the two slices of a cross slice's name


def tfma_slice_id(key) -> str:
    """'overall', 'label=3', 'pen=red' or 'overall vs label=3' for a TFMA (cross-)slice key: the names every stage uses."""
    if not key:
        return "overall"
    if is_cross_slice(key):
        return f"{tfma_slice_id(key[0])}{CROSS_SEPARATOR}{tfma_slice_id(key[1])}"
    return ",".join(f"{column}={value}" for column, value in key)


def is_cross_slice(key) -> bool:
    """A TFMA cross-slice key is (first slice key, second slice key); a plain one holds (column, value) pairs."""
    return len(key) == 2 and all(isinstance(part, tuple) and all(isinstance(x, tuple) for x in part) for part in key)
