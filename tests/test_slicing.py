"""Slices beyond the label, and the training config file: features carried by the data, named in train.toml."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.datasets import load_dataset, load_eval_split
from evalsuite.data.files import save_npz
from evalsuite.data.slice_features import from_csv, value_counts
from evalsuite.data.spec import MNIST
from evalsuite.errors import InputError
from tests.helpers import SEED, error_lines, predict_probabilities, run_command
from tests.test_your_data import colour_folders

# Per-example features ----------------------------------------------------------------------------


def npz_with_features(path: Path, dataset, **features) -> Path:
    save_npz(path, dataclasses.replace(dataset, features=features))
    return path


def test_npz_meta_arrays_become_features(tmp_path, bundled):
    small = bundled.subset(100, 40, SEED)
    n = len(small.y_test)
    scanner = np.array(["a", "b"])[np.arange(n) % 2]
    batch = (np.arange(n) % 3).astype(np.float32)  # whole numbers in floats are integers
    data = npz_with_features(tmp_path / "meta.npz", small, scanner=scanner, batch=batch, id=np.arange(n) * 1.5)
    assert sorted(np.load(data).files) == [
        "meta_batch", "meta_id", "meta_scanner", "x_test", "x_train", "y_test", "y_train"
    ]  # fmt: skip
    # Only the features named are read and checked: meta_id (floats) is never looked at.
    assert load_dataset(str(data), SEED).features == {}
    loaded = load_dataset(str(data), SEED, features=("scanner", "batch"))
    assert loaded.features["scanner"].tolist() == scanner.tolist()
    assert loaded.features["batch"].dtype == np.int64 and loaded.features["batch"].tolist() == batch.tolist()
    assert value_counts(loaded.features)["scanner"] == {"a": n // 2, "b": n // 2}
    # The images' fingerprint (which the models' reuse follows) leaves the features out; they have their own.
    plain = load_dataset(str(npz_with_features(tmp_path / "plain.npz", small)), SEED)
    assert loaded.fingerprint == plain.fingerprint and plain.features_fingerprint is None
    assert loaded.features_fingerprint is not None
    assert loaded.subset(None, 20, SEED).features["scanner"].shape == (20,)
    _, _, features = load_eval_split(data, MNIST, ("scanner",))
    assert list(features) == ["scanner"] and features["scanner"].tolist() == scanner.tolist()


@pytest.mark.parametrize(
    "values, expected",
    [
        (np.arange(39), "has shape (39,), expected (40,)"),
        (np.arange(40) + 0.5, "has dtype float64; slice features are integers or strings"),
        (np.array(["a,b"] * 40), "without commas"),
        (np.array(["x\x07"] * 40), "one printable line"),
        (np.array(["01", "1"] * 20), "reads as a number"),
    ],
)
def test_bad_feature_values_are_one_line(tmp_path, bundled, values, expected):
    small = bundled.subset(100, 40, SEED)
    data = npz_with_features(tmp_path / "bad.npz", small, scanner=values)
    assert load_dataset(str(data), SEED).features == {}  # not named: not read
    with pytest.raises(InputError, match="feature 'scanner'") as error:
        load_dataset(str(data), SEED, features=("scanner",))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_too_many_values_and_missing_features_are_one_line(tmp_path, bundled):
    small = bundled.subset(100, 60, SEED)
    data = npz_with_features(tmp_path / "many.npz", small, pen=np.arange(60))
    with pytest.raises(InputError, match="60 distinct values; at most 50"):
        load_dataset(str(data), SEED, features=("pen",))
    with pytest.raises(InputError, match="no slice feature 'ink' .* they carry: pen"):
        load_dataset(str(data), SEED, features=("ink",))
    with pytest.raises(InputError, match="no slice feature 'ink' .* they carry: none"):
        load_dataset("bundled", SEED, features=("ink",))


def test_a_csv_beside_image_folders_gives_each_test_image_its_features(tmp_path):
    data = colour_folders(tmp_path / "fruit", per_class=8)
    images = sorted((data / "test").rglob("*.*"))
    rows = ["path,camera,shelf"] + [
        f"{image.relative_to(data / 'test').as_posix()},{'phone' if i % 2 else 'dslr'},{i % 3}"
        for i, image in enumerate(images)
    ]
    (data / "test.csv").write_text("\n".join(rows) + "\n")
    dataset = load_dataset(str(data), SEED, features=("camera", "shelf"))
    assert sorted(dataset.features) == ["camera", "shelf"]
    assert dataset.features["shelf"].dtype == np.int64
    assert value_counts(dataset.features)["camera"] == {"dslr": 4, "phone": 4}
    # Paths may also start with the split's folder.
    (data / "test.csv").write_text("\n".join(rows[:1] + ["test/" + row for row in rows[1:]]) + "\n")
    again = load_dataset(str(data), SEED, features=("camera",))
    assert again.features["camera"].tolist() == dataset.features["camera"].tolist()
    # A CSV of another kind (no path column) is left alone when no feature is named.
    (data / "test.csv").write_text("id,Label\n1,cat\n")
    assert load_dataset(str(data), SEED).features == {}


@pytest.mark.parametrize(
    "damage, expected",
    [
        (lambda rows: rows[:-1], "no row for test/"),
        (lambda rows: rows + ["apple/none.png,phone,1"], "which is not an image under"),
        (lambda rows: rows + [rows[1]], "a second time"),
        (lambda rows: ["file,camera,shelf"] + rows[1:], "needs a 'path' column"),
        (lambda rows: rows[:1] + [rows[1].replace(",phone,", ",,").replace(",dslr,", ",,")] + rows[2:], "is empty"),
        (lambda rows: rows[:1] + [rows[1] + ",extra"] + rows[2:], "line 2 has more fields than the header"),
        (lambda rows: ["path,lens,shelf"] + rows[1:], "no slice feature 'camera'"),
    ],
)
def test_a_bad_csv_is_one_line(tmp_path, damage, expected):
    data = colour_folders(tmp_path / "fruit", per_class=8)
    images = sorted((data / "test").rglob("*.*"))
    rows = ["path,camera,shelf"] + [
        f"{image.relative_to(data / 'test').as_posix()},{'phone' if i % 2 else 'dslr'},{i % 3}"
        for i, image in enumerate(images)
    ]
    (data / "test.csv").write_text("\n".join(damage(rows)) + "\n")
    with pytest.raises(InputError) as error:
        from_csv(data / "test.csv", data / "test", images, ("camera", "shelf"))
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_features_travel_in_the_examples_and_are_read_back(tmp_path):
    from evalsuite.data.examples import read_examples, write_examples

    images = np.zeros((6, 28, 28), np.uint8)
    labels = np.arange(6) % 2
    features = {"pen": np.array(["red", "blue"] * 3), "shift": np.arange(6, dtype=np.int64)}
    write_examples(tmp_path, images, labels, features)
    _, read_labels, _, read = read_examples(str(tmp_path / "eval-*.tfrecord"), MNIST, ("pen", "shift"))
    assert read_labels.tolist() == labels.tolist()
    assert read["pen"].tolist() == features["pen"].tolist() and read["shift"].tolist() == list(range(6))
    with pytest.raises(InputError, match="slice feature 'ink'"):
        read_examples(str(tmp_path / "eval-*.tfrecord"), MNIST, ("ink",))


# The config file -----------------------------------------------------------------------------------


def _config(argv, cwd: Path, monkeypatch):
    from pipeline.run import build_parser
    from training.__main__ import training_config

    monkeypatch.chdir(cwd)
    return training_config(build_parser().parse_args(argv))


def test_the_config_file_sets_the_recipe_and_flags_override_it(tmp_path, monkeypatch):
    (tmp_path / "train.toml").write_text(
        '[training]\noptimizer = "sgd"\nlearning_rate = 0.05\nbatch_size = 64\n[slicing]\nfeatures = ["pen"]\n'
    )
    config = _config([], tmp_path, monkeypatch)
    assert (config.optimizer, config.learning_rate, config.batch_size) == ("sgd", 0.05, 64)
    assert config.slice_features == ("pen",) and config.config_file == "train.toml"
    config = _config(["--batch-size", "16", "--slice-by", "ink,pen"], tmp_path, monkeypatch)
    assert (config.batch_size, config.slice_features) == (16, ("ink", "pen"))
    assert dict(config.config_origins) == {
        "optimizer": "file",
        "learning_rate": "file",
        "batch_size": "--batch-size",
        "features": "--slice-by",
    }
    # No file: the built-in defaults, which are the shipped train.toml's values.
    empty = tmp_path / "empty"
    empty.mkdir()
    config = _config([], empty, monkeypatch)
    assert (config.optimizer, config.learning_rate, config.batch_size, config.slice_features) == ("adam", None, 32, ())
    shipped = _config(["--config", str(Path(__file__).parents[1] / "train.toml")], empty, monkeypatch)
    assert dataclasses.replace(shipped, config_file="", config_origins=()) == dataclasses.replace(
        config, config_file="", config_origins=()
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[training]\nepochs = 3\n", "unknown key training.epochs"),
        ("[model]\nname = 'cnn'\n", "unknown section [model]"),
        ("[training]\nbatch_size = '32'\n", "training.batch_size must be int"),
        ("[training]\nbatch_size = 0\n", "training.batch_size must be a positive number"),
        ("[slicing]\nfeatures = ['a b']\n", "feature name 'a b'"),
        ("[training]\nlearning_rate = 20\n", "training.learning_rate must be at most 10"),
        ("[training]\nlearning_rate = inf\n", "training.learning_rate must be a positive number"),
        ("[training\n", "not valid TOML"),
    ],
)
def test_a_bad_config_file_is_one_line(tmp_path, monkeypatch, text, expected):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(InputError) as error:
        _config(["--config", "bad.toml"], tmp_path, monkeypatch)
    assert expected in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--slice-by", "label"], "--slice-by: feature name 'label'"),
        (["--slice-by", "pen,pen"], "--slice-by must be a list of distinct feature names"),
        (["--batch-size", "0"], "--batch-size must be a positive number"),
    ],
)
def test_bad_flags_for_the_config_keys_are_one_line(tmp_path, monkeypatch, argv, expected):
    with pytest.raises(InputError) as error:
        _config(argv, tmp_path, monkeypatch)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_a_missing_config_file_exits_2_with_one_line(tmp_path):
    result = run_command("training", "--run-dir", str(tmp_path / "run"), "--config", str(tmp_path / "none.toml"))
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: {tmp_path / 'none.toml'}: --config needs a TOML file of at most 64 KB"
    ]


# Whole runs --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_run_sliced_by_features_judges_each_feature_like_the_classes(tmp_path, bundled, tiny_models):
    """TFMA's feature slices equal a plain computation; a regression confined to one value fails its check."""
    from analysis.__main__ import main as analysis_main
    from evalsuite.data.examples import read_examples
    from gates.__main__ import main as gate_main
    from pipeline.run import main as pipeline_main

    small = bundled.subset(600, 300, SEED)
    pen = np.where(small.y_test == 7, "red", "blue")  # every 7 was written in red
    half = (np.arange(len(small.y_test)) % 2).astype(np.int64)
    data = npz_with_features(tmp_path / "pens.npz", small, pen=pen, half=half)
    run_dir = tmp_path / "run"
    argv = ["--run-dir", str(run_dir), "--data", str(data), "--epochs", "1,2", "--seed", str(SEED), "-q"]
    assert pipeline_main([*argv, "--slice-by", "pen,half"]) in (0, 1)

    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    assert summary["eval_data"]["slice_features"] == {
        "half": {"0": 150, "1": 150},
        "pen": {"blue": 270, "red": 30},
    }
    assert summary["feature_slices"] == {"half": ["half=0", "half=1"], "pen": ["pen=blue", "pen=red"]}
    _, labels, records, features = read_examples(str(run_dir / "data" / "eval-*.tfrecord"), MNIST, ("pen", "half"))
    for role in ("baseline", "candidate"):
        right = predict_probabilities(run_dir / "models" / summary[role]["label"], records).argmax(axis=1) == labels
        for name, values in features.items():
            for value in np.unique(values):
                mine = values == value
                metrics = summary["models"][role][f"{name}={value}"]
                assert metrics["examples"] == mine.sum()
                assert metrics["accuracy"] == pytest.approx(right[mine].mean(), abs=1e-6)
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    feature_checks = {c["slice"]: c for c in verdict["checks"] if c["rule"] == "per-feature drop"}
    assert sorted(feature_checks) == ["half=0", "half=1", "pen=blue", "pen=red"]
    report = (run_dir / "report" / "index.html").read_text()
    assert "Accuracy by pen" in report and "<table id=feature-pen>" in report and "by --slice-by" in report
    assert "#### Accuracy by half" in (run_dir / "report" / "summary.md").read_text()
    tags = _scalar_tags(run_dir / "logs" / "epochs-2" / "tfma")
    assert {"tfma/accuracy/pen=red", "tfma/delta_vs_baseline/half=1"} <= tags

    # A candidate that never says 7 loses the red pen: that value fails, Holm across the pen's two values.
    models = ["--baseline", str(tiny_models["strong"]), "--candidate", str(tiny_models["never_sevens"])]
    assert analysis_main(["--run-dir", str(run_dir), *models, "-q"]) == 0
    assert gate_main(["--run-dir", str(run_dir), "-q"]) == 1
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    status = {(c["rule"], c["slice"]): c["status"] for c in verdict["checks"]}
    assert status[("per-feature drop", "pen=red")] == "fail" and status[("per-class drop", "label=7")] == "fail"
    assert status[("per-feature drop", "pen=blue")] == "pass"

    # Other evaluation data must carry the features the run slices by.
    plain = tmp_path / "plain.npz"
    save_npz(plain, small)
    result = run_command("analysis", "--run-dir", str(run_dir), "--eval-data", str(plain), *models)
    assert result.returncode == 2
    assert error_lines(result.stderr) == [
        f"error: {plain}: no slice feature 'half' (named by --slice-by or train.toml's [slicing] features) in "
        "these evaluation data; they carry: none (.npz arrays meta_<name>, or a {test,val}.csv beside image folders)"
    ]
    # Naming a feature the training data lack is refused before anything is trained.
    result = run_command("training", "--run-dir", str(tmp_path / "other"), "--data", str(plain), "--slice-by", "pen")
    assert result.returncode == 2 and "no slice feature 'pen'" in result.stderr
    assert not (tmp_path / "other" / "models").exists()


def _scalar_tags(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags().get("tensors", [])) | set(events.Tags().get("scalars", []))


def test_a_class_folder_named_like_the_split_is_not_mistaken_for_it(tmp_path):
    from evalsuite.data.slice_features import _relative

    split = tmp_path / "test"
    assert _relative("test/001.jpg", split) == "test/001.jpg"  # class "test", image 001.jpg
    assert _relative("test/cat/001.jpg", split) == "cat/001.jpg"
    assert _relative("./cat/001.jpg", split) == "cat/001.jpg"


@pytest.mark.slow
def test_image_folders_sliced_by_a_csv_and_an_edited_csv_redoes_the_analysis_not_the_training(tmp_path):
    from pipeline.run import main as pipeline_main

    data = colour_folders(tmp_path / "fruit", per_class=30)
    images = sorted((data / "test").rglob("*.*"))

    def write_csv(camera):
        rows = [f"{image.relative_to(data / 'test').as_posix()},{camera(i)}" for i, image in enumerate(images)]
        (data / "test.csv").write_text("path,camera\n" + "\n".join(rows) + "\n")

    write_csv(lambda i: "phone" if i % 2 else "dslr")
    run_dir = tmp_path / "run"
    argv = ["--run-dir", str(run_dir), "--data", str(data), "--image-size", "16x16", "--epochs", "1,2"]
    assert pipeline_main([*argv, "--slice-by", "camera", "--seed", str(SEED), "-q"]) in (0, 1)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    # A SavedModel's bytes differ from one export to the next: equal tree fingerprints mean no new export.
    exported = {name: run["fingerprint"] for name, run in manifest["stages"]["training"]["runs"].items()}
    assert manifest["stages"]["data"]["slice_features"] == {"camera": {"dslr": 15, "phone": 15}}

    write_csv(lambda i: "phone" if i < 10 else "dslr")  # the same images, other features
    assert pipeline_main([*argv, "--slice-by", "camera", "--seed", str(SEED), "-q"]) in (0, 1)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["data"]["slice_features"] == {"camera": {"dslr": 20, "phone": 10}}
    assert {name: run["fingerprint"] for name, run in manifest["stages"]["training"]["runs"].items()} == exported
    summary = json.loads((run_dir / "analysis" / "summary.json").read_text())
    assert summary["models"]["candidate"]["camera=phone"]["examples"] == 10
    verdict = json.loads((run_dir / "gate" / "verdict.json").read_text())
    assert {c["slice"] for c in verdict["checks"] if c["rule"] == "per-feature drop"} == {"camera=dslr", "camera=phone"}
