"""The analysis at scale: the fused, grouped pipeline gives TFMA's per-example numbers, in any grouping."""

from __future__ import annotations

import json
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.examples import read_examples, read_images, scan_examples
from evalsuite.data.spec import MNIST
from evalsuite.errors import InputError
from evalsuite.run.fingerprints import fingerprint
from tests.helpers import SEED

Inputs = namedtuple("Inputs", "label prediction example_weight")


def _groups(rng, n: int = 600, classes: int = 10):
    labels = rng.integers(0, classes, n)
    base = rng.dirichlet(np.ones(classes), n).astype(np.float32)
    cand = rng.dirichlet(np.ones(classes) * 0.3, n).astype(np.float32)
    base[:3] = 0.0  # no class predicted: TFMA's confusion plot puts these in its own column
    return labels, base, cand


def _inputs(labels, base, cand, rows):
    prediction = {"baseline": {"probabilities": base[rows]}, "candidate": {"probabilities": cand[rows]}}
    label = {"baseline": labels[rows], "candidate": labels[rows]}
    return Inputs(label, prediction, None)


def _outputs(counts):
    from analysis.fused import PER_MODEL, _value
    from analysis.paired import PAIRED_METRICS

    values = {
        (name, index): _value(counts, name, index)
        for name in PER_MODEL
        if name != "multi_class_confusion_matrix_plot"
        for index in (0, 1)
    }
    values.update({(name, 1): _value(counts, name, 1) for name in PAIRED_METRICS})
    values["matrices"] = counts.matrices.tolist()
    return values


def test_the_fused_counts_do_not_depend_on_how_examples_are_grouped_or_merged():
    from analysis.fused import _FusedCombiner

    rng = np.random.default_rng(SEED)
    labels, base, cand = _groups(rng)
    combiner = _FusedCombiner("key", "baseline", "candidate")
    whole = combiner.add_input(combiner.create_accumulator(), _inputs(labels, base, cand, np.arange(len(labels))))
    one_by_one = combiner.create_accumulator()
    for row in range(len(labels)):
        one_by_one = combiner.add_input(one_by_one, _inputs(labels, base, cand, np.array([row])))
    order = rng.permutation(len(labels))
    parts = [
        combiner.add_input(combiner.create_accumulator(), _inputs(labels, base, cand, chunk))
        for chunk in np.array_split(order, 7)
    ]
    merged = combiner.merge_accumulators(
        [combiner.merge_accumulators(parts[:3]), combiner.merge_accumulators(parts[3:])]
    )
    assert _outputs(whole) == _outputs(one_by_one) == _outputs(merged)
    # The numbers themselves: accuracy as Keras divides, the paired table, the no-class column.
    right_b, right_c = base.argmax(1) == labels, cand.argmax(1) == labels
    right_b[:3] = base[:3].argmax(1) == labels[:3]  # argmax of zeros is class 0: right for label 0, as TFMA's
    values = _outputs(whole)
    assert values[("sparse_categorical_accuracy", 1)] == float(np.float32(right_c.sum()) / np.float32(len(labels)))
    assert values[("newly_wrong", 1)] == float((right_b & ~right_c).sum())
    assert sum(row[10] for row in values["matrices"][0]) == 3
    # Merging never counts an accumulator twice (TFMA hands the first one in the list).
    again = combiner.merge_accumulators([whole])
    assert _outputs(again) == _outputs(whole)


@pytest.mark.slow
def test_the_fused_pipeline_gives_tfmas_per_example_numbers(run_copy, tmp_path):
    """Every gated number bitwise, the cross-entropy to a few float32 units, the same validation."""
    from analysis.eval_data import resolve_eval_data
    from analysis.evaluate import AnalysisConfig
    from analysis.models import resolve_model
    from analysis.summary import summarize, validation_as_json
    from analysis.tfma_run import build_eval_config, run_tfma
    from evalsuite.rules.settings import load_rules
    from evalsuite.run.folder import RunDir

    run = RunDir(run_copy)
    rules = load_rules(Path(__file__).parents[1] / "gate.toml")
    eval_data = resolve_eval_data(run, None, lambda message: None)
    baseline, candidate = resolve_model(run, "epochs-1", "baseline"), resolve_model(run, "epochs-2", "candidate")
    from analysis.changed import changed_examples, check_changed_against_tfma
    from analysis.outcome_table import read_outcomes

    out, changed = {}, {}
    for fused in (True, False):
        config = build_eval_config(rules, eval_data, jackknife=False, fused=fused)
        folder = tmp_path / ("fused" if fused else "per-example")
        outcomes = tmp_path / f"{folder.name}-outcomes"
        run_tfma(baseline, candidate, config, eval_data["pattern"], folder, ("--runner=DirectRunner",), SEED, outcomes=outcomes)
        summary = summarize(folder, baseline, candidate, eval_data, AnalysisConfig(), "DirectRunner")
        out[fused] = summary, validation_as_json(folder)
        # The changed examples from either pipeline's own pass: the same list, whose counts are TFMA's.
        columns = read_outcomes(outcomes, eval_data["examples"], eval_data["pattern"])
        changed[fused], _ = changed_examples(columns, eval_data["pattern"])
        check_changed_against_tfma(changed[fused], summary)
    assert changed[True]["examples"] and changed[True] == changed[False]
    (fused, fused_validation), (plain, plain_validation) = out[True], out[False]
    for key in ("deltas", "paired", "confusion_matrices", "slices", "cross_slices"):
        assert fused[key] == plain[key], key
    for role in ("baseline", "candidate"):
        for sid, metrics in plain["models"][role].items():
            mine = fused["models"][role][sid]
            assert (mine["examples"], mine["accuracy"]) == (metrics["examples"], metrics["accuracy"])
            assert np.float32(mine["crossentropy"]) == pytest.approx(np.float32(metrics["crossentropy"]), rel=2e-6)
    failures = lambda result: json.dumps(result.get("metric_validations_per_slice", []), sort_keys=True)  # noqa: E731
    assert failures(fused_validation) == failures(plain_validation)


def test_keyword_signature_calls_give_the_signatures_outputs(tiny_models, tiny_run):
    import tensorflow as tf

    from analysis.keyword_signature import KeywordModel

    _, _, records, _ = read_examples(str(tiny_run / "data" / "eval-*.tfrecord"), MNIST)
    loaded = tf.saved_model.load(str(tiny_models["strong"]))
    batch = tf.constant(records[:64])
    wrapped = KeywordModel(loaded).signatures["serving_default"]
    positional = wrapped(batch)["probabilities"].numpy()
    keyword = loaded.signatures["serving_default"](examples=batch)["probabilities"].numpy()
    np.testing.assert_array_equal(positional, keyword)
    assert wrapped.structured_input_signature == loaded.signatures["serving_default"].structured_input_signature


def test_scanning_examples_in_batches_matches_reading_them_one_by_one(tiny_run, tmp_path):
    pattern = str(tiny_run / "data" / "eval-*.tfrecord")
    images, labels, records, _ = read_examples(pattern, MNIST)
    scanned, digest = scan_examples(pattern, MNIST)
    assert scanned.tolist() == labels.tolist() and digest == fingerprint(*records)
    picked = read_images(pattern, MNIST, [5, 0, 299, 5])
    assert sorted(picked) == [0, 5, 299]
    for index, image in picked.items():
        np.testing.assert_array_equal(image, images[index])
    # A record that does not fit is named, as reading one by one names it.
    import tensorflow as tf

    bad = tmp_path / "bad.tfrecord"
    with tf.io.TFRecordWriter(str(bad)) as writer:
        for record in records[:3]:
            writer.write(record)
        writer.write(b"not an example")
    with pytest.raises(InputError, match="record 3 is not a tf.Example"):
        scan_examples(str(bad), MNIST)


def test_large_data_get_worker_processes_by_default_and_given_options_win():
    from analysis.tfma_run import with_default_workers

    runner = ("--runner=DirectRunner",)
    assert with_default_workers(runner, 999_999, cores=2) == runner  # measured slower below
    assert with_default_workers(runner, 1_000_000, cores=2) == (
        *runner,
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
    )
    assert with_default_workers(runner, 5_000_000, cores=2)[-2] == "--direct_num_workers=2"  # never beyond the cores
    assert with_default_workers(runner, 5_000_000, cores=1) == runner
    one = (*runner, "--direct_num_workers=1")
    assert with_default_workers(one, 5_000_000, cores=4) == one
    portable = ("--runner=PortableRunner", "--job_endpoint=localhost:8099")
    assert with_default_workers(portable, 5_000_000, cores=4) == portable
