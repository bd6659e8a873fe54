"""Your model, your data: image folders and .npz of any size, 2 to 1,000 classes, built-in and own models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.datasets import load_dataset, load_eval_split
from evalsuite.data.spec import MNIST, DataSpec, parse_image_size
from evalsuite.errors import InputError

# The data spec ---------------------------------------------------------------------------------
from tests.helpers import SEED, colour_folders, small_npz, write_image


def test_mnist_spec_and_recorded_specs():
    assert (
        MNIST.input_shape == (28, 28, 1) and MNIST.image_bytes == 784 and MNIST.describe() == "28x28 grey, 10 classes"
    )
    again = DataSpec.from_dict(json.loads(json.dumps(MNIST.as_dict())), "here")
    assert again == MNIST
    with pytest.raises(InputError, match="here: corrupt data spec"):
        DataSpec.from_dict({**MNIST.as_dict(), "num_classes": 1}, "here")
    with pytest.raises(InputError, match="corrupt data spec"):
        DataSpec.from_dict({"height": 28}, "here")


@pytest.mark.parametrize("text, size", [("32x32", (32, 32)), ("64X48", (64, 48)), (None, None)])
def test_image_size_flag(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["32", "32x", "ax3", "0x4", "5000x10"])
def test_bad_image_size_is_one_line(text):
    with pytest.raises(InputError, match="--image-size"):
        parse_image_size(text)


# .npz of any size ----------------------------------------------------------------------------------


def test_npz_of_8x8_images(tmp_path, bundled):
    from PIL import Image

    small = bundled.subset(100, 50, SEED)
    shrink = lambda images: np.stack([np.asarray(Image.fromarray(i).resize((8, 8))) for i in images])  # noqa: E731
    path = tmp_path / "digits8.npz"
    np.savez(
        path, x_train=shrink(small.x_train), y_train=small.y_train, x_test=shrink(small.x_test), y_test=small.y_test
    )
    dataset = load_dataset(str(path), seed=0)
    assert dataset.spec == DataSpec(8, 8, 1, 10)
    assert dataset.class_names is None  # ten unnamed classes are digits


def test_npz_colour_rgba_and_single_channel(tmp_path):
    colour = load_dataset(str(small_npz(tmp_path / "c.npz", 3, 12, channels=3)), seed=0)
    assert colour.spec.input_shape == (12, 12, 3) and colour.x_train.shape[1:] == (12, 12, 3)
    rgba = load_dataset(str(small_npz(tmp_path / "rgba.npz", 3, 12, channels=4)), seed=0)
    assert rgba.spec.channels == 3  # the alpha channel is dropped
    with np.load(tmp_path / "rgba.npz") as raw:
        np.testing.assert_array_equal(rgba.x_train, raw["x_train"][..., :3])
    single = load_dataset(str(small_npz(tmp_path / "one.npz", 3, 12, channels=1)), seed=0)
    assert single.spec.channels == 1 and single.x_train.ndim == 3
    grey = load_dataset(str(tmp_path / "c.npz"), seed=0, channels=1)
    assert grey.spec.channels == 1
    resized = load_dataset(str(tmp_path / "c.npz"), seed=0, image_size=(6, 9))
    assert resized.spec.input_shape == (6, 9, 3) and "bilinear" in resized.spec.resize


def test_npz_with_20_named_classes_and_with_1000_unnamed(tmp_path):
    folder = tmp_path / "twenty"
    folder.mkdir()
    small_npz(folder / "data.npz", 20, 10)
    names = [f"kind {c}" for c in range(20)]
    (folder / "class_names.txt").write_text("\n".join(names) + "\n")
    dataset = load_dataset(str(folder / "data.npz"), seed=0)
    assert dataset.spec.num_classes == 20 and list(dataset.class_names) == names
    many = load_dataset(str(small_npz(tmp_path / "many.npz", 1000, 4, per_class=2)), seed=0)
    assert many.spec.num_classes == 1000 and many.class_names[999] == "class 999"
    described = many.describe()
    assert described["data_spec"]["num_classes"] == 1000 and len(described["eval_examples_per_class"]) == 1000


@pytest.mark.parametrize(
    "labels_train, labels_test, names, expected",
    [
        ([0, 1, 2], [0, 1, 3], None, "class 3 is in the test split but training never saw it"),
        ([0, 2, 2], [0, 2, 2], None, "class 1 has no training examples"),
        ([0, 0, 0], [0, 0, 0], None, "1 classes; need 2 to 1000"),
        ([0, 1, 4], [0, 1, 1], ["a", "b"], "labels go up to 4, but there are 2 class names"),
    ],
)
def test_bad_labels_are_one_line(tmp_path, labels_train, labels_test, names, expected):
    folder = tmp_path / "d"
    folder.mkdir()
    images = np.zeros((3, 5, 5), np.uint8)
    np.savez(folder / "d.npz", x_train=images, y_train=labels_train, x_test=images, y_test=labels_test)
    if names:
        (folder / "class_names.txt").write_text("\n".join(names))
    with pytest.raises(InputError, match=expected) as error:
        load_dataset(str(folder / "d.npz"), seed=0)
    assert "\n" not in str(error.value)


def test_too_few_examples_per_class_for_a_limit(tmp_path):
    dataset = load_dataset(str(small_npz(tmp_path / "d.npz", 20, 6)), seed=0)
    with pytest.raises(InputError, match="--train-limit: must be at least 20 \\(one example per class\\)"):
        dataset.subset(10, None, 0)


# Image folders ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return colour_folders(tmp_path_factory.mktemp("photos") / "fruit", per_class=8)


def test_image_folders_colour_names_and_labels(photos):
    dataset = load_dataset(str(photos), seed=0)
    assert dataset.class_names == ("apple", "leaf")  # sorted folder names, as Keras reads them
    assert dataset.source == f"folders:{photos.resolve()}"  # its own train/ and test/, not split
    assert dataset.spec == DataSpec(20, 20, 3, 2, ("apple", "leaf"))
    assert dataset.x_train.shape == (16, 20, 20, 3) and dataset.x_test.shape == (8, 20, 20, 3)
    assert np.bincount(dataset.y_train).tolist() == [8, 8]
    red = dataset.x_train[dataset.y_train == 0]
    assert (red[..., 0].astype(int) - red[..., 1]).max() > 100  # red squares stay red
    grey = load_dataset(str(photos), seed=0, channels=1)
    assert grey.spec.channels == 1 and grey.x_train.shape == (16, 20, 20)
    resized = load_dataset(str(photos), seed=0, image_size=(32, 24))
    assert resized.spec.input_shape == (32, 24, 3) and resized.spec.resize.startswith("bilinear")


def test_grey_pictures_in_colour_files_are_grey_and_rgba_drops_alpha(tmp_path):
    for split in ("train", "val"):
        for index, name in enumerate(("a", "b")):
            value = np.full((6, 6), 40 + 100 * index, np.uint8)
            write_image(tmp_path / split / name / "grey.jpg", np.stack([value] * 3, axis=-1))
            write_image(tmp_path / split / name / "alpha.png", np.dstack([value] * 3 + [np.zeros_like(value)]))
    dataset = load_dataset(str(tmp_path), seed=0)
    assert dataset.spec.channels == 1 and dataset.spec.num_classes == 2


def _broken(photos: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(photos, copy)
    return copy


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda d: (d / "train" / "apple" / "000.png").write_bytes(b"not a png"), "000.png: unreadable image"),
        (lambda d: (d / "train" / "pear").mkdir(), "pear: empty class folder"),
        (
            lambda d: write_image(d / "test" / "plum" / "x.png", np.zeros((20, 20, 3), np.uint8)),
            "class 'plum' is not in",
        ),
        (lambda d: write_image(d / "train" / "leaf" / "big.png", np.zeros((30, 20, 3), np.uint8)), "--image-size HxW"),
        (lambda d: __import__("shutil").rmtree(d / "test"), "no test/ or val/ folder"),
        (lambda d: __import__("shutil").rmtree(d / "test" / "leaf"), "every class needs evaluation examples"),
    ],
)
def test_bad_image_folders_are_one_line(photos, tmp_path, damage, expected):
    data = _broken(photos, tmp_path)
    damage(data)
    with pytest.raises(InputError, match=expected) as error:
        load_dataset(str(data), seed=0)
    assert "\n" not in str(error.value)


def test_mixed_sizes_name_two_files_and_the_flag(photos, tmp_path):
    data = _broken(photos, tmp_path)
    write_image(data / "train" / "leaf" / "big.png", np.zeros((30, 20, 3), np.uint8))
    with pytest.raises(InputError) as error:
        load_dataset(str(data), seed=0)
    message = str(error.value)
    assert "is 20x20" in message and "big.png is 30x20" in message and "--image-size" in message
    assert load_dataset(str(data), seed=0, image_size=(20, 20)).x_train.shape[1:] == (20, 20, 3)


def test_other_evaluation_data_is_made_to_fit_the_spec_or_refused(photos, tmp_path):
    spec = load_dataset(str(photos), seed=0, image_size=(10, 10)).spec
    images, labels, _ = load_eval_split(photos, spec)
    assert images.shape == (8, 10, 10, 3) and sorted(set(labels.tolist())) == [0, 1]
    grey = small_npz(tmp_path / "grey.npz", 2, 10)
    images, _, _ = load_eval_split(grey, spec)  # resized and made colour as training's data were
    assert images.shape[1:] == (10, 10, 3)
    with pytest.raises(InputError, match=r"images have shape \(6, 12, 12\), the run's data spec is 28x28 grey"):
        load_eval_split(small_npz(tmp_path / "twelve.npz", 2, 12), MNIST)
    with pytest.raises(InputError, match="the run's models know 10 classes"):
        load_eval_split(small_npz(tmp_path / "many.npz", 12, 28), MNIST)


# Downstream ----------------------------------------------------------------------------------------


def _summary_of(classes: int) -> dict:
    """A summary of K classes, class c changing by (c - 3) examples of 100 (class 0 worst)."""
    slices = ["overall"] + [f"label={c}" for c in range(classes)]
    models, deltas, paired = {"baseline": {}, "candidate": {}}, {}, {}
    for sid in slices:
        c = None if sid == "overall" else int(sid.split("=")[1])
        change = 0 if c is None else c - 3
        right, wrong = max(change, 0), max(-change, 0)
        cells = {"both_right": 80, "newly_right": right, "newly_wrong": wrong, "both_wrong": 20 - right - wrong}
        models["baseline"][sid] = {"examples": 100, "accuracy": (80 + wrong) / 100}
        models["candidate"][sid] = {"examples": 100, "accuracy": (80 + right) / 100}
        deltas[sid] = {"accuracy": (right - wrong) / 100, "accuracy_ci": [-0.1, 0.1]}
        paired[sid] = cells
    return {
        "baseline": {"label": "epochs-3"},
        "candidate": {"label": "epochs-6"},
        "eval_data": {"class_names": [f"kind {c}" for c in range(classes)], "examples": 100},
        "slices": slices,
        "models": models,
        "deltas": deltas,
        "paired": paired,
    }


def test_the_comment_shows_the_worst_classes_first_beyond_20_and_collapses_the_rest():
    from reports.comment import per_class_markdown

    few = per_class_markdown(_summary_of(20))
    assert "<details>" not in few and few.count("| kind ") == 20
    many = per_class_markdown(_summary_of(50))
    shown, _, collapsed = many.partition("<details>")
    assert "The 10 classes with the largest drop** (of 50; worst first)" in shown
    assert shown.index("| kind 0 |") < shown.index("| kind 1 |") < shown.index("| kind 2 |")
    assert shown.count("| kind ") == 10 and "| overall |" in shown
    assert "The other 40 classes</summary>" in collapsed and collapsed.count("| kind ") == 40
    assert collapsed.rstrip().endswith("</details>")


def test_the_confusion_matrix_stays_readable_at_many_classes():
    import io

    from PIL import Image

    from reports.plots import confusion_figure

    matrix = (np.eye(50, dtype=int) * 9 + 1).tolist()
    image = Image.open(io.BytesIO(confusion_figure({"epochs-6": matrix})))
    assert image.size[0] < 2000 and image.size[1] < 2000


def test_the_bundled_digits_keep_their_fingerprint_and_the_mnist_spec():
    """The default data do not move: the same arrays, the same fingerprint as before data specs existed."""
    from evalsuite.data.datasets import load_bundled

    default = load_bundled(42)
    assert default.fingerprint == "5d1b96735519710d"
    assert default.spec == MNIST and default.class_names is None


def test_a_model_that_does_not_fit_the_spec_is_one_line(tiny_models):
    from analysis.models import check_saved_model

    check_saved_model(tiny_models["strong"], "candidate", MNIST)
    with pytest.raises(InputError, match=r"expected \(None, 20\): the run's data spec is 28x28 grey, 20 classes"):
        check_saved_model(tiny_models["strong"], "candidate", DataSpec(28, 28, 1, 20))
    with pytest.raises(InputError, match="does not take the run's images \\(8x8 grey, 10 classes, 64 bytes each\\)"):
        check_saved_model(tiny_models["strong"], "candidate", DataSpec(8, 8, 1, 10))


def test_a_keras_file_as_candidate_is_wrapped_into_the_serving_contract(run_copy, tmp_path):
    """--candidate FILE.keras: the same weights as the run's own model, so the same numbers; a misfit is one line."""
    import keras

    from analysis.__main__ import main as analysis_main

    keras_file = tmp_path / "mine.keras"
    keras_file.write_bytes((run_copy / "models" / "epochs-2.keras").read_bytes())
    own = json.loads((run_copy / "analysis" / "summary.json").read_text())
    argv = ["--run-dir", str(run_copy), "--baseline", "epochs-1", "-q"]
    assert analysis_main([*argv, "--candidate", str(keras_file)]) == 0
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["candidate"]["label"] == str(keras_file)
    assert Path(summary["candidate"]["path"]).parent == (run_copy / "models").resolve()
    for sid, values in own["models"]["candidate"].items():
        assert summary["models"]["candidate"][sid]["accuracy"] == values["accuracy"]

    wrong = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    wrong.save(tmp_path / "wrong.keras")
    manifest = (run_copy / "manifest.json").read_bytes()
    with pytest.raises(InputError, match=r"wrong.keras: candidate: the model takes \(8, 8, 1\), the run's data are"):
        from analysis.models import resolve_model
        from evalsuite.run.folder import RunDir

        resolve_model(RunDir(run_copy), str(tmp_path / "wrong.keras"), "candidate")
    assert (run_copy / "manifest.json").read_bytes() == manifest


def test_optimizer_and_learning_rate_flags():
    from pipeline.run import build_parser
    from training.__main__ import training_config
    from training.model import build_model

    config = training_config(build_parser().parse_args(["--optimizer", "sgd", "--learning-rate", "0.5"]))
    model = build_model(DataSpec(6, 6, 1, 3), "mlp", config.optimizer, learning_rate=config.learning_rate)
    assert type(model.optimizer).__name__ == "SGD" and float(model.optimizer.learning_rate) == pytest.approx(0.5)
    with pytest.raises(InputError, match="--optimizer: 'nosuch' is not a Keras optimizer"):
        build_model(DataSpec(6, 6, 1, 3), "mlp", "nosuch")
    with pytest.raises(InputError, match="--learning-rate must be a positive number"):
        training_config(build_parser().parse_args(["--learning-rate", "-1"]))


def test_the_report_collapses_passing_checks_and_draws_the_most_changed_classes_at_many_classes():
    from reports.html_report import CHANGED_CLASSES, _checks_html, changed_by_class

    def check(c, status):
        return {"rule": "per-class drop", "slice": f"label={c}", "title": f"kind {c}", "baseline": 0.9,
                "candidate": 0.9, "delta": 0.0, "threshold": "drop <= 0.03", "status": status}  # fmt: skip

    checks = [check(c, "fail" if c == 7 else "pass") for c in range(30)]
    page = _checks_html({"checks": checks})
    shown, _, collapsed = page.partition("<details>")
    assert "kind 7" in shown and "kind 8" not in shown and "29 more checks, all passed" in collapsed
    examples = [
        {"index": i, "label": c, "change": "newly_wrong", "baseline": {"confidence": 0.9}, "candidate": {"confidence": 0.5}}
        for c in range(30) for i in range(c + 1)
    ]  # fmt: skip
    drawn, counts = changed_by_class({"examples": examples}, "newly_wrong")
    assert len(counts) == 30 and sorted({e["label"] for e in drawn}) == list(range(30 - CHANGED_CLASSES, 30))


def test_one_folder_of_class_folders_is_split_by_the_seed(photos, tmp_path):
    import shutil

    flat = tmp_path / "flat"
    for name in ("apple", "leaf"):
        shutil.copytree(photos / "train" / name, flat / name)
    dataset = load_dataset(str(flat), seed=3)
    assert dataset.class_names == ("apple", "leaf") and np.bincount(dataset.y_test).tolist() == [2, 2]
    assert np.bincount(dataset.y_train).tolist() == [6, 6] and dataset.source.endswith(":split-seed=3")
    assert load_dataset(str(flat), seed=3).fingerprint == dataset.fingerprint
    assert load_dataset(str(flat), seed=4).fingerprint != dataset.fingerprint
    images, labels, _ = load_eval_split(flat, dataset.spec)  # every image, as evaluation data
    assert len(labels) == 16
    for extra in sorted((flat / "leaf").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(InputError, match="leaf: 1 image; too few to split into training and evaluation examples"):
        load_dataset(str(flat), seed=3)
