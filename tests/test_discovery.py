"""Where it got worse: slices no one named, found on one half of the examples and confirmed on the other."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from analysis.discovery import discover, halves
from analysis.image_properties import image_properties
from evalsuite.rules.discovered import discovered_checks
from evalsuite.rules.settings import parse_rules
from evalsuite.run.contract import NEWLY_RIGHT, NEWLY_WRONG


def synthetic(seed: int, n: int = 2000, classes: int = 10, planted_share: float = 0.0):
    """Labels, outcomes of two models with ordinary churn, and images whose brightness varies.

    With `planted_share`, the darkest examples lose most of the candidate's right answers.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    base_right = rng.random(n) < 0.92
    cand_right = base_right.copy()
    # As many newly wrong as newly right, about 2 % of the examples each: churn, not a regression.
    flip = rng.random(n) < np.where(base_right, 0.02, 0.02 * 0.92 / 0.08)
    cand_right[flip] = ~cand_right[flip]
    level = rng.integers(20, 236, n).astype(np.uint8)
    images = np.repeat(level[:, None, None], 8, axis=1).repeat(8, axis=2)
    images[:, 2:6, 2:6] = 255 - images[:, 2:6, 2:6]
    if planted_share:
        darkest = np.argsort(level, kind="stable")[: int(planted_share * n)]
        lose = darkest[rng.random(len(darkest)) < 0.6]
        cand_right[lose] = False
    return labels, base_right, cand_right, images, level


def run_discovery(labels, base_right, cand_right, images, seed=0, representation=None):
    return discover(
        labels, base_right, cand_right, image_properties(images), representation,
        seed=seed, alpha=0.05, max_drop=0.03, class_names=None, channels=1,
    )


def test_the_halves_are_seeded_stratified_by_class_and_the_same_every_time():
    labels = np.repeat(np.arange(4), [10, 11, 30, 1])
    first, again, other = halves(labels, 7), halves(labels, 7), halves(labels, 8)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    for klass, size in enumerate([10, 11, 30, 1]):
        assert abs(int(first[labels == klass].sum()) - size / 2) <= 0.5


def test_a_regression_in_the_darkest_images_is_found_named_and_confirmed():
    labels, base_right, cand_right, images, level = synthetic(1, planted_share=0.1)
    found = run_discovery(labels, base_right, cand_right, images)
    regressed = [s for s in found["slices"] if s["status"] == "regressed"]
    assert regressed
    best = regressed[0]
    assert best["description"].startswith("brightness in the lowest tenth")
    darkest = set(np.argsort(level, kind="stable")[:200].tolist())
    assert len(darkest & set(best["members"])) >= 0.5 * len(best["members"])
    assert best["confirmation"]["p_value"] < 0.05 and best["confirmation"]["delta"] < -0.03


def test_churn_spread_evenly_is_not_called_a_regression():
    alarms = 0
    for seed in range(10):
        labels, base_right, cand_right, images, _ = synthetic(100 + seed)
        found = run_discovery(labels, base_right, cand_right, images, seed=seed)
        alarms += any(s["status"] == "regressed" for s in found["slices"])
    assert alarms <= 1


def test_each_slice_is_recounted_from_its_members_on_both_halves():
    labels, base_right, cand_right, images, _ = synthetic(2, planted_share=0.1)
    found = run_discovery(labels, base_right, cand_right, images)
    confirmation = halves(labels, 0)
    assert found["halves"] == {"discovery": int((~confirmation).sum()), "confirmation": int(confirmation.sum())}
    for slice_ in found["slices"]:
        members = np.zeros(len(labels), bool)
        members[slice_["members"]] = True
        for half, mask in (("discovery", ~confirmation), ("confirmation", confirmation)):
            counts = slice_[half]
            assert counts["examples"] == int((members & mask).sum())
            assert counts[NEWLY_WRONG] == int((members & mask & base_right & ~cand_right).sum())
            assert counts[NEWLY_RIGHT] == int((members & mask & ~base_right & cand_right).sum())


def test_regions_of_the_representation_are_candidates_and_describe_themselves():
    labels, base_right, cand_right, images, _ = synthetic(3)
    rng = np.random.default_rng(0)
    representation = rng.normal(size=(len(labels), 6)).astype(np.float32)
    found = run_discovery(labels, base_right, cand_right, images, representation=representation)
    assert found["candidates"]["by_kind"]["representation"] > 0
    assert found["candidates"]["total"] == sum(found["candidates"]["by_kind"].values())


def test_image_properties_say_what_the_picture_shows():
    image = np.zeros((1, 10, 10), np.uint8)
    image[0, 0:2, 6:10] = 255  # a bright bar, top right
    values = {name: float(v[0]) for name, v in image_properties(image).items()}
    assert values["ink_share"] == pytest.approx(0.08)
    assert values["extent"] == pytest.approx(0.08)
    assert values["centre_row"] == pytest.approx(0.1) and values["centre_column"] == pytest.approx(0.8)
    colour = np.zeros((1, 4, 4, 3), np.uint8)
    colour[..., 0] = 200
    assert "colourfulness" in image_properties(colour) and "colourfulness" not in image_properties(image)


def test_a_regressed_slice_warns_by_default_and_fails_the_gate_when_asked():
    labels, base_right, cand_right, images, _ = synthetic(1, planted_share=0.1)
    found = run_discovery(labels, base_right, cand_right, images)
    warned = discovered_checks(parse_rules({}, "defaults"), found)
    failed = discovered_checks(parse_rules({"discovery": {"fail": True}}, "gate.toml"), found)
    regressed = [s["status"] == "regressed" for s in found["slices"]]
    assert any(regressed)
    assert [c.status for c in warned] == ["warn" if r else "pass" for r in regressed] and all(c.passed for c in warned)
    assert [c.passed for c in failed] == [not r for r in regressed]


@pytest.mark.slow
def test_the_default_run_writes_discovered_slices_that_agree_with_the_changed_list(run_copy):
    discovered = json.loads((run_copy / "analysis" / "discovered.json").read_text())
    changed = json.loads((run_copy / "analysis" / "changed.json").read_text())
    summary = json.loads((run_copy / "analysis" / "summary.json").read_text())
    assert discovered["halves"]["discovery"] + discovered["halves"]["confirmation"] == summary["eval_data"]["examples"]
    assert discovered["candidates"]["by_kind"]["representation"] > 0
    labels = np.zeros(summary["eval_data"]["examples"], np.int64)
    for example in changed["examples"]:
        labels[example["index"]] = example["label"]
    by_index = {e["index"]: e["change"] for e in changed["examples"]}
    for slice_ in discovered["slices"]:
        listed = [by_index.get(i) for i in slice_["members"]]
        both = slice_["discovery"][NEWLY_WRONG] + slice_["confirmation"][NEWLY_WRONG]
        assert listed.count(NEWLY_WRONG) == both
    report = (run_copy / "report" / "index.html").read_text()
    assert "Where it got worse" in report


@pytest.mark.slow
def test_a_baseline_without_its_keras_file_falls_back_to_image_properties(run_copy, tmp_path):
    from tests.helpers import run_command

    alone = tmp_path / "saved-model-only"
    shutil.copytree(run_copy / "models" / "epochs-1", alone)
    result = run_command("analysis", "--run-dir", str(run_copy), "--baseline", str(alone), "--candidate", "epochs-2")
    assert result.returncode == 0, result.stderr
    assert "discovery used image properties only" in result.stderr
    discovered = json.loads((run_copy / "analysis" / "discovered.json").read_text())
    assert discovered["representation"].startswith("image properties only")
    assert "representation" not in discovered["candidates"]["by_kind"]


@pytest.mark.slow
def test_the_report_shows_a_slice_with_its_counts_and_its_images(run_copy):
    from evalsuite.run.contract import load_changed, load_summary
    from evalsuite.run.folder import RunDir
    from reports.discovered_section import discovered_html, discovered_images

    run = RunDir(run_copy)
    changed, summary = load_changed(run.analysis_dir), load_summary(run.analysis_dir)
    wrong = changed["examples"][:3]
    assert wrong, "the tiny run's models disagree on some examples"
    for example in wrong:  # drawn as the slice's newly wrong: this test is about the drawing
        example["change"] = NEWLY_WRONG
    counts = {"examples": 40, "both_right": 30, NEWLY_RIGHT: 1, NEWLY_WRONG: 9, "p_value": 0.01, "delta": -0.2,
              "interval": [-0.35, -0.05]}
    discovered = {
        "alpha": 0.05, "tolerance": 0.03, "representation": "the baseline's last layer's input, clustered by k-means",
        "candidates": {"total": 12, "by_kind": {"property": 10, "representation": 2}},
        "halves": {"discovery": 150, "confirmation": 150},
        "slices": [{
            "id": "ink_share:all:0", "description": "ink share in the lowest tenth", "kind": "property", "class": None,
            "members": [e["index"] for e in wrong] + [0], "both_right_examples": [{"index": 0, "label": 0}],
            "discovery": counts, "confirmation": counts, "status": "regressed",
        }],
    }
    page = discovered_html(discovered, discovered_images(run, changed, discovered, summary))
    assert "Where it got worse" in page and "ink share in the lowest tenth" in page and "regressed" in page
    assert page.count("<img") == 2 and 'alt="newly wrong in ink share in the lowest tenth"' in page
    assert "<td>9</td><td>1</td><td>-0.2000</td>" in page


def regressed_file(run_copy) -> None:
    """The tiny run's discovered.json with one kept slice that regressed (what a real regression writes)."""
    path = run_copy / "analysis" / "discovered.json"
    discovered = json.loads(path.read_text())
    counts = {"examples": 40, "both_right": 30, NEWLY_RIGHT: 0, NEWLY_WRONG: 10, "p_value": 0.001, "delta": -0.25,
              "interval": [-0.4, -0.12]}
    discovered["slices"] = [{
        "id": "brightness:all:0", "description": "brightness in the lowest tenth", "kind": "property", "class": None,
        "members": list(range(80)), "both_right_examples": [], "discovery": counts, "confirmation": counts,
        "status": "regressed",
    }]
    path.write_text(json.dumps(discovered))


@pytest.mark.slow
@pytest.mark.parametrize("fail", [False, True])
def test_a_regressed_slice_is_a_warning_unless_the_rules_make_it_fail(run_copy, fail):
    from evalsuite.run.folder import RunDir
    from gates.verdict import decide
    from reports.comment import regressed_lines

    regressed_file(run_copy)
    rules = parse_rules({"discovery": {"fail": fail}}, "gate.toml")
    verdict = decide(RunDir(run_copy), rules, judged={})
    found = [c for c in verdict.checks if c.rule == "discovered drop"]
    assert [c.status for c in found] == ["fail" if fail else "warn"]
    assert verdict.passed is (not fail)
    assert any("brightness in the lowest tenth" in w for w in verdict.warnings) is (not fail)
    lines = regressed_lines(verdict.as_dict())
    assert len(lines) == 1 and "brightness in the lowest tenth: 10 newly wrong, 0 newly right of 40" in lines[0]
    assert ("fails the gate" in lines[0]) is fail
