"""Training: seeded, snapshot runs equal independent runs, complete logs, servable exports."""

from __future__ import annotations

import numpy as np
import pytest

from evalsuite.data.examples import read_examples
from evalsuite.data.spec import MNIST
from evalsuite.run.folder import RunDir
from tests.helpers import SEED, predict_probabilities
from training.train import TrainConfig, train

EPOCHS = (1, 2)


def _train(tmp_path_factory, tiny_npz, independent: bool, steps_per_execution: int = 25):
    run = RunDir(tmp_path_factory.mktemp("train") / ("independent" if independent else "snapshot"))
    config = TrainConfig(
        data=str(tiny_npz),
        seed=SEED,
        epochs=EPOCHS,
        independent_runs=independent,
        steps_per_execution=steps_per_execution,
        verbose=0,
    )
    with run:
        result = train(run, config, log=lambda message: None)
    return run, result


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory, tiny_npz):
    return _train(tmp_path_factory, tiny_npz, independent=False)


@pytest.fixture(scope="module")
def independent_run(tmp_path_factory, tiny_npz):
    return _train(tmp_path_factory, tiny_npz, independent=True)


@pytest.fixture(scope="module")
def plain_fit_run(tmp_path_factory, tiny_npz):
    """The tutorial's own fit: one training step per call into TensorFlow."""
    return _train(tmp_path_factory, tiny_npz, independent=True, steps_per_execution=1)


def _weights(run: RunDir, name: str) -> list[np.ndarray]:
    import keras

    return keras.models.load_model(run.keras_model_path(name)).get_weights()


@pytest.mark.parametrize("name", ["epochs-1", "epochs-2"])
def test_snapshot_of_one_trajectory_is_bitwise_an_independent_run(snapshot_run, independent_run, name):
    """The premise of training both models for the price of one, proven on this machine."""
    snapshot, independent = _weights(snapshot_run[0], name), _weights(independent_run[0], name)
    assert len(snapshot) == 4
    for a, b in zip(snapshot, independent):
        assert a.dtype == b.dtype and np.array_equal(a, b)


@pytest.mark.parametrize("name", ["epochs-1", "epochs-2"])
def test_many_steps_per_call_give_bitwise_the_weights_of_a_plain_fit(independent_run, plain_fit_run, name):
    """The speed-up changes nothing: the same updates in the same order, proven on this machine."""
    fast, plain = _weights(independent_run[0], name), _weights(plain_fit_run[0], name)
    for a, b in zip(fast, plain):
        assert a.dtype == b.dtype and np.array_equal(a, b)


def test_the_two_runs_differ(snapshot_run):
    three, six = _weights(snapshot_run[0], "epochs-1"), _weights(snapshot_run[0], "epochs-2")
    assert not all(np.array_equal(a, b) for a, b in zip(three, six))


def _scalars(folder, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0})
    accumulator.Reload()
    return accumulator, [event.step for event in accumulator.Tensors(tag)] if tag in accumulator.Tags()[
        "tensors"
    ] else []


@pytest.mark.parametrize("mode", ["snapshot", "independent"])
@pytest.mark.parametrize("name, epochs", [("epochs-1", 1), ("epochs-2", 2)])
def test_each_run_has_its_own_complete_tensorboard_logs(snapshot_run, independent_run, mode, name, epochs):
    run = (snapshot_run if mode == "snapshot" else independent_run)[0]
    train_acc, steps = _scalars(run.logs_dir(name) / "train", "epoch_accuracy")
    assert steps == list(range(epochs))
    _, val_steps = _scalars(run.logs_dir(name) / "validation", "epoch_accuracy")
    assert val_steps == list(range(epochs))
    _, loss_steps = _scalars(run.logs_dir(name) / "train", "epoch_loss")
    assert loss_steps == list(range(epochs))
    tags = train_acc.Tags()["tensors"]
    assert any("histogram" in tag or tag.endswith("/kernel") for tag in tags), tags
    assert "keras" in tags  # the conceptual graph
    assert train_acc.Tags()["graph"]  # the op graph


def test_saved_model_serves_serialized_examples_like_the_keras_model(snapshot_run):
    import keras

    from training.model import scale_images

    run = snapshot_run[0]
    images, _, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), MNIST)
    served = predict_probabilities(run.model_dir("epochs-2"), records)
    direct = keras.models.load_model(run.keras_model_path("epochs-2")).predict(scale_images(images, MNIST), verbose=0)
    assert served.shape == (len(records), 10)
    np.testing.assert_allclose(served, direct, rtol=1e-5, atol=1e-6)


def test_unchanged_inputs_are_reused(snapshot_run, tiny_npz):
    run, first = snapshot_run
    config = TrainConfig(data=str(tiny_npz), seed=SEED, epochs=EPOCHS, verbose=0)
    said = []
    with run:
        again = train(run, config, log=said.append)
    assert again.reused and again.runs == first.runs
    assert any("reused" in line for line in said)


def test_bad_epoch_settings_are_usage_errors():
    from evalsuite.errors import InputError

    with pytest.raises(InputError, match="--epochs"):
        TrainConfig(epochs=(3, 3))
    with pytest.raises(InputError, match="--batch-size"):
        TrainConfig(batch_size=0)


@pytest.mark.parametrize(
    "settings, flag",
    [
        ({"seed": -1}, "--seed"),
        ({"seed": 2**32}, "--seed"),
        ({"train_limit": 0}, "--train-limit"),
        ({"eval_limit": -5}, "--eval-limit"),
        ({"steps_per_execution": 0}, "--steps-per-execution"),
        ({"epochs": (3, 100000)}, "--epochs"),
    ],
)
def test_numbers_out_of_range_are_usage_errors(settings, flag):
    from evalsuite.errors import InputError

    with pytest.raises(InputError, match=flag):
        TrainConfig(**settings)


def test_report_curves_draw_one_trajectory_for_snapshots_and_a_line_per_run_otherwise(snapshot_run, independent_run):
    from reports.curves import read_curves
    from reports.plots import shared_trajectory

    def curves(run):
        return {name: read_curves(run.logs_dir(name)) for name in ("epochs-1", "epochs-2")}

    assert shared_trajectory(curves(snapshot_run[0]))
    # Trained on their own, the 1-epoch run's single epoch is the same, but its logs end there;
    # the curves still line up, since the weights are bitwise the same (shown above).
    assert shared_trajectory(curves(independent_run[0]))
    different = curves(snapshot_run[0])
    different["epochs-1"]["train"]["epoch_loss"] = [(0, 99.0)]
    assert not shared_trajectory(different)
