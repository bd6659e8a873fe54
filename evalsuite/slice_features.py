"""Per-example features to slice the evaluation by, beyond the true class.

An .npz carries them as arrays `meta_<name>` aligned with `y_test`; image
folders as `DIR/test.csv` (or `DIR/val.csv`, beside the evaluation folder)
with a `path` column (relative to that folder, as `cat/001.jpg`) and one
column per feature. Values are integers or short strings. Each value becomes a
TFMA slice with its own metrics and its own check, so a feature has at most
MAX_VALUES distinct values. The training config names which features to slice
by (`[slicing] features`); the others travel with the examples unused.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import numpy as np

from evalsuite.contract import IMAGE_KEY, LABEL_KEY
from evalsuite.errors import InputError

NPZ_PREFIX = "meta_"
MAX_VALUES = 50
MAX_VALUE_LENGTH = 60
MAX_CSV_BYTES = 64 << 20
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
    return text


def from_npz(path: Path, count: int) -> dict[str, np.ndarray]:
    """The `meta_<name>` arrays of an .npz, checked against `count` evaluation examples."""
    with np.load(path, allow_pickle=False) as archive:
        keys = sorted(key for key in archive.files if key.startswith(NPZ_PREFIX))
        try:
            raw = {key[len(NPZ_PREFIX) :]: archive[key] for key in keys}
        except ValueError:
            raise InputError(f"{path}: a meta_ array holds objects; refusing to unpickle") from None
    return {check_name(name, str(path)): check_values(name, values, count, str(path)) for name, values in raw.items()}


def csv_beside(split: Path) -> Path | None:
    """DIR/test.csv for DIR/test (DIR/val.csv for DIR/val), when there is one."""
    file = split.parent / f"{split.name}.csv"
    return file if file.exists() else None


def from_csv(file: Path, split: Path, images: list[Path]) -> dict[str, np.ndarray]:
    """Feature columns of `file`, one row per image of `split` (its `path` column, relative to `split`)."""
    if not file.is_file() or file.stat().st_size > MAX_CSV_BYTES:
        raise InputError(f"{file}: not a plain file of at most {MAX_CSV_BYTES >> 20} MB")
    try:
        with open(file, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
            columns = [c.strip() for c in (rows[0].keys() if rows else [])]
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"{file}: not a UTF-8 CSV file ({error})") from None
    if "path" not in columns:
        raise InputError(f"{file}: needs a 'path' column (each image's path under {split.name}/, as cat/001.jpg)")
    names = [check_name(c, str(file)) for c in columns if c != "path"]
    by_path: dict[str, dict] = {}
    for number, row in enumerate(rows, start=2):
        row = {(k or "").strip(): v for k, v in row.items()}
        key = _relative(row.get("path") or "", split)
        if key in by_path:
            raise InputError(f"{file}: line {number} lists {key} a second time")
        by_path[key] = row
    wanted = [image.relative_to(split).as_posix() for image in images]
    missing = [key for key in wanted if key not in by_path]
    if missing:
        raise InputError(f"{file}: no row for {split.name}/{missing[0]} ({len(missing)} images have none)")
    unknown = sorted(set(by_path) - set(wanted))
    if unknown:
        raise InputError(f"{file}: a row names {unknown[0]}, which is not an image under {split}")
    features = {}
    for name in names:
        column = [(by_path[key].get(name) or "").strip() for key in wanted]
        empty = [key for key, value in zip(wanted, column) if not value]
        if empty:
            raise InputError(f"{file}: feature {name!r} is empty for {empty[0]}")
        values = np.array(column, dtype=str)
        if all(re.fullmatch(r"-?\d{1,18}", v) for v in column):
            values = values.astype(np.int64)
        features[name] = check_values(name, values, len(wanted), str(file))
    return features


def _relative(text: str, split: Path) -> str:
    """'cat/1.jpg', 'test/cat/1.jpg' and './cat/1.jpg' all name split/cat/1.jpg."""
    parts = [p for p in text.strip().replace("\\", "/").split("/") if p not in ("", ".")]
    if len(parts) > 1 and parts[0] == split.name:
        parts = parts[1:]
    return "/".join(parts)


def value_counts(features: dict[str, np.ndarray]) -> dict[str, dict[str, int]]:
    """Examples per value of each feature, values in their natural order."""
    return {
        name: {str(value): int(count) for value, count in zip(*np.unique(values, return_counts=True))}
        for name, values in features.items()
    }


def select(features: dict[str, np.ndarray], wanted: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """The features named in the config, each one the data carry."""
    for name in wanted:
        if name not in features:
            carried = ", ".join(sorted(features)) or "none"
            raise InputError(
                f"{where}: no slice feature {name!r} (named by --slice-by or train.toml's [slicing] features) "
                f"in these evaluation data; they carry: {carried} (.npz arrays meta_<name>, or a "
                "{test,val}.csv beside image folders)"
            )
    return {name: features[name] for name in wanted}


def slice_id(name: str, value) -> str:
    return f"{name}={value}"
