"""Images from files and in arrays: folders of class folders, decoding, resizing, grey or colour.

Folders follow Keras' image_dataset_from_directory: one subfolder per class,
class names the sorted folder names. Every image is decoded with PIL,
brought to 8 bits (evalsuite/data/pixel_depth.py) and, when asked, resized
bilinearly; the data spec records how.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from evalsuite.data.pixel_depth import SIXTEEN_BIT, eight_bit, is_sixteen_bit, note_deep_source
from evalsuite.data.spec import MAX_CLASSES, MIN_CLASSES, RESIZE_METHOD
from evalsuite.errors import InputError
from evalsuite.run.contract import DEFAULT_SEED

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


EVAL_FOLDERS = ("test", "val")


EVAL_SHARE = 0.2  # of each class, when one folder of class folders is split into training and evaluation


def is_image_folders(path: Path, need_train: bool = True) -> bool:
    """DIR/train/ (and DIR/test/ or DIR/val/) holding one folder per class."""
    if not path.is_dir():
        return False
    names = ("train",) if need_train else ("train", *EVAL_FOLDERS)
    return any((path / name).is_dir() for name in names)


def is_class_folders(path: Path) -> bool:
    """DIR/<class>/* alone (no train/, test/ or val/): one folder of images per class, split by a seed."""
    if not path.is_dir() or any((path / name).is_dir() for name in ("train", *EVAL_FOLDERS)):
        return False
    return any(images_in(folder) for folder in class_folders(path))


def eval_folder(path: Path) -> Path:
    for name in EVAL_FOLDERS:
        if (path / name).is_dir():
            return path / name
    raise InputError(f"{path}: no test/ or val/ folder beside train/ (one folder per class in each)")


def class_folders(split: Path) -> list[Path]:
    return sorted((p for p in split.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def images_in(folder: Path) -> list[Path]:
    """The image files of one class folder, as Keras' image_dataset_from_directory lists them."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def image_files(path: Path) -> list[Path]:
    files = []
    for name in ("train", *EVAL_FOLDERS):
        if (path / name).is_dir():
            for folder in class_folders(path / name):
                files.extend(images_in(folder))
    if not files:
        for folder in class_folders(path):
            files.extend(images_in(folder))
    return files


def load_image_folders(
    path: Path,
    image_size: tuple[int, int] | None,
    channels: int | None,
    seed: int = DEFAULT_SEED,
    features: tuple[str, ...] = (),
):
    """DIR/train/<class>/* for training, DIR/test/<class>/* (or DIR/val/) for evaluation; or DIR/<class>/*
    split per class by `seed`, a fifth of each class (at least one image) for evaluation.

    Class names are the subfolder names, sorted (as Keras' image_dataset_from_directory
    reads them); labels follow that order.
    """
    from evalsuite.data.class_names import check_names
    from evalsuite.data.labelled import Dataset

    one_folder = not (path / "train").is_dir()
    train = path if one_folder else path / "train"
    names = [folder.name for folder in class_folders(train)]
    if not MIN_CLASSES <= len(names) <= MAX_CLASSES:
        raise InputError(f"{train}: {len(names)} class folders; need {MIN_CLASSES} to {MAX_CLASSES}")
    check_names(names, f"{train} (folder names)", len(names))
    if one_folder:
        files = _seeded_split(path, names, seed)
    else:
        evaluation = eval_folder(path)
        unseen = sorted({folder.name for folder in class_folders(evaluation)} - set(names))
        if unseen:
            raise InputError(f"{evaluation / unseen[0]}: class {unseen[0]!r} is not in {train}; training never saw it")
        files = {"train": _split_files(train, names), "test": _split_files(evaluation, names)}
    every = files["train"] + files["test"]
    if channels is None:
        channels = 3 if any(is_colour(file) for file, _ in every) else 1
    if image_size is None:
        sizes = {}
        for file, _ in every:
            sizes.setdefault(open_image(file).size, file)
            if len(sizes) > 1:
                (w1, h1), (w2, h2) = list(sizes)
                first, second = sizes.values()
                raise InputError(
                    f"{path}: images of more than one size ({first} is {h1}x{w1}, {second} is {h2}x{w2}); "
                    "pass --image-size HxW to resize them all"
                )
    arrays, scaled = {}, False
    for split, listed in files.items():
        arrays[split], split_scaled = read_pixels(listed, image_size, channels)
        scaled = scaled or split_scaled
    labels = {split: np.array([label for _, label in listed], dtype=np.int64) for split, listed in files.items()}
    return Dataset(
        arrays["train"],
        labels["train"],
        arrays["test"],
        labels["test"],
        source=f"folders:{path.resolve()}" + (f":split-seed={seed}" if one_folder else ""),
        class_names=tuple(names),
        num_classes=len(names),
        resize=resize_text(image_size),
        pixel_scaling=SIXTEEN_BIT if scaled else None,
        features=_features_of(path if one_folder else evaluation, files["test"], features, one_folder),
    )


def _seeded_split(path: Path, names: list[str], seed: int) -> dict[str, list[tuple[Path, int]]]:
    """Each class's images shuffled by `seed`: a fifth (at least one) for evaluation, the rest for training."""
    rng = np.random.default_rng(seed)
    files: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    for label, name in enumerate(names):
        images = images_in(path / name)
        if not images:
            raise InputError(f"{path / name}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} files)")
        if len(images) < 2:
            raise InputError(
                f"{path / name}: {len(images)} image; too few to split into training and evaluation examples "
                "(need 2 per class, or give train/ and test/ folders)"
            )
        order = rng.permutation(len(images))
        held = max(1, round(EVAL_SHARE * len(images)))
        files["test"] += [(images[i], label) for i in sorted(order[:held])]
        files["train"] += [(images[i], label) for i in sorted(order[held:])]
    return files


def _split_files(split: Path, names: list[str]) -> list[tuple[Path, int]]:
    listed = []
    for label, name in enumerate(names):
        folder = split / name
        if not folder.is_dir():
            raise InputError(f"{folder}: missing; every class needs evaluation examples (class {name!r})")
        images = images_in(folder)
        if not images:
            raise InputError(f"{folder}: empty class folder (no {', '.join(IMAGE_SUFFIXES)} files)")
        listed.extend((file, label) for file in images)
    return listed


def read_split(split: Path, names: list[str], size, channels: int, features: tuple[str, ...] = ()):
    """An evaluation split of image folders whose classes must all be among `names` (the run's)."""
    unknown = sorted({folder.name for folder in class_folders(split)} - set(names))
    if unknown:
        raise InputError(f"{split / unknown[0]}: class {unknown[0]!r} is not one the run's models were trained on")
    listed = _split_files(split, names)
    images, _ = read_pixels(listed, size, channels)
    return images, np.array([label for _, label in listed], dtype=np.int64), _features_of(split, listed, features)


def _features_of(split: Path, listed: list[tuple[Path, int]], wanted: tuple[str, ...], one_folder=False) -> dict:
    """The `wanted` per-example features of split DIR/test, from DIR/test.csv (or DIR/val.csv)."""
    from evalsuite.data import slice_features

    if not wanted:
        return {}
    table = None if one_folder else slice_features.csv_beside(split)
    if table is None:
        where = (
            f"{split} (class folders without test/ or val/)"
            if one_folder
            else f"{split} (no {split.name}.csv beside it)"
        )
        raise slice_features.missing(wanted[0], [], where)
    return slice_features.from_csv(table, split, [file for file, _ in listed], wanted)


def open_image(file: Path):
    from PIL import Image

    try:
        image = Image.open(file)
        note_deep_source(image)
        image.load()  # decode now, so a damaged file is named here
    except Exception as error:
        raise InputError(f"{file}: unreadable image ({type(error).__name__}: {str(error)[:120]})") from None
    return image


def is_colour(file: Path) -> bool:
    """Colour unless every pixel has R == G == B (grey PNGs, and colour files holding grey pictures)."""
    image = open_image(file)
    if image.mode in ("1", "L", "LA", "I", "F") or image.mode.startswith("I;16"):
        return False
    return has_colour(np.asarray(image.convert("RGB")))


def has_colour(rgb: np.ndarray) -> bool:
    """Whether images (..., 3) differ between channels anywhere: R == G == B everywhere is grey.

    The one rule for image files and arrays alike; alpha is dropped before it is asked.
    """
    return not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]))


def read_pixels(listed: list[tuple[Path, int]], size, channels: int) -> tuple[np.ndarray, bool]:
    """The images of `listed` as uint8 (N, H, W) or (N, H, W, 3), and whether any was 16-bit (and so scaled).

    Alpha is dropped, palettes expanded, GIFs give their first frame, 16-bit grey scaled to 8 bits.
    """
    images, scaled = [], False
    for file, _ in listed:
        image = open_image(file)
        scaled = scaled or is_sixteen_bit(image)
        images.append(from_pil(eight_bit(image, file), size, channels))
    return np.stack(images), scaled


def from_pil(image, size, channels: int) -> np.ndarray:
    from PIL import Image

    rgb = image.convert("RGB")
    if size is not None and rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.BILINEAR)
    if channels == 3:
        return np.asarray(rgb, dtype=np.uint8)
    return np.asarray(rgb.convert("L"), dtype=np.uint8)


def resize_text(size: tuple[int, int] | None) -> str | None:
    return None if size is None else f"{RESIZE_METHOD} to {size[0]}x{size[1]}"


def conform(dataset, image_size: tuple[int, int] | None, channels: int | None):
    """The dataset resized to `image_size` and made `channels` deep; unchanged when neither is asked."""
    if image_size is None and channels is None:
        return dataset
    current = dataset.spec
    size = None if image_size is None or image_size == (current.height, current.width) else image_size
    depth = current.channels if channels is None else channels
    if size is None and depth == current.channels:
        return dataset
    return dataclasses.replace(
        dataset,
        x_train=conform_images(dataset.x_train, size, depth),
        x_test=conform_images(dataset.x_test, size, depth),
        resize=resize_text(size) if size else dataset.resize,
    )


def conform_images(images: np.ndarray, size, channels: int) -> np.ndarray:
    """Each image resized (bilinear, PIL) and made grey or colour, as image folders are read."""
    from PIL import Image

    current = 1 if images.ndim == 3 else images.shape[3]
    if (size is None or tuple(images.shape[1:3]) == tuple(size)) and current == channels:
        return images
    out = []
    for image in images:
        pil = Image.fromarray(image if image.ndim == 2 else image[..., :3])
        out.append(from_pil(pil, size, channels))
    return np.stack(out)
