"""The recipe verdict: its interval, its churn floor, its rules, on small outcome matrices."""

from __future__ import annotations

import dataclasses
import math
from types import SimpleNamespace

import numpy as np
import pytest

from evalsuite.errors import InputError
from evalsuite.rules import recipe_stats
from evalsuite.rules.recipe import judge_recipe
from evalsuite.rules.settings import DEFAULT_TABLE, parse_rules
from evalsuite.run.contract import BOTH_RIGHT, NEWLY_WRONG, PAIRED_CELLS, class_slice
from tests.helpers import counts_of


def estimate_of(base, cand) -> recipe_stats.RecipeEstimate:
    counts = counts_of(base, cand)
    return recipe_stats.estimate(counts["per_seed"], counts["outcome_sum"], counts["outcome_square_sum"])


def random_outcomes(rng, seeds: int, n: int, base_rate=0.9, cand_rate=0.92):
    return rng.random((seeds, n)) < base_rate, rng.random((seeds, n)) < cand_rate


@pytest.mark.parametrize("seeds", [2, 3, 5])
def test_the_estimate_is_the_two_variance_terms_worked_out_example_by_example(seeds):
    """Mean of the seeds' deltas; se^2 = var(seed deltas)/N + var over examples of the seed-averaged outcome/n."""
    from scipy import stats

    rng = np.random.default_rng(seeds)
    base, cand = random_outcomes(rng, seeds, 400)
    estimate = estimate_of(base, cand)
    d = cand.astype(int) - base.astype(int)
    per_seed = d.mean(axis=1)
    v_seeds, v_examples = per_seed.var(ddof=1) / seeds, d.mean(axis=0).var(ddof=1) / 400
    df = (v_seeds + v_examples) ** 2 / (v_seeds**2 / (seeds - 1) + v_examples**2 / 399)
    assert estimate.per_seed == pytest.approx(per_seed.tolist(), abs=1e-15)
    assert estimate.delta == pytest.approx(per_seed.mean(), abs=1e-15)
    assert estimate.se == pytest.approx(math.sqrt(v_seeds + v_examples), rel=1e-9)
    assert estimate.df == pytest.approx(df, rel=1e-9)
    half = stats.t.ppf(0.975, df) * math.sqrt(v_seeds + v_examples)
    assert estimate.interval() == pytest.approx([per_seed.mean() - half, per_seed.mean() + half], rel=1e-9)


def test_no_real_difference_is_rarely_called_one():
    """Seeds that shift the whole candidate up or down, and examples of every difficulty, but no recipe effect:
    a one-sided test at 5% shows a drop in about 5% of recipes, not more."""
    rng = np.random.default_rng(7)
    shown = 0
    trials = 400
    for _ in range(trials):
        difficulty = rng.random(300)  # shared by every seed: the test set's own make-up
        shift = rng.normal(0, 0.02, size=(5, 1))  # a seed's luck, on both of its models
        base = rng.random((5, 300)) < np.clip(0.95 - 0.3 * difficulty + shift, 0, 1)
        cand = rng.random((5, 300)) < np.clip(0.95 - 0.3 * difficulty + shift, 0, 1)
        shown += estimate_of(base, cand).worse_p_value() < 0.05
    assert shown / trials <= 0.07


def test_a_drop_every_seed_shares_is_shown_with_five_seeds():
    rng = np.random.default_rng(3)
    base = rng.random((5, 100)) < 0.95
    cand = base.copy()
    for seed in range(5):  # every seed's candidate loses 10 of the examples its baseline got right
        cand[seed, rng.choice(np.flatnonzero(base[seed]), 10, replace=False)] = False
    estimate = estimate_of(base, cand)
    assert estimate.delta == pytest.approx(-0.10)
    assert estimate.worse_p_value() < 0.005
    assert estimate.interval()[1] < 0


def test_two_seeds_are_the_fewest_and_every_seed_must_see_the_same_examples():
    rng = np.random.default_rng(1)
    base, cand = random_outcomes(rng, 2, 50)
    assert estimate_of(base, cand).df > 0
    with pytest.raises(ValueError, match="two seeds"):
        estimate_of(base[:1], cand[:1])
    counts = counts_of(base, cand)
    counts["per_seed"][1][BOTH_RIGHT] += 1
    with pytest.raises(ValueError, match="same examples"):
        recipe_stats.estimate(counts["per_seed"], counts["outcome_sum"], counts["outcome_square_sum"])


def test_seeds_that_never_disagree_are_judged_as_pooled_pairs_not_as_certainty():
    """No example moves in any seed: the interval is the paired interval of N x n pairs, never zero-width."""
    base = np.ones((3, 30), bool)
    estimate = estimate_of(base, base.copy())
    assert estimate.pooled
    low, high = estimate.interval()
    assert low < 0 < high
    assert not estimate.shows(0.03, 0.005)  # 90 agreeing pairs cannot show a 3-point drop
    assert estimate_of(np.ones((5, 1000), bool), np.ones((5, 1000), bool)).shows(0.03, 0.005)


def test_the_churn_floor_averages_every_ordered_pair_of_seeds():
    right = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1]], bool)
    counts = counts_of(right, right)
    # Pairs (a right, b wrong): (0,1) 1, (0,2) 1, (1,0) 0, (1,2) 1, (2,0) 1, (2,1) 2 -> 6 of 6 pairs x 4 examples;
    # the metric counts it as k (N - k) per example, k seeds right: 2 + 2 + 2 + 0.
    assert counts["floor_candidates"] == 6
    assert recipe_stats.churn_floor(6, 3, 4) == pytest.approx(6 / 24)
    assert recipe_stats.churn_floor(0, 1, 4) is None  # one seed: no floor, none invented


def test_the_tfma_metric_counts_what_the_matrices_say_in_any_grouping():
    """analysis/recipe_counts.py's combiner on groups of examples, merged in any order, equals the brute force."""
    from analysis.recipe_counts import _RecipeCombiner, _Tally

    rng = np.random.default_rng(5)
    seeds, n, classes = 3, 60, 4
    labels = rng.integers(0, classes, n)
    names = [(f"b{s}", f"c{s}") for s in range(seeds)]
    probabilities = {name: rng.random((n, classes)) for pair in names for name in pair}
    combiner = _RecipeCombiner("key", names)

    def element(rows):
        return SimpleNamespace(
            prediction={name: p[rows] for name, p in probabilities.items()},
            label={name: labels[rows] for name in probabilities},
        )

    parts = []
    for rows in np.array_split(rng.permutation(n), 4):
        parts.append(combiner.add_input(combiner.create_accumulator(), element(rows)))
    merged = combiner.merge_accumulators(reversed(parts))
    right = {name: p.argmax(axis=1) == labels for name, p in probabilities.items()}
    base = np.stack([right[b] for b, _ in names])
    cand = np.stack([right[c] for _, c in names])
    expected = counts_of(base, cand)
    assert isinstance(merged, _Tally)
    assert [dict(zip(PAIRED_CELLS, row.tolist())) for row in merged.cells] == expected["per_seed"]
    assert merged.outcomes.tolist() == [expected["outcome_sum"], expected["outcome_square_sum"]]
    assert merged.floor.tolist() == [expected["floor_candidates"], expected["floor_baselines"]]


def recipe_summary(base: np.ndarray, cand: np.ndarray, labels: np.ndarray) -> dict:
    """A summary as the analysis writes it, for (seeds, examples) outcomes of examples with `labels`."""
    classes = int(labels.max()) + 1
    slices = {"overall": np.ones(len(labels), bool)} | {class_slice(c): labels == c for c in range(classes)}
    recipe = {sid: counts_of(base[:, mask], cand[:, mask]) for sid, mask in slices.items()}
    return {
        "eval_data": {
            "examples": len(labels),
            "examples_per_class": {str(c): int(np.sum(labels == c)) for c in range(classes)},
            "class_names": None,
        },
        "paired": {sid: counts["per_seed"][0] for sid, counts in recipe.items()},
        "recipe": {
            "seeds": list(range(42, 42 + len(base))),
            "baselines": [],
            "candidates": [],
            "shared_baseline": False,
            "slices": recipe,
        },
    }


def planted_drop(seeds: int, per_class: int, drop: int, seed: int = 0):
    """Every seed's candidate a little better everywhere, except class 3, which loses `drop` examples.

    The examples' difficulty is shared by every seed (what a seed gets wrong, the others mostly do too);
    each seed's baseline flips 2% of the outcomes on its own.
    """
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(10), per_class)
    shared = rng.random(len(labels)) < 0.9
    base = shared ^ (rng.random((seeds, len(labels))) < 0.02)
    cand = base.copy()
    for s in range(seeds):
        cand[s, rng.choice(np.flatnonzero(~base[s] & (labels != 3)), per_class // 5, replace=False)] = True
        cand[s, rng.choice(np.flatnonzero(base[s] & (labels == 3)), drop, replace=False)] = False
    return base, cand, labels


def rules(extra: dict | None = None):
    table = {section: dict(values) for section, values in DEFAULT_TABLE.items()}
    for section, values in (extra or {}).items():
        table.setdefault(section, {}).update(values)
    return parse_rules(table, "test")


def test_a_class_every_seed_drops_fails_the_recipe_and_the_rest_pass():
    base, cand, labels = planted_drop(seeds=5, per_class=100, drop=10)
    checks, floor = judge_recipe(rules(), recipe_summary(base, cand, labels), "test")
    status = {(c.rule, c.slice): c.status for c in checks}
    assert status[("per-class drop", "label=3")] == "fail"
    assert status[("overall improvement", "overall")] == "pass"
    failing = [c for c in checks if c.status == "fail"]
    assert [c.slice for c in failing] == ["label=3"]
    assert failing[0].per_seed == pytest.approx([-0.10] * 5)
    assert "digit 3" in failing[0].message and "CI" in failing[0].message
    assert set(floor) == {"overall", *(class_slice(c) for c in range(10))}


def test_two_seeds_on_few_examples_are_inconclusive_not_failed():
    base, cand, labels = planted_drop(seeds=2, per_class=20, drop=1)
    checks, _ = judge_recipe(rules(), recipe_summary(base, cand, labels), "test")
    three = next(c for c in checks if c.slice == "label=3")
    assert three.status == "inconclusive" and three.passed
    assert "2 seeds x 20 examples" in three.message


def test_churn_beyond_the_floor_is_off_by_default_and_judged_when_set():
    base, cand, labels = planted_drop(seeds=3, per_class=100, drop=10)
    summary = recipe_summary(base, cand, labels)
    checks, floor = judge_recipe(rules(), summary, "test")
    assert not any(c.rule == "churn beyond the floor" for c in checks)
    checks, floor = judge_recipe(rules({"churn": {"max_excess_newly_wrong": 0.05}}), summary, "test")
    excess = {c.slice: c for c in checks if c.rule == "churn beyond the floor"}
    three = excess["label=3"]
    rates = [cells[NEWLY_WRONG] / 100 for cells in summary["recipe"]["slices"]["label=3"]["per_seed"]]
    assert three.delta == pytest.approx(sum(rates) / 3 - floor["label=3"])
    assert three.delta > 0.05 and three.status == "fail" and "churn floor" in three.message
    assert excess["label=0"].status == "pass"  # nothing newly wrong there by construction


def test_recipe_counts_that_do_not_hold_the_first_seeds_pair_are_refused():
    base, cand, labels = planted_drop(seeds=2, per_class=20, drop=1)
    summary = recipe_summary(base, cand, labels)
    summary["paired"]["overall"] = dict(summary["paired"]["overall"], newly_wrong=0)
    with pytest.raises(InputError, match="first seed"):
        judge_recipe(rules(), summary, "test")


def test_every_rule_reads_across_seeds_and_explains_a_failure():
    base, cand, labels = planted_drop(seeds=3, per_class=100, drop=30)
    every_rule = {
        "overall": {"min_improvement": 0.5, "min_accuracy": 0.99},
        "gap_to_overall": {"max_gap": 0.05},
        "churn": {"max_newly_wrong_rate": 0.01, "max_excess_newly_wrong": 0.01},
        "significance": {"require": True},
    }
    checks, _ = judge_recipe(rules(every_rule), recipe_summary(base, cand, labels), "test")
    failed = {c.rule for c in checks if c.status == "fail"}
    assert failed == {
        "overall improvement",
        "significant improvement",
        "overall floor",
        "per-class drop",
        "gap to overall",
        "churn",
        "churn beyond the floor",
    }
    for check in checks:
        assert len(check.per_seed) == 3
        if check.status == "fail":
            assert check.message.startswith(check.title) and "None" not in check.message, check.message


def test_the_new_rule_is_absent_from_the_rules_until_set():
    """Off, churn.max_excess_newly_wrong leaves the rules (and every verdict and fingerprint) as they were."""
    assert "max_excess_newly_wrong" not in rules().as_dict()
    assert "max_excess_newly_wrong" not in rules().key()
    assert rules({"churn": {"max_excess_newly_wrong": 0.02}}).key()["max_excess_newly_wrong"] == 0.02


def test_a_slice_of_one_example_is_judged_as_pooled_pairs():
    base = np.array([[True], [True], [False]])
    cand = np.array([[False], [True], [True]])
    estimate = estimate_of(base, cand)
    assert estimate.pooled and estimate.examples == 1
    assert estimate.delta == pytest.approx(0.0)
    assert estimate.interval()[0] < 0 < estimate.interval()[1]


def test_a_recipe_judged_only_on_a_floor_reports_without_a_figure():
    from reports.recipe_section import recipe_section

    base, cand, labels = planted_drop(seeds=2, per_class=20, drop=1)
    only_floor = parse_rules(
        {"overall": {"min_accuracy": 0.99, "min_improvement": "off"}, "per_class": {"max_drop": "off"}}, "test"
    )
    checks, floor = judge_recipe(only_floor, recipe_summary(base, cand, labels), "test")
    assert [c.rule for c in checks] == ["overall floor"] and checks[0].status == "fail"
    assert checks[0].delta is None and checks[0].message.startswith("overall: candidate accuracy")
    by_slice = {"overall": floor["overall"], "per_class": {k: v for k, v in floor.items() if k != "overall"}}
    verdict = {
        "rules": only_floor.as_dict(),
        "recipe": {
            "seeds": [42, 43],
            "baselines": ["epochs-3", "epochs-3-seed-43"],
            "candidates": ["epochs-6", "epochs-6-seed-43"],
            "shared_baseline": False,
            "churn_floor": by_slice,
            "newly_wrong_rate": by_slice,
            "checks": [dataclasses.asdict(c) for c in checks],
        },
    }
    page = recipe_section(verdict)
    assert "The recipe across 2 seeds" in page and "<img" not in page


def test_a_slice_feature_is_judged_across_seeds_like_the_classes():
    base, cand, labels = planted_drop(seeds=5, per_class=100, drop=10)
    summary = recipe_summary(base, cand, labels)
    # A feature whose value "red" is every 3 (the class that drops) and "blue" everything else.
    for value, mask in (("red", labels == 3), ("blue", labels != 3)):
        sid = f"pen={value}"
        summary["recipe"]["slices"][sid] = counts_of(base[:, mask], cand[:, mask])
        summary["paired"][sid] = summary["recipe"]["slices"][sid]["per_seed"][0]
    summary["feature_slices"] = {"pen": ["pen=blue", "pen=red"]}
    checks, _ = judge_recipe(rules(), summary, "test")
    feature = {c.slice: c.status for c in checks if c.rule == "per-feature drop"}
    assert feature == {"pen=blue": "pass", "pen=red": "fail"}
