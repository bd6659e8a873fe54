"""Analysis: TFMA's numbers are the SavedModels' own, sliced per true digit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalsuite.examples import read_examples
from evalsuite.rundir import RunDir
from tests.helpers import predict_probabilities


@pytest.fixture(scope="module")
def summary(tiny_run):
    return json.loads((tiny_run / "analysis" / "summary.json").read_text())


@pytest.mark.parametrize("role", ["baseline", "candidate"])
def test_tfma_per_digit_accuracy_equals_numpy_argmax(tiny_run, summary, role):
    run = RunDir(tiny_run)
    _, labels, records = read_examples(str(run.data_dir / "eval-*.tfrecord"))
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


def test_deltas_are_candidate_minus_baseline_with_intervals(summary):
    for sid, delta in summary["deltas"].items():
        difference = summary["models"]["candidate"][sid]["accuracy"] - summary["models"]["baseline"][sid]["accuracy"]
        assert delta["accuracy"] == pytest.approx(difference, abs=1e-5)
        low, high = delta["accuracy_ci"]
        assert low <= delta["accuracy"] + 1e-6 and delta["accuracy"] - 1e-6 <= high


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
    assert manifest["environment"]["tensorflow-model-analysis"] == "0.52.0"
    for name in ("epochs-1", "epochs-2"):
        assert (tiny_run / stages["training"]["runs"][name]["saved_model"] / "saved_model.pb").is_file()


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
                "--no-intervals",
                "-q",
            ]
        )
        == 0
    )
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert summary["eval_data"]["examples"] == 500
    assert summary["eval_data"]["source"].startswith("npz:")
    assert summary["deltas"]["overall"]["accuracy_ci"] is None


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
    manifest = json.loads((run_copy / "manifest.json").read_text())
    assert manifest["stages"]["analysis"]["beam_args"] == [
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    ]
