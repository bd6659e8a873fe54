"""The changed examples come from TFMA's own pass: its per-example rows, put back in the files' order by position."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.outcome_table import OUTCOME_DTYPE, OUTCOME_PREFIX, OUTCOME_SUFFIX, positions, read_outcomes
from evalsuite.errors import InputError


def table(shard: int, start: int, count: int) -> np.ndarray:
    rows = np.zeros(count, dtype=OUTCOME_DTYPE)
    rows["position"] = positions(shard, start, count)
    rows["label"] = (10 * shard + np.arange(start, start + count)) % 7
    rows["base_class"] = rows["label"]
    rows["base_confidence"] = (0.5 + 0.01 * np.arange(start, start + count)).astype(np.float32)
    rows["cand_class"] = (rows["label"] + shard) % 7
    rows["cand_confidence"] = np.float32(0.25)
    return rows


def write_outcomes(folder, batches: list[np.ndarray], files: int = 2) -> None:
    """Records as the outcome stage writes them (a table per batch), spread over files in an order unlike the data's."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(files):
        path = folder / f"{OUTCOME_PREFIX}-{index:05d}-of-{files:05d}{OUTCOME_SUFFIX}"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for batch in batches[index::files]:
                writer.write(batch.tobytes())


def test_rows_are_put_in_the_files_order_by_position(tmp_path):
    """Shard 0 holds 5 examples, shard 1 holds 3; the batches arrive in any order."""
    batches = [table(1, 0, 2), table(0, 3, 2), table(0, 0, 3), table(1, 2, 1)]
    write_outcomes(tmp_path, batches)
    columns = read_outcomes(tmp_path, 8, "p")
    expected = np.concatenate([table(0, 0, 5), table(1, 0, 3)])
    for name in OUTCOME_DTYPE.names:
        assert columns[name].tolist() == expected[name].tolist(), name  # exactly, float32 included


@pytest.mark.parametrize(
    "batches, counted",
    [
        ([table(0, 0, 3), table(1, 0, 2)], 6),  # a batch missing: fewer rows than examples counted
        ([table(0, 0, 3), table(0, 0, 3)], 6),  # one batch twice
        ([table(0, 0, 3), table(0, 4, 2)], 5),  # a gap the right total hides
        ([table(0, 1, 3), table(1, 0, 2)], 5),  # a shard that does not start at its first example
    ],
)
def test_rows_that_are_not_each_example_once_are_one_line(tmp_path, batches, counted):
    write_outcomes(tmp_path, batches)
    with pytest.raises(InputError, match=r"eval-\*.tfrecord: the examples TFMA's pass predicted \(\d+\) are not the"):
        read_outcomes(tmp_path, counted, "eval-*.tfrecord")


def test_a_batch_whose_rows_are_not_consecutive_is_one_line(tmp_path):
    shuffled = table(0, 0, 3)[[0, 2, 1]]
    write_outcomes(tmp_path, [shuffled], files=1)
    with pytest.raises(InputError, match="out of order"):
        read_outcomes(tmp_path, 3, "p")


def test_the_examples_carry_their_position_in_the_files_order(tmp_path):
    """What TFMA's pass reads: each shard in batches, each example's position beside it; a feature of that name is refused."""
    import tensorflow as tf

    from analysis.example_batches import _DecodeShard
    from analysis.outcome_table import POSITION_FEATURE

    def example(value: int, feature: str = "label") -> bytes:
        return tf.train.Example(
            features=tf.train.Features(feature={feature: tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))})
        ).SerializeToString()

    path = tmp_path / "eval-00000-of-00001.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as writer:
        for value in range(5):
            writer.write(example(value))
    reader = _DecodeShard("__raw_record__", batch_size=2)
    reader.setup()
    batches = list(reader.process((3, str(path))))
    assert [b.num_rows for b in batches] == [2, 2, 1]
    labels = [v for b in batches for v in b.column("label").flatten().to_pylist()]
    found = [v for b in batches for v in b.column(POSITION_FEATURE).flatten().to_pylist()]
    assert labels == list(range(5)) and found == positions(3, 0, 5).tolist()
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(example(1, POSITION_FEATURE))
    with pytest.raises(ValueError, match="a name kept for positions"):
        list(reader.process((0, str(path))))


def test_changed_json_is_what_both_saved_models_say_when_called_directly(tiny_run):
    """The list from TFMA's pass equals the one a plain batched call of each serving signature gives."""
    import tensorflow as tf

    from evalsuite.run.contract import BASELINE, CANDIDATE, OUTPUT_KEY, load_changed
    from evalsuite.run.folder import RunDir

    run = RunDir(tiny_run)
    changed = load_changed(run.analysis_dir)
    analysed = run.stage("analysis")
    files = sorted(str(p) for p in (run.path / "data").glob("eval-*.tfrecord"))
    records = np.concatenate(list(tf.data.TFRecordDataset(files).batch(512).as_numpy_iterator()))
    labels = tf.io.parse_example(records, {"label": tf.io.FixedLenFeature([], tf.int64)})["label"].numpy()
    served = {
        role: tf.saved_model.load(str(run.path / analysed[role]["path"])).signatures["serving_default"](
            examples=tf.constant(records)
        )[OUTPUT_KEY].numpy()
        for role in (BASELINE, CANDIDATE)
    }
    right = {role: served[role].argmax(axis=1) == labels for role in served}
    expected = [
        {
            "index": int(i),
            "label": int(labels[i]),
            "change": "newly_right" if right[CANDIDATE][i] else "newly_wrong",
            **{role: {"class": int(served[role][i].argmax()), "confidence": round(float(served[role][i].max()), 4)}
               for role in (BASELINE, CANDIDATE)},
        }
        for i in np.flatnonzero(right[BASELINE] != right[CANDIDATE])
    ]  # fmt: skip
    assert expected and [{k: e[k] for k in ("index", "label", "change")} for e in changed["examples"]] == [
        {k: e[k] for k in ("index", "label", "change")} for e in expected
    ]
    for got, want in zip(changed["examples"], expected):
        for role in (BASELINE, CANDIDATE):
            assert got[role]["class"] == want[role]["class"]
            assert abs(got[role]["confidence"] - want[role]["confidence"]) <= 1e-4  # batches of other sizes
    assert not (run.analysis_dir / "outcomes").exists()  # read, not kept


def test_the_outcome_stage_names_a_model_tfma_did_not_predict():
    from tensorflow_model_analysis import constants

    from analysis.outcome_table import POSITION_FEATURE
    from analysis.outcome_tap import _OutcomeRecords

    extracts = {
        constants.INPUT_KEY: np.array([b"a", b"b"], dtype=object),
        constants.FEATURES_KEY: {"label": np.array([[1], [1]]), POSITION_FEATURE: positions(2, 7, 2).reshape(2, 1)},
        constants.PREDICTIONS_KEY: {"candidate": np.eye(2, dtype=np.float32)},
    }
    with pytest.raises(ValueError, match="no predictions of the baseline"):
        list(_OutcomeRecords().process(extracts))
    extracts[constants.PREDICTIONS_KEY]["baseline"] = {"probabilities": np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)}
    (record,) = _OutcomeRecords().process(extracts)
    rows = np.frombuffer(record, dtype=OUTCOME_DTYPE)
    assert rows["base_class"].tolist() == [1, 0] and rows["cand_class"].tolist() == [0, 1]
    assert rows["base_confidence"].tolist() == [np.float32(0.8), np.float32(0.9)]
    assert rows["position"].tolist() == positions(2, 7, 2).tolist() and rows["label"].tolist() == [1, 1]
    assert list(_OutcomeRecords().process({constants.INPUT_KEY: np.array([], dtype=object)})) == []


def test_a_keras_file_that_is_not_the_baselines_is_refused(tiny_run, tmp_path):
    """Discovery reads the representation only from the Keras file that gives the SavedModel's own predictions."""
    import shutil

    import tensorflow as tf

    from analysis.representation import Representation, Unreadable
    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir

    run = RunDir(tiny_run)
    spec = recorded_spec(run.stage("data"), "manifest")
    images, _, records, _ = read_examples(str(tiny_run / "data" / "eval-*.tfrecord"), spec)
    served = tf.saved_model.load(str(tiny_run / "models" / "epochs-1")).signatures["serving_default"](
        examples=tf.constant(records[:64])
    )["probabilities"].numpy()
    classes, confidences = served.argmax(axis=1), served.max(axis=1)
    shutil.copytree(tiny_run / "models" / "epochs-1", tmp_path / "baseline")
    for keras_file, accepted in (("epochs-1.keras", True), ("epochs-2.keras", False)):
        shutil.copy(tiny_run / "models" / keras_file, tmp_path / "baseline.keras")
        represent = Representation(tmp_path / "baseline", spec, seed=0, examples=64)
        if accepted:
            assert represent(images[:64], classes, confidences).shape[0] == 64
        else:
            with pytest.raises(Unreadable, match="does not give its SavedModel's predictions"):
                represent(images[:64], classes, confidences)


@pytest.mark.parametrize("appended", [b"more", b"a record cut short"])  # the second breaks discovery's read first
def test_evaluation_files_that_change_under_the_pass_are_one_line_and_the_last_results_stay(
    run_copy, monkeypatch, appended
):
    """The rows are put in order by position alone, so the files must be the ones the pass read: hashed again after it."""
    import analysis.evaluate as evaluate
    from analysis.config import AnalysisConfig
    from evalsuite.rules.settings import load_rules
    from evalsuite.run.folder import RunDir

    summary = run_copy / "analysis" / "summary.json"
    before = summary.read_bytes()
    shard = sorted((run_copy / "data").glob("eval-*.tfrecord"))[0]
    run_tfma = evaluate.run_tfma

    def a_writer_appends_meanwhile(*args, **kwargs):
        run_tfma(*args, **kwargs)
        with shard.open("ab") as extra_bytes:
            extra_bytes.write(appended)

    monkeypatch.setattr(evaluate, "run_tfma", a_writer_appends_meanwhile)
    config = AnalysisConfig(baseline="epochs-1", candidate="epochs-2")
    with RunDir(run_copy) as run, pytest.raises(InputError, match="changed while the analysis ran; run it again"):
        evaluate.analyze(run, config, load_rules(None), log=lambda message: None, force=True)
    assert summary.read_bytes() == before
