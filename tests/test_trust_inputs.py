"""Inputs are read for what they are: pixel depths and scales, grey or colour, every class evaluated,
paths that are never patterns, names that are always text."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.datasets import load_eval_split, load_path
from evalsuite.data.files import FLOAT_SCALING
from evalsuite.data.pixel_depth import SIXTEEN_BIT
from evalsuite.errors import InputError
from tests.helpers import SEED, error_lines


def _png_folders(root: Path, images: dict[str, list[np.ndarray]], splits=("train", "test"), **save) -> Path:
    """root/<split>/<class>/<n>.png for every split, the same images in each."""
    from PIL import Image

    for split in splits:
        for name, arrays in images.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for index, array in enumerate(arrays):
                Image.fromarray(array).save(folder / f"{index}.png", **save)
    return root


def _pipeline(*args: str) -> int:
    from pipeline.run import main as pipeline_main

    return pipeline_main([*args, "--epochs", "1", "2", "--seed", str(SEED), "-q"])


# 1. 16-bit grey (and other depths PIL gives) ----------------------------------------------------------


def test_sixteen_bit_grey_pngs_are_scaled_to_8_bits_and_recorded(tmp_path):
    """Mid-grey 16-bit stays mid-grey (not white): the high byte, v >> 8, and the spec says so."""
    levels = {"dark": 1000, "mid": 32768, "white": 65535}
    folders = _png_folders(tmp_path / "scans", {n: [np.full((4, 4), v, np.uint16)] * 2 for n, v in levels.items()})
    dataset = load_path(folders)
    expected = {name: value >> 8 for name, value in levels.items()}  # 3, 128, 255
    for label, name in enumerate(dataset.class_names):
        assert np.all(dataset.x_train[dataset.y_train == label] == expected[name])
        assert np.all(dataset.x_test[dataset.y_test == label] == expected[name])
    recorded = dataset.describe()["data_spec"]
    assert recorded["pixel_scaling"] == SIXTEEN_BIT and "16-bit" in dataset.spec.describe()
    # Evaluation data read later (--eval-data) are scaled by the same rule.
    images, labels, _ = load_eval_split(folders, dataset.spec)
    np.testing.assert_array_equal(images, dataset.x_test)


def _rgb16_png(path: Path, rgb: tuple[int, int, int]) -> None:
    """A 2x2 PNG with 16 bits per channel (PIL cannot write one)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" + np.array([rgb, rgb], dtype=">u2").tobytes()
    header = struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * 2)) + chunk(b"IEND", b"")
    )


def test_sixteen_bit_colour_pngs_follow_the_same_rule_and_are_recorded(tmp_path):
    folders = _png_folders(tmp_path / "photos", {"a": [np.zeros((2, 2, 3), np.uint8)] * 2, "b": []})
    for split in ("train", "test"):
        _rgb16_png(folders / split / "b" / "deep.png", (40000, 20000, 65535))
    dataset = load_path(folders)
    assert dataset.spec.channels == 3 and dataset.spec.pixel_scaling == SIXTEEN_BIT
    assert dataset.x_test[dataset.y_test == 1][0, 0, 0].tolist() == [40000 >> 8, 20000 >> 8, 255]


def test_eight_bit_data_keep_the_data_spec_record_they_always_had(tmp_path):
    folders = _png_folders(tmp_path / "plain", {"a": [np.zeros((4, 4), np.uint8)], "b": [np.ones((4, 4), np.uint8)]})
    recorded = load_path(folders).describe()["data_spec"]
    assert "pixel_scaling" not in recorded


@pytest.mark.parametrize(
    "array, expected",
    [
        (np.full((4, 4), 0.5, np.float32), "32-bit floating-point pixels (PIL mode F)"),
        (np.full((4, 4), 70000, np.int32), "outside 0..65535"),
    ],
)
def test_float_and_wide_integer_images_are_refused_naming_the_file(tmp_path, array, expected):
    """PIL reads by content, not by name: a TIFF called .png gives mode F or I; never clipped in silence."""
    from PIL import Image

    folders = _png_folders(tmp_path / "data", {"a": [np.zeros((4, 4), np.uint8)] * 2, "b": []})
    for split in ("train", "test"):
        Image.fromarray(array).save(folders / split / "b" / "deep.png", format="TIFF")
    with pytest.raises(InputError, match=re.escape(expected)) as raised:
        load_path(folders)
    assert "deep.png" in str(raised.value) and "\n" not in str(raised.value)


def test_thirty_two_bit_integer_images_within_16_bits_are_scaled_as_16_bit(tmp_path):
    from PIL import Image

    folders = _png_folders(tmp_path / "data", {"a": [np.zeros((4, 4), np.uint8)] * 2, "b": []})
    for split in ("train", "test"):
        Image.fromarray(np.full((4, 4), 32768, np.int32)).save(folders / split / "b" / "i.png", format="TIFF")
    dataset = load_path(folders)
    assert np.all(dataset.x_test[dataset.y_test == 1] == 128) and dataset.spec.pixel_scaling == SIXTEEN_BIT


# 2. One pixel scale for every split ------------------------------------------------------------------


def _float_npz(path: Path, x_train, x_test) -> Path:
    labels = {"y_train": np.arange(len(x_train)) % 2, "y_test": np.arange(len(x_test)) % 2}
    np.savez(path, x_train=x_train, x_test=x_test, **labels)
    return path


def test_one_stray_float_pixel_is_refused_not_taken_for_another_scale(tmp_path):
    """0..1 floats with one test pixel at 1.0001: today the test split turns black; now one line, count and split."""
    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((20, 4, 4)), rng.random((10, 4, 4))
    x_test[3, 1, 2] = 1.0001
    with pytest.raises(InputError) as raised:
        load_path(_float_npz(tmp_path / "stray.npz", x_train, x_test))
    message = str(raised.value)
    assert "the test split: 1 pixel value outside 0..1" in message and "\n" not in message

    x_train[0, 0, :3] = -0.5
    with pytest.raises(InputError, match="the train split: 3 pixel values outside 0..1"):
        load_path(_float_npz(tmp_path / "negative.npz", x_train, x_test))


def test_float_pixels_of_both_splits_share_one_scale_and_it_is_recorded(tmp_path):
    rng = np.random.default_rng(1)
    x_train, x_test = rng.random((20, 4, 4)), rng.random((10, 4, 4))
    x_test[0] = 0.0  # an all-black image says nothing about the scale; the splits decide together
    dataset = load_path(_float_npz(tmp_path / "unit.npz", x_train, x_test))
    np.testing.assert_array_equal(dataset.x_test, np.rint(x_test * 255).astype(np.uint8))
    assert dataset.spec.pixel_scaling == FLOAT_SCALING
    bytes_scale = load_path(_float_npz(tmp_path / "bytes.npz", x_train * 255, x_test * 255))
    np.testing.assert_array_equal(bytes_scale.x_test, dataset.x_test)
    assert bytes_scale.spec.pixel_scaling is None


# 3. Grey or colour: one rule for files and arrays -------------------------------------------------------


def test_equal_channel_npz_is_grey_as_image_folders_are(tmp_path):
    """RGB and RGBA with R == G == B everywhere are grey in an .npz as in a folder of PNGs; alpha dropped in both."""
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    rgba = np.stack([grey, grey, grey, rng.integers(0, 256, grey.shape, dtype=np.uint8)], axis=-1)
    labels = np.array([0, 1, 0, 1])
    for name, images in (("rgb", rgba[..., :3]), ("rgba", rgba)):
        npz = tmp_path / f"{name}.npz"
        np.savez(npz, x_train=images, y_train=labels, x_test=images, y_test=labels)
        folders = _png_folders(tmp_path / name, {"a": list(images[labels == 0]), "b": list(images[labels == 1])})
        from_npz, from_files = load_path(npz), load_path(folders)
        assert from_npz.spec.channels == from_files.spec.channels == 1
        np.testing.assert_array_equal(np.sort(from_npz.x_train, axis=0), np.sort(from_files.x_train, axis=0))

    coloured = rgba[..., :3].copy()
    coloured[0, 0, 0, 0] ^= 1  # one channel of one pixel differs: colour, in both
    np.savez(tmp_path / "colour.npz", x_train=coloured, y_train=labels, x_test=rgba[..., :3], y_test=labels)
    assert load_path(tmp_path / "colour.npz").spec.channels == 3


# 4. Every class evaluated, checked before training --------------------------------------------------------


def test_class_without_evaluation_examples_is_refused_before_training(tmp_path, capsys):
    """12 classes in training, 10 in the test split: one line naming classes 10 and 11, and no model written."""
    rng = np.random.default_rng(3)
    data = tmp_path / "twelve.npz"
    np.savez(
        data,
        x_train=rng.integers(0, 256, (48, 8, 8), dtype=np.uint8),
        y_train=np.arange(48) % 12,
        x_test=rng.integers(0, 256, (20, 8, 8), dtype=np.uint8),
        y_test=np.arange(20) % 10,
    )
    run = tmp_path / "run"
    assert _pipeline("--run-dir", str(run), "--data", str(data)) == 2
    lines = error_lines(capsys.readouterr().err)
    assert len(lines) == 1, lines
    assert "the test split has no examples of class 10, 11" in lines[0]
    assert not (run / "models").exists() and not run.exists()


# 5. Paths are never patterns -------------------------------------------------------------------------------


def test_shards_of_a_folder_named_like_a_glob_are_its_own(tmp_path):
    """run[1]/data/eval-*.tfrecord names run[1]'s shards, not those of a folder run1 beside it."""
    from evalsuite.run.fingerprints import fingerprint_files, fingerprint_shards

    for folder, content in (("run[1]", b"mine"), ("run1", b"not mine")):
        (tmp_path / folder / "data").mkdir(parents=True)
        (tmp_path / folder / "data" / "eval-00000-of-00001.tfrecord").write_bytes(content)
    mine = tmp_path / "run[1]" / "data" / "eval-00000-of-00001.tfrecord"
    assert fingerprint_shards(tmp_path / "run[1]" / "data" / "eval-*.tfrecord") == fingerprint_files([mine])


def test_a_run_folder_named_like_a_glob_runs_whole_and_is_reused(tmp_path, tiny_npz):
    run = tmp_path / "run[1]*?"
    assert _pipeline("--run-dir", str(run), "--data", str(tiny_npz)) == 0
    first = json.loads((run / "manifest.json").read_text())["stages"]
    assert (run / "report" / "index.html").is_file()
    assert _pipeline("--run-dir", str(run), "--data", str(tiny_npz)) == 0
    again = json.loads((run / "manifest.json").read_text())["stages"]
    for stage in ("data", "training", "analysis"):  # reused: recorded once, not redone
        assert again[stage] == first[stage], stage


# 6. Names are text -----------------------------------------------------------------------------------------

DOLLAR_NAMES = [
    "cost $5 to $10",
    "cost $10% to $20",  # not even valid mathtext
    "<b>bold</b> & co",
    *[f"plain {n}" for n in range(3, 10)],
]


def test_figures_draw_names_with_dollar_signs_as_text():
    from reports.plots import confusion_figure, per_class_figure

    rows = [
        {"title": name, "baseline": 0.5, "candidate": 0.6, "delta": 0.1, "interval": [0.0, 0.2]}
        for name in DOLLAR_NAMES
    ]
    assert per_class_figure(rows, "base $x%$", "cand", 0.03).startswith(b"\x89PNG")
    matrix = np.eye(len(DOLLAR_NAMES), dtype=int).tolist()
    assert confusion_figure({"a $%$": matrix}, DOLLAR_NAMES).startswith(b"\x89PNG")


def test_a_run_whose_class_names_hold_dollar_signs_reports_and_passes(tmp_path, tiny_npz):
    data = tmp_path / "named"
    data.mkdir()
    shutil.copy(tiny_npz, data / "tiny.npz")
    (data / "class_names.txt").write_text("\n".join(DOLLAR_NAMES) + "\n")
    run = tmp_path / "run"
    assert _pipeline("--run-dir", str(run), "--data", str(data / "tiny.npz")) == 0
    page = (run / "report" / "index.html").read_text()
    assert "cost $5 to $10" in page and "&lt;b&gt;bold&lt;/b&gt; &amp; co" in page and "<b>bold" not in page
