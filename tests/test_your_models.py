"""Your model on your data: built-in and own models fitted to the spec, and whole runs on colour, 8x8 and 20 classes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.datasets import Dataset
from evalsuite.data.files import save_npz
from evalsuite.data.spec import MNIST, DataSpec
from evalsuite.errors import InputError

# Models ------------------------------------------------------------------------------------------
from tests.helpers import SEED, colour_folders, predict_probabilities


def test_the_default_mlp_is_the_tutorials_bit_for_bit(bundled):
    """The default does not move: the MLP for the MNIST spec trains to the weights of the tutorial's own MLP."""
    import keras
    import tensorflow as tf

    from training.model import build_model, scale_images

    small = bundled.subset(200, None, SEED)

    def tutorial():
        model = keras.Sequential(
            [
                keras.Input(shape=(28, 28), name="image"),
                keras.layers.Flatten(),
                keras.layers.Dense(512, activation="relu"),
                keras.layers.Dropout(0.2),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(small.x_train / np.float32(255), small.y_train, epochs=1, batch_size=32, verbose=0)
        return model.get_weights()

    def ours():
        model = build_model(MNIST)
        model.fit(scale_images(small.x_train, MNIST), small.y_train, epochs=1, batch_size=32, verbose=0)
        return model.get_weights()

    weights = []
    for make in (tutorial, ours):
        keras.utils.set_random_seed(SEED)
        tf.config.experimental.enable_op_determinism()
        weights.append(make())
    assert len(weights[0]) == len(weights[1]) == 4
    for a, b in zip(*weights):
        assert a.dtype == b.dtype and np.array_equal(a, b)


FACTORIES = """
import keras

def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])

def logits(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(), keras.layers.Dense(num_classes)])

def too_few(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes - 1, activation="softmax")])

def not_a_model(input_shape, num_classes):
    return "a model"
"""


@pytest.mark.parametrize(
    "name, expected",
    [
        ("logits", "not probabilities .*end it with a softmax"),
        ("too_few", r"outputs \(2,\), the data have 3 classes"),
        ("not_a_model", "returned str, not a Keras model"),
        ("missing", "has no function 'missing'"),
    ],
)
def test_a_factory_that_does_not_fit_is_one_line(tmp_path, name, expected):
    from training.model import build_model, check_probabilities

    (tmp_path / "factories.py").write_text(FACTORIES)
    spec = DataSpec(6, 6, 3, 3)
    with pytest.raises(InputError, match=expected) as error:
        model = build_model(spec, f"{tmp_path / 'factories.py'}:{name}")
        check_probabilities(model, np.random.default_rng(0).random((4, 6, 6, 3), dtype=np.float32), name)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("model", ["nope", "x.py:", "no_such_file.py:build", "no_such_package_here.module:build"])
def test_bad_model_flags(model):
    from training.model import build_model

    with pytest.raises(InputError, match="--model"):
        build_model(MNIST, model)


def test_built_in_and_own_models_fit_the_spec(tmp_path):
    from training.model import build_model, check_probabilities, model_fingerprint

    (tmp_path / "factories.py").write_text(FACTORIES)
    spec = DataSpec(32, 32, 3, 5)
    images = np.random.default_rng(0).random((4, 32, 32, 3), dtype=np.float32)
    for model in ("mlp", "cnn", f"{tmp_path / 'factories.py'}:build"):
        built = build_model(spec, model)
        assert built.compiled and tuple(built.outputs[0].shape[1:]) == (5,)
        check_probabilities(built, images, model)
    assert model_fingerprint("mlp") is None
    before = model_fingerprint(f"{tmp_path / 'factories.py'}:build")
    (tmp_path / "factories.py").write_text(FACTORIES + "\n# edited\n")
    assert model_fingerprint(f"{tmp_path / 'factories.py'}:build") != before


def test_epochs_flag_takes_both_forms():
    from pipeline.run import build_parser
    from training.__main__ import training_config

    parser = build_parser()
    for argv in (["--epochs", "2,5"], ["--epochs", "2", "5"]):
        assert training_config(parser.parse_args(argv)).epochs == (2, 5)
    assert training_config(parser.parse_args([])).epochs == (3, 6)
    config = training_config(parser.parse_args(["--model", "cnn", "--image-size", "32x32", "--channels", "3"]))
    assert (config.model, config.image_size, config.channels, config.optimizer) == ("cnn", (32, 32), 3, "adam")


# Whole runs --------------------------------------------------------------------------------------


def _pipeline(*argv: str) -> int:
    from pipeline.run import main

    return main([*argv, "--seed", str(SEED), "-q"])


def _tfma_matches_numpy(run_dir: Path) -> dict:
    """TFMA's per-class accuracies equal a plain argmax over the same SavedModels; returns the summary."""
    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir

    run = RunDir(run_dir)
    summary = json.loads((run.analysis_dir / "summary.json").read_text())
    spec = recorded_spec(summary["eval_data"], "summary")
    _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), spec)
    for role in ("baseline", "candidate"):
        predicted = predict_probabilities(run.model_dir(summary[role]["label"]), records).argmax(axis=1)
        slices = summary["models"][role]
        assert slices["overall"]["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
        for c in range(spec.num_classes):
            mine = labels == c
            assert slices[f"label={c}"]["examples"] == mine.sum()
            assert slices[f"label={c}"]["accuracy"] == pytest.approx(np.mean(predicted[mine] == c), abs=1e-6)
        matrix = np.array(summary["confusion_matrices"][role]["overall"])
        expected = np.zeros((spec.num_classes, spec.num_classes), dtype=int)
        np.add.at(expected, (labels, predicted), 1)
        np.testing.assert_array_equal(matrix, expected)
    return summary


@pytest.mark.slow
def test_a_folder_of_colour_photos_with_the_cnn(tmp_path):
    data = colour_folders(tmp_path / "fruit", per_class=60)
    run_dir = tmp_path / "run"
    code = _pipeline("--run-dir", str(run_dir), "--data", str(data), "--model", "cnn", "--image-size", "32x32",
                     "--epochs", "1,2")  # fmt: skip
    assert code in (0, 1)
    summary = _tfma_matches_numpy(run_dir)
    spec = summary["eval_data"]["data_spec"]
    assert (spec["height"], spec["width"], spec["channels"], spec["num_classes"]) == (32, 32, 3, 2)
    assert spec["class_names"] == ["apple", "leaf"] and spec["resize"].startswith("bilinear")
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    assert {check["title"] for check in verdict["checks"] if check["slice"] != "overall"} == {"apple", "leaf"}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["data"]["data_spec"] == spec
    assert manifest["stages"]["training"]["config"]["model"] == "cnn"
    assert "apple" in (run_dir / "report" / "index.html").read_text()


@pytest.mark.slow
def test_an_npz_of_8x8_images_with_an_own_model(tmp_path, bundled):
    from PIL import Image

    small = bundled.subset(600, 300, SEED)
    shrink = lambda images: np.stack([np.asarray(Image.fromarray(i).resize((8, 8))) for i in images])  # noqa: E731
    data = tmp_path / "digits8.npz"
    np.savez(
        data, x_train=shrink(small.x_train), y_train=small.y_train, x_test=shrink(small.x_test), y_test=small.y_test
    )
    (tmp_path / "my_model.py").write_text(FACTORIES)
    run_dir = tmp_path / "run"
    code = _pipeline("--run-dir", str(run_dir), "--data", str(data), "--model", f"{tmp_path / 'my_model.py'}:build",
                     "--epochs", "1,2")  # fmt: skip
    assert code in (0, 1)
    summary = _tfma_matches_numpy(run_dir)
    assert summary["eval_data"]["data_spec"]["height"] == 8
    import keras

    model = keras.models.load_model(run_dir / "models" / "epochs-2.keras")
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]  # the user's own model


@pytest.mark.slow
def test_an_npz_with_20_named_classes(tmp_path, bundled):
    """Two 28x28 sets side by side (digits, and the same digits inverted) with a class_names.txt."""
    small = bundled.subset(800, 400, SEED)
    folder = tmp_path / "twenty"
    folder.mkdir()
    x_train = np.concatenate([small.x_train, 255 - small.x_train])
    y_train = np.concatenate([small.y_train, small.y_train + 10])
    x_test = np.concatenate([small.x_test, 255 - small.x_test])
    y_test = np.concatenate([small.y_test, small.y_test + 10])
    save_npz(folder / "data.npz", Dataset(x_train, y_train, x_test, y_test, "twenty"))
    names = [f"digit {c}" for c in range(10)] + [f"inverted {c}" for c in range(10)]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    run_dir = tmp_path / "run"
    assert _pipeline("--run-dir", str(run_dir), "--data", str(folder / "data.npz"), "--epochs", "1,2") in (0, 1)
    summary = _tfma_matches_numpy(run_dir)
    assert summary["eval_data"]["data_spec"]["num_classes"] == 20 and len(summary["slices"]) == 21
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    drops = [check for check in verdict["checks"] if check["rule"] == "per-class drop"]
    assert len(drops) == 20 and drops[-1]["title"] == "inverted 9"


