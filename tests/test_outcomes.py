"""The changed examples come from TFMA's own pass: its per-example predictions, matched back to the files in order."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.changed import OUTCOME_DTYPE, OUTCOME_PREFIX, OUTCOME_SUFFIX, Outcomes, digests
from evalsuite.errors import InputError


def write_outcomes(folder, rows: list[tuple[bytes, int, float, int, float]], shards: int = 2) -> None:
    """Lines as the outcome stage writes them (a table per batch), in shards, in an order unlike the files'."""
    folder.mkdir(parents=True, exist_ok=True)
    table = np.empty(len(rows), dtype=OUTCOME_DTYPE)
    table["digest"] = digests([r[0] for r in rows])
    for i, name in enumerate(("base_class", "base_confidence", "cand_class", "cand_confidence"), start=1):
        table[name] = [r[i] for r in rows]
    table = table[::-1]
    for shard in range(shards):
        batches = [table[shard::shards][i : i + 2] for i in range(0, len(table[shard::shards]), 2)]
        (folder / f"{OUTCOME_PREFIX}-{shard:05d}-of-{shards:05d}{OUTCOME_SUFFIX}").write_text(
            "".join(batch.tobytes().hex() + "\n" for batch in batches)
        )


def test_each_record_finds_its_own_predictions_in_file_order(tmp_path):
    records = [f"example {i}".encode() for i in range(7)]
    write_outcomes(tmp_path, [(r, i % 3, 0.5 + i / 100, (i + 1) % 3, 0.25 + i / 1000) for i, r in enumerate(records)])
    outcomes = Outcomes(tmp_path)
    rows = np.concatenate([outcomes.rows(records[:4], "p"), outcomes.rows(records[4:], "p")])
    assert outcomes.classes[0][rows].tolist() == [i % 3 for i in range(7)]
    assert outcomes.classes[1][rows].tolist() == [(i + 1) % 3 for i in range(7)]
    assert outcomes.confidences[0][rows].tolist() == [float(np.float32(0.5 + i / 100)) for i in range(7)]  # exactly
    outcomes.check_all_matched("p")


def test_equal_records_take_their_rows_in_turn_so_counts_stay_tfmas(tmp_path):
    """Two equal inputs TFMA predicted apart (a near tie in two batches): each is used once, none twice."""
    same = b"the same example"
    write_outcomes(tmp_path, [(same, 1, 0.51, 1, 0.6), (same, 1, 0.49, 2, 0.5), (b"other", 0, 0.9, 0, 0.9)])
    outcomes = Outcomes(tmp_path)
    rows = outcomes.rows([same, b"other", same], "p")
    assert sorted(outcomes.classes[1][rows[[0, 2]]].tolist()) == [1, 2]
    outcomes.check_all_matched("p")


def test_a_record_tfma_never_saw_or_one_it_saw_more_often_is_one_line(tmp_path):
    write_outcomes(tmp_path, [(b"a", 0, 0.9, 0, 0.9), (b"b", 1, 0.9, 1, 0.9)])
    with pytest.raises(InputError, match="1 examples have no predictions from TFMA's pass"):
        Outcomes(tmp_path).rows([b"a", b"c"], "eval-*.tfrecord")
    for read in ([b"a"], [b"a", b"a"]):  # one missing; one twice and one missing (the totals agree)
        outcomes = Outcomes(tmp_path)
        outcomes.rows(read, "p")
        with pytest.raises(InputError, match=rf"do not hold the examples TFMA's pass predicted \(2 predicted, {len(read)} read"):
            outcomes.check_all_matched("p")
    with pytest.raises(InputError, match="no predictions"):
        Outcomes(tmp_path / "empty").rows([b"a"], "p")


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

    from analysis.outcome_tap import _OutcomeLines

    extracts = {constants.INPUT_KEY: np.array([b"a", b"b"], dtype=object),
                constants.PREDICTIONS_KEY: {"candidate": np.eye(2, dtype=np.float32)}}  # fmt: skip
    with pytest.raises(ValueError, match="no predictions of the baseline"):
        list(_OutcomeLines().process(extracts))
    extracts[constants.PREDICTIONS_KEY]["baseline"] = {"probabilities": np.array([[0.2, 0.8], [0.9, 0.1]], np.float32)}
    (line,) = _OutcomeLines().process(extracts)
    table = np.frombuffer(bytes.fromhex(line), dtype=OUTCOME_DTYPE)
    assert table["base_class"].tolist() == [1, 0] and table["cand_class"].tolist() == [0, 1]
    assert table["base_confidence"].tolist() == [np.float32(0.8), np.float32(0.9)]
    assert table["digest"].tolist() == digests([b"a", b"b"]).tolist()
    assert list(_OutcomeLines().process({constants.INPUT_KEY: np.array([], dtype=object)})) == []


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
