"""The recipe across seeds end to end: trained, analysed by TFMA, judged, blessed as one entry."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import counts_of


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory, tiny_npz):
    """The tiny run's recipe from two seeds (the fewest a recipe has), through the whole pipeline."""
    from pipeline.run import main as pipeline_main
    from tests.helpers import SEED

    run_dir = tmp_path_factory.mktemp("recipe") / "two-seeds"
    args = ["--run-dir", str(run_dir), "--data", str(tiny_npz), "--epochs", "1", "2", "--seed", str(SEED)]
    code = pipeline_main([*args, "--seeds", "2", "-q"])
    return run_dir, code


def _json(path):
    import json

    return json.loads(path.read_text("utf-8"))


@pytest.mark.slow
def test_two_seeds_judge_the_recipe_end_to_end(two_seed_run):
    from tests.helpers import SEED

    run_dir, code = two_seed_run
    verdict = _json(run_dir / "gate" / "verdict.json")
    recipe = verdict["recipe"]
    assert recipe["seeds"] == [SEED, SEED + 1]
    assert recipe["candidates"] == ["epochs-2", f"epochs-2-seed-{SEED + 1}"]
    assert recipe["baselines"] == ["epochs-1", f"epochs-1-seed-{SEED + 1}"]
    assert set(recipe["churn_floor"]) == {"overall", "per_class"} and len(recipe["churn_floor"]["per_class"]) == 10
    rules = {check["rule"] for check in recipe["checks"]}
    assert rules == {"overall improvement", "per-class drop"}
    for check in recipe["checks"]:
        assert len(check["per_seed"]) == 2 and check["status"] in ("pass", "fail", "inconclusive")
        assert check["delta"] == pytest.approx(sum(check["per_seed"]) / 2, abs=1e-12)
        assert check["interval"][0] <= check["delta"] <= check["interval"][1]
    # The exit code follows the recipe's checks, not the first seed's.
    passed = all(check["passed"] for check in recipe["checks"])
    assert verdict["passed"] == passed and code == (0 if passed else 1)
    junit = (run_dir / "gate" / "junit.xml").read_text("utf-8")
    assert junit.count("<testcase ") == len(recipe["checks"]) and 'classname="gate.recipe.' in junit
    summary_md = (run_dir / "gate" / "summary.md").read_text("utf-8")
    assert "the recipe over 2 seeds" in summary_md and "churn floor" in summary_md
    assert "The recipe across 2 seeds" in (run_dir / "report" / "index.html").read_text("utf-8")
    # Every seed has its own TensorBoard logs and SavedModels.
    for name in ("epochs-1", "epochs-2", f"epochs-1-seed-{SEED + 1}", f"epochs-2-seed-{SEED + 1}"):
        assert (run_dir / "models" / name / "saved_model.pb").is_file()
        assert any((run_dir / "logs" / name / "train").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_one_seed_is_the_first_seed_of_a_recipe_bit_for_bit(two_seed_run, tiny_run):
    """--seeds 1 (the default) is the run as it was: the same models, numbers and checks as the recipe's first seed,
    no recipe section, no seeds in the training fingerprint's settings."""
    run_dir, _ = two_seed_run
    one = _json(tiny_run / "gate" / "verdict.json")
    two = _json(run_dir / "gate" / "verdict.json")
    # The verdict's fields and rules as they were before recipes existed.
    assert sorted(one) == [
        "baseline",
        "candidate",
        "checks",
        "class_names",
        "eval_examples",
        "judged",
        "notes",
        "passed",
        "rules",
        "rules_in_force",
        "state",
        "warnings",
    ]
    assert "max_excess_newly_wrong" not in one["rules"] and "recipe_models" not in one["judged"]
    assert one["checks"] == two["checks"]
    # An export's bytes differ from run to run; its weights do not (evalsuite/run/model_identity.py).
    manifest_one, manifest_two = _json(tiny_run / "manifest.json"), _json(run_dir / "manifest.json")
    assert "seeds" not in manifest_one["stages"]["training"]["config"]
    assert "seeds" not in manifest_one["stages"]["training"]
    for name in ("epochs-1", "epochs-2"):
        first = manifest_one["stages"]["training"]["runs"][name]["weights_fingerprint"]
        assert first == manifest_two["stages"]["training"]["runs"][name]["weights_fingerprint"]
    summary_one = _json(tiny_run / "analysis" / "summary.json")
    summary_two = _json(run_dir / "analysis" / "summary.json")
    for key in ("models", "deltas", "paired", "confusion_matrices"):
        assert summary_one[key] == summary_two[key]


@pytest.mark.slow
def test_tfma_recipe_counts_are_the_saved_models_own_predictions(two_seed_run):
    """Every seed's paired table, the outcome sums and the floors, recounted from the SavedModels outside TFMA."""
    import tensorflow as tf

    from evalsuite.data.examples import read_examples
    from evalsuite.data.spec import recorded_spec
    from evalsuite.run.folder import RunDir

    run_dir, _ = two_seed_run
    summary = _json(run_dir / "analysis" / "summary.json")
    with RunDir(run_dir) as run:
        spec = recorded_spec(run.stage("data"), str(run.manifest_path))
        _, labels, records, _ = read_examples(str(run.data_dir / "eval-*.tfrecord"), spec)

    def right(name):
        serve = tf.saved_model.load(str(run_dir / "models" / name)).signatures["serving_default"]
        return serve(tf.constant(records))["probabilities"].numpy().argmax(axis=1) == labels

    recipe = summary["recipe"]
    base = np.stack([right(name) for name in recipe["baselines"]])
    cand = np.stack([right(name) for name in recipe["candidates"]])
    for sid, counted in recipe["slices"].items():
        mask = np.ones(len(labels), bool) if sid == "overall" else labels == int(sid.split("=")[1])
        assert counted == counts_of(base[:, mask], cand[:, mask]), sid


@pytest.mark.slow
def test_the_recipe_is_blessed_as_one_entry_and_every_seed_is_judged_against_a_blessed_model(two_seed_run, tmp_path):
    import shutil

    from analysis.__main__ import main as analysis_main
    from evalsuite import blessing, registry
    from gates.__main__ import main as gate_main
    from tests.helpers import SEED

    run_dir, code = two_seed_run
    assert code == 0  # one epoch to two on 600 digits: every seed gains
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"), symlinks=True)
    folder = tmp_path / "registry"
    assert gate_main(["--run-dir", str(copy), "--bless", str(folder), "-q"]) == 0
    entry = registry.latest(folder)
    assert entry.record["recipe"]["seeds"] == [SEED, SEED + 1]
    assert entry.record["candidate"] == "epochs-2"
    assert (entry.path / "seeds" / f"epochs-2-seed-{SEED + 1}" / "saved_model.pb").is_file()

    # A later recipe against a blessed model: that one model is every seed's baseline.
    other = tmp_path / "other-registry"
    blessing.bless(other, copy / "models" / "epochs-1", None, {"candidate": "epochs-1"})
    assert analysis_main(["--run-dir", str(copy), "--baseline", f"blessed:{other}", "-q"]) == 0
    assert gate_main(["--run-dir", str(copy), "-q"]) == 0
    summary = _json(copy / "analysis" / "summary.json")
    assert summary["recipe"]["shared_baseline"]
    assert len(set(summary["recipe"]["baselines"])) == 1
    assert summary["recipe"]["candidates"] == ["epochs-2", f"epochs-2-seed-{SEED + 1}"]
    counts = summary["recipe"]["slices"]["overall"]
    assert counts["floor_baselines"] == 0  # one model against itself breaks nothing
    verdict = _json(copy / "gate" / "verdict.json")
    n = summary["eval_data"]["examples"]
    assert verdict["recipe"]["churn_floor"]["overall"] == pytest.approx(counts["floor_candidates"] / (2 * n))


@pytest.mark.slow
def test_a_further_seeds_model_changed_since_the_analysis_is_refused(two_seed_run, tmp_path, capsys):
    import shutil

    from gates.__main__ import main as gate_main
    from tests.helpers import SEED

    run_dir, _ = two_seed_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"), symlinks=True)
    (copy / "models" / f"epochs-2-seed-{SEED + 1}" / "fingerprint.pb").write_bytes(b"swapped")
    assert gate_main(["--run-dir", str(copy), "-q"]) == 2
    err = capsys.readouterr().err
    assert f"candidate of seed {SEED + 1} model changed since the analysis" in err
    assert _json(copy / "gate" / "verdict.json")["state"] == "unjudged"


@pytest.mark.slow
def test_a_further_seeds_model_as_every_seeds_baseline_is_refused(two_seed_run, capsys):
    from analysis.__main__ import main as analysis_main
    from tests.helpers import SEED

    run_dir, _ = two_seed_run
    before = (run_dir / "analysis" / "summary.json").read_bytes()
    assert analysis_main(["--run-dir", str(run_dir), "--baseline", f"epochs-1-seed-{SEED + 1}", "-q"]) == 2
    assert "a further seed's model cannot be every seed's baseline" in capsys.readouterr().err
    assert (run_dir / "analysis" / "summary.json").read_bytes() == before


@pytest.mark.slow
def test_training_one_seed_again_removes_the_recipes_other_seeds(two_seed_run, tmp_path):
    import shutil

    from tests.helpers import SEED
    from training.__main__ import main as training_main

    run_dir, _ = two_seed_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns(".lock"), symlinks=True)
    manifest = _json(copy / "manifest.json")
    data = manifest["stages"]["data"]["requested"]
    args = ["--run-dir", str(copy), "--data", data, "--epochs", "1", "2", "--seed", str(SEED), "-q"]
    assert training_main([*args, "--histogram-freq", "1"]) == 0
    assert sorted(p.name for p in (copy / "models").iterdir() if p.is_dir()) == ["epochs-1", "epochs-2"]
    assert sorted(p.name for p in (copy / "logs").iterdir()) == ["epochs-1", "epochs-2"]
    assert "seeds" not in _json(copy / "manifest.json")["stages"]["training"]
