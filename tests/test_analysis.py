"""Analysis: TFMA's numbers are the SavedModels' own, sliced per true digit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalsuite.data.examples import read_examples
from evalsuite.data.spec import MNIST
from evalsuite.run.folder import RunDir
from tests.helpers import predict_probabilities


@pytest.fixture(scope="module")
def summary(tiny_run):
    return json.loads((tiny_run / "analysis" / "summary.json").read_text())


@pytest.mark.parametrize("role", ["baseline", "candidate"])
def test_tfma_per_class_accuracy_equals_numpy_argmax(tiny_run, summary, role):
    run = RunDir(tiny_run)
    _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), MNIST)
    model = run.model_dir(summary[role]["label"])
    predicted = predict_probabilities(model, records).argmax(axis=1)
    per_slice = summary["models"][role]
    assert per_slice["overall"]["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-6)
    assert per_slice["overall"]["examples"] == len(labels)
    for digit in range(10):
        mine = labels == digit
        assert per_slice[f"label={digit}"]["examples"] == mine.sum()
        assert per_slice[f"label={digit}"]["accuracy"] == pytest.approx(np.mean(predicted[mine] == digit), abs=1e-6)
    matrix = np.array(summary["confusion_matrices"][role]["overall"])
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (labels, predicted), 1)
    np.testing.assert_array_equal(matrix, expected)


def test_deltas_are_candidate_minus_baseline_with_paired_intervals(summary):
    for sid, delta in summary["deltas"].items():
        difference = summary["models"]["candidate"][sid]["accuracy"] - summary["models"]["baseline"][sid]["accuracy"]
        assert delta["accuracy"] == pytest.approx(difference, abs=1e-5)
        low, high = delta["accuracy_ci"]
        assert low < high and low <= delta["accuracy"] + 1e-6 and delta["accuracy"] - 1e-6 <= high
        assert 0 <= delta["mcnemar_mid_p"] <= 1


@pytest.fixture(scope="module")
def numpy_right(tiny_run, summary):
    """Which examples each model gets right, by a plain argmax over its SavedModel's outputs."""
    run = RunDir(tiny_run)
    _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), MNIST)
    right = {
        role: predict_probabilities(run.model_dir(summary[role]["label"]), records).argmax(axis=1) == labels
        for role in ("baseline", "candidate")
    }
    return labels, right


@pytest.mark.parametrize("sid", ["overall"] + [f"label={d}" for d in range(10)])
def test_tfma_paired_counts_equal_a_numpy_count_on_the_same_savedmodels(tiny_run, summary, numpy_right, sid):
    labels, right = numpy_right
    mine = np.ones_like(labels, dtype=bool) if sid == "overall" else labels == int(sid.split("=")[1])
    base, cand = right["baseline"][mine], right["candidate"][mine]
    expected = {
        "both_right": int(np.sum(base & cand)),
        "newly_right": int(np.sum(~base & cand)),
        "newly_wrong": int(np.sum(base & ~cand)),
        "both_wrong": int(np.sum(~base & ~cand)),
    }
    assert summary["paired"][sid] == expected
    changed = json.loads((tiny_run / "analysis" / "changed.json").read_text())
    assert changed["counts"][sid] == {"newly_right": expected["newly_right"], "newly_wrong": expected["newly_wrong"]}


def test_tfma_output_loads_with_tfma(tiny_run):
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(str(tiny_run / "analysis" / "tfma"), model_name="candidate")
    keys = {key for key, _ in result.slicing_metrics}
    assert () in keys and (("label", 3),) in keys


def test_manifest_records_everything_a_reader_needs(tiny_run):
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    stages = manifest["stages"]
    assert {"data", "training", "analysis", "gate", "report"} <= set(stages)
    assert all(stage["status"] == "done" for stage in stages.values())
    assert stages["data"]["fingerprint"] and stages["data"]["eval_examples"] == 300
    assert stages["training"]["config"]["seed"] == 7
    assert stages["analysis"]["runner"] == "DirectRunner" and "--runner=DirectRunner" in stages["analysis"]["beam_args"]
    assert manifest["environment"]["tensorflow-model-analysis"] == "0.52.0"
    for name in ("epochs-1", "epochs-2"):
        assert (tiny_run / stages["training"]["runs"][name]["saved_model"] / "saved_model.pb").is_file()


@pytest.mark.slow
def test_other_evaluation_data(run_copy, eval_npz):
    """python -m analysis --eval-data evaluates the same models on other data."""
    from analysis.__main__ import main

    assert (
        main(
            [
                "--run-dir",
                str(run_copy),
                "--baseline",
                "epochs-1",
                "--candidate",
                "epochs-2",
                "--eval-data",
                str(eval_npz),
                "-q",
            ]
        )
        == 0
    )
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["eval_data"]["examples"] == 500
    assert summary["eval_data"]["source"].startswith("npz:")
    assert sum(summary["paired"]["overall"].values()) == 500


def _point_values(summary: dict, metrics=("accuracy", "examples")) -> dict:
    return {
        role: {sid: {k: values[k] for k in metrics} for sid, values in slices.items()}
        for role, slices in summary["models"].items()
    }


@pytest.mark.slow
def test_multi_processing_direct_runner_gives_the_same_metrics(run_copy, tiny_run):
    """Beam options change where the work runs, never the numbers."""
    from analysis.__main__ import main

    code = main(
        [
            "--run-dir",
            str(run_copy),
            "--baseline",
            "epochs-1",
            "--candidate",
            "epochs-2",
            "--seed",
            "7",
            "--force",
            "-q",
            "--",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ]
    )
    assert code == 0
    parallel = json.loads((run_copy / "analysis" / "summary.json").read_text())
    default = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    # Counts and accuracies are bit for bit; a mean of floats (cross-entropy) follows how
    # Beam splits the work, so it agrees to float32 rounding only.
    assert _point_values(parallel) == _point_values(default)
    for role, slices in default["models"].items():
        for sid, values in slices.items():
            assert parallel["models"][role][sid]["crossentropy"] == pytest.approx(values["crossentropy"], rel=1e-6)
    assert parallel["confusion_matrices"] == default["confusion_matrices"]
    assert parallel["paired"] == default["paired"] and parallel["deltas"] == default["deltas"]
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["stages"]["analysis"]["beam_args"] == [
        "--runner=DirectRunner",
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
