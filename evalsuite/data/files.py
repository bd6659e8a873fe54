"""MNIST's file formats and the .npz layout: read, checked for size and shape, never unpickled."""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from evalsuite.data.spec import MAX_CLASSES
from evalsuite.errors import InputError
from evalsuite.safe_files import require_data_file

IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
MNIST_IMAGE_SHAPE = (28, 28)


def find_idx_or_none(folder: Path, key: str) -> Path | None:
    try:
        return find_idx(folder, key)
    except InputError:
        return None


def find_idx(folder: Path, key: str) -> Path:
    for stem in IDX_FILES[key]:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(f"{folder}: missing {IDX_FILES[key][0]}[.gz]")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) holding unsigned bytes."""
    require_data_file(path, "IDX file")
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise InputError(f"{path}: cannot read ({error})") from None
    if len(raw) < 4:
        raise InputError(f"{path}: not an IDX file (too short)")
    zero, dtype_code, ndim = raw[0] << 8 | raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08 or ndim not in (1, 3):
        raise InputError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (expected 0x00000801 or 0x00000803)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise InputError(f"{path}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "has trailing bytes"
        raise InputError(f"{path}: IDX data {state}: header says {dims}, {len(raw) - header} bytes follow")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    require_data_file(path, ".npz file")  # a FIFO or device would block or never end
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                raise InputError(f"{path}: not a readable .npz (not a zip archive)")
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise InputError(f"{path}: missing key {missing[0]!r} (needs {', '.join(keys)})")
            return {key: archive[key] for key in keys}
    except InputError:
        raise
    except ValueError as error:
        if "pickle" in str(error).lower():
            raise InputError(f"{path}: holds object arrays; refusing to unpickle") from None
        raise InputError(f"{path}: not a readable .npz ({error})") from None
    except Exception as error:  # zipfile.BadZipFile, OSError, EOFError ...
        raise InputError(f"{path}: not a readable .npz ({type(error).__name__}: {error})") from None


def save_npz(path: Path, dataset) -> None:
    """Write a dataset in the .npz layout `evalsuite.data.datasets.load_npz` reads (for tests and sharing)."""
    buffer = io.BytesIO()
    features = {f"meta_{name}": values for name, values in getattr(dataset, "features", {}).items()}
    np.savez_compressed(
        buffer,
        x_train=dataset.x_train,
        y_train=dataset.y_train,
        x_test=dataset.x_test,
        y_test=dataset.y_test,
        **features,
    )
    path.write_bytes(buffer.getvalue())


UNIT_SCALE, BYTE_SCALE = "0..1", "0..255"
FLOAT_SCALING = "float 0..1 scaled to 8 bits: round(value * 255)"


def float_scale(*splits) -> str:
    """The one scale of the float pixels of every split, decided from all of them together.

    0..255 when most non-zero float pixels are above 1, else 0..1: a stray value just past 1
    in 0..1 data is refused as out of range, never taken as the sign of another scale.
    """
    above = nonzero = 0
    for images in splits:
        images = np.asarray(images)
        if images.dtype.kind == "f":
            nonzero += int(np.count_nonzero(images))
            above += int(np.count_nonzero(images > 1))
    return BYTE_SCALE if above * 2 > nonzero else UNIT_SCALE


def to_uint8(images: np.ndarray, where: str, scale: str | None = None) -> np.ndarray:
    """uint8 as is; integers in 0..255; floats in `scale` (0..1, scaled by 255, or 0..255), by default
    decided from these images alone. Anything else is refused with how many pixels are outside."""
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iuf":
        raise InputError(f"{where}: images have dtype {images.dtype}, expected numbers")
    values = images.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{where}: images hold NaN or infinite pixels")
    unit = images.dtype.kind == "f" and (scale or float_scale(images)) == UNIT_SCALE
    outside = int(np.count_nonzero((values < 0) | (values > (1.0 if unit else 255.0))))
    if outside:
        shared = "; float pixels of all splits share one scale, decided from all of them" if unit else ""
        raise InputError(
            f"{where}: {outside} pixel value{'s' if outside > 1 else ''} outside {UNIT_SCALE if unit else BYTE_SCALE} "
            f"({values.min()}..{values.max()}){shared}"
        )
    if unit:
        values = values * 255.0
    return np.rint(values).astype(np.uint8)


def checked_split(images, labels, where: str, split: str, scale: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, H, W) or (N, H, W, C) with C 1, 3 or 4 (alpha dropped), labels (N,) of integers >= 0."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 2 and images.shape[1:] == (MNIST_IMAGE_SHAPE[0] * MNIST_IMAGE_SHAPE[1],):
        images = images.reshape(-1, *MNIST_IMAGE_SHAPE)  # MNIST as flat rows
    if images.ndim == 4 and images.shape[3] == 1:
        images = images[..., 0]
    if not (images.ndim == 3 or (images.ndim == 4 and images.shape[3] in (3, 4))) or 0 in images.shape[1:]:
        raise InputError(f"{where}: {split} images have shape {images.shape}, expected (N, H, W) or (N, H, W, 1|3|4)")
    if labels.ndim != 1:
        raise InputError(f"{where}: {split} labels have shape {labels.shape}, expected (N,)")
    if len(images) != len(labels):
        raise InputError(f"{where}: {len(images)} {split} images but {len(labels)} labels")
    if len(labels) == 0:
        raise InputError(f"{where}: the {split} split is empty")
    if labels.dtype.kind not in "iu" and not (
        labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))
    ):
        raise InputError(f"{where}: {split} labels have dtype {labels.dtype}, expected integers")
    if labels.min() < 0 or labels.max() >= MAX_CLASSES:
        raise InputError(f"{where}: {split} labels outside 0..{MAX_CLASSES - 1} ({labels.min()}..{labels.max()})")
    images = to_uint8(images, f"{where}: the {split} split", scale)
    if images.ndim == 4 and images.shape[3] == 4:
        images = np.ascontiguousarray(images[..., :3])  # RGBA: the alpha channel is dropped
    return images, labels.astype(np.int64)
