"""Paired statistics on hand-made counts with published answers, and the rules that use them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from evalsuite.errors import InputError
from evalsuite.rules import paired_stats
from evalsuite.rules.definitions import inclusive_drop_bound, judge, strict_change_bound
from evalsuite.rules.evidence import Evidence
from evalsuite.rules.settings import DEFAULT_TABLE, load_rules, parse_rules
from evalsuite.run.contract import slice_ids

# (newly right, newly wrong, n) -> Tango's 95% interval of the delta, as published. In Tango's
# 2x2 notation the candidate is condition 1: newly right = n12, newly wrong = n21.
PUBLISHED_TANGO = [
    # Cavo et al. 2012 (n11=59, n12=6, n21=16, n22=80): contingencytables' tests, -0.1240 .. -0.0054.
    ((6, 16, 161), 0.95, (-0.1240, -0.0054), 4),
    # Bentur et al. 2009 (1, 1, 7, 12), Fagerland et al. 2014: -0.517 .. -0.026.
    ((1, 7, 21), 0.95, (-0.517, -0.026), 3),
    # Tango 1998 examples (ratesci's tests): (4, 9, 3, 16) and, at 90%, (43, 0, 1, 0).
    ((9, 3, 32), 0.95, (-0.027, 0.390), 3),
    ((0, 1, 44), 0.90, (-0.096, 0.037), 3),
    # Agresti & Min 2005 (53, 16, 8, 9): -0.020 .. 0.207.
    ((16, 8, 86), 0.95, (-0.020, 0.207), 3),
]


@pytest.mark.parametrize("counts, confidence, expected, digits", PUBLISHED_TANGO)
def test_tango_interval_matches_published_examples(counts, confidence, expected, digits):
    low, high = paired_stats.tango_interval(*counts, confidence=confidence)
    assert (round(low, digits), round(high, digits)) == expected


def test_mcnemar_mid_p_matches_published_example():
    # Cavo et al. 2012: exact conditional p 0.052479, mid-p 0.034690 (Fagerland et al. 2013).
    assert round(paired_stats.mcnemar_mid_p(6, 16), 6) == 0.034690
    # Bentur et al. 2009: mid-p 10/256.
    assert paired_stats.mcnemar_mid_p(1, 7) == pytest.approx(10 / 256, abs=1e-12)
    # One-sided mid-p: half the two-sided one when the direction is the observed one.
    assert paired_stats.worse_p_value(1, 7) == pytest.approx(5 / 256, abs=1e-12)
    assert paired_stats.mcnemar_mid_p(3, 3) == pytest.approx(1 - 0.5 * math.comb(6, 3) / 64)


@pytest.mark.parametrize("n", [30, 100, 1000, 10000])
def test_no_disagreement_is_never_a_zero_width_interval(n):
    low, high = paired_stats.tango_interval(0, 0, n)
    assert low < 0 < high and low == pytest.approx(-high)
    # Three agreements in a row of n prove less than n of them: the width shrinks with n.
    assert high == pytest.approx(1.959964**2 / (n + 1.959964**2), rel=1e-4)


def test_interval_contains_the_estimate_and_stays_in_range():
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 400))
        right = int(rng.integers(0, n + 1))
        wrong = int(rng.integers(0, n - right + 1))
        low, high = paired_stats.tango_interval(right, wrong, n)
        estimate = (right - wrong) / n
        assert -1 <= low <= estimate + 1e-9 and estimate - 1e-9 <= high <= 1


def test_large_counts_do_not_underflow():
    assert 0 < paired_stats.worse_p_value(4000, 4200) < 0.05
    assert paired_stats.worse_p_value(4200, 4000) > 0.95


def test_holm_rejects_step_down_and_stops_at_the_first_failure():
    p = {"a": 0.001, "b": 0.013, "c": 0.02, "d": 0.5}
    # 0.001 < 0.05/4; 0.013 < 0.05/3; 0.02 < 0.05/2 - all three rejected, d kept.
    assert paired_stats.holm(p, 0.05) == {"a": True, "b": True, "c": True, "d": False}
    assert paired_stats.holm({"a": 0.02, "b": 0.001}, 0.01) == {"a": False, "b": True}
    assert paired_stats.holm({"a": 0.006, "b": 0.006}, 0.01) == {"a": False, "b": False}


def test_min_detectable_is_the_fewest_one_sided_examples():
    assert paired_stats.min_detectable_worse(0.005) == 7  # mid-p of 7 of 7 is 2^-8 < 0.005 <= 2^-7
    assert paired_stats.min_detectable_worse(0.05) == 4


def test_strict_and_inclusive_bounds_are_exact_on_accuracy_steps():
    n = 1000
    bound = strict_change_bound(0.0, n)
    assert 0 < bound < 1 / n  # a tie fails, one more correct example passes
    assert np.float32(1 / n) >= bound and np.float32(0.0) < bound
    assert 0.04 < strict_change_bound(0.04, 100) < 0.05  # 0.04 itself (float32 0.04000002) does not pass
    assert -0.04 < inclusive_drop_bound(0.03, 100) < -0.03  # -0.03 (float32 -0.030000001) passes
    assert -0.02 < inclusive_drop_bound(0.0, 100) < 0


def test_shipped_gate_toml_matches_the_built_in_defaults():
    shipped = load_rules(Path(__file__).parents[1] / "gate.toml")
    built_in = parse_rules(DEFAULT_TABLE, "defaults")
    assert shipped.key() == built_in.key()
    assert built_in.alpha == 0.05 and built_in.inconclusive == "pass" and built_in.max_drop == 0.03


# The decision on hand-made evidence: the rules' logic alone, one slice table per case.


def evidence(per_class: dict[int, tuple[int, int]], n_per_class: int = 100, overall_shift: int = 5) -> Evidence:
    """A summary whose counts are consistent: class c has (newly right, newly wrong) = per_class[c]."""
    models = {"baseline": {}, "candidate": {}}
    deltas, paired = {}, {}
    totals = {"both_right": 0, "newly_right": 0, "newly_wrong": 0, "both_wrong": 0}
    for c in range(10):
        right, wrong = per_class.get(c, (0, 0))
        if c == 0:
            right += overall_shift
        both_right = 80 - wrong
        cells = {"both_right": both_right, "newly_right": right, "newly_wrong": wrong}
        cells["both_wrong"] = n_per_class - sum(cells.values())
        sid = f"label={c}"
        paired[sid] = cells
        for key in totals:
            totals[key] += cells[key]
    paired["overall"] = totals
    failures = set()
    per_class_counts = {str(c): n_per_class for c in range(10)}
    for sid, cells in paired.items():
        n = sum(cells.values())
        base = (cells["both_right"] + cells["newly_wrong"]) / n
        cand = (cells["both_right"] + cells["newly_right"]) / n
        models["baseline"][sid] = {"accuracy": base, "examples": n}
        models["candidate"][sid] = {"accuracy": cand, "examples": n}
        deltas[sid] = {"accuracy": cand - base}
        if sid != "overall" and cand - base < inclusive_drop_bound(0.03, n):
            failures.add(("sparse_categorical_accuracy", sid, "change"))
        if sid == "overall" and cand - base < strict_change_bound(0.0, n):
            failures.add(("sparse_categorical_accuracy", sid, "change"))
    summary = {
        "eval_data": {"examples": 10 * n_per_class, "examples_per_class": per_class_counts, "class_names": None},
        "models": models,
        "deltas": deltas,
        "paired": paired,
        "slices": slice_ids(10),
    }
    return Evidence(summary, failures, Path("hand-made"))


def drop_checks(checks):
    return {c.slice: c for c in checks if c.rule == "per-class drop"}


def test_a_noisy_four_point_drop_on_100_examples_is_inconclusive_not_a_failure():
    rules = parse_rules(DEFAULT_TABLE, "defaults")
    checks = drop_checks(judge(rules, evidence({9: (1, 5)})))
    nine = checks["label=9"]
    assert nine.delta == pytest.approx(-0.04) and nine.status == "inconclusive" and nine.passed
    assert not nine.conclusive and "7 newly wrong" in nine.message


def test_a_twenty_point_drop_on_100_examples_fails_conclusively():
    rules = parse_rules(DEFAULT_TABLE, "defaults")
    checks = drop_checks(judge(rules, evidence({3: (1, 21)})))
    assert checks["label=3"].status == "fail" and checks["label=3"].conclusive
    assert [sid for sid, c in checks.items() if c.status == "fail"] == ["label=3"]
    assert "digit 3: accuracy baseline" in checks["label=3"].message


def test_inconclusive_fails_when_the_rules_say_so():
    rules = parse_rules({**DEFAULT_TABLE, "significance": {"inconclusive": "fail"}}, "strict")
    checks = drop_checks(judge(rules, evidence({9: (1, 5)})))
    assert checks["label=9"].status == "inconclusive" and not checks["label=9"].passed


def test_a_clear_gain_is_conclusive_even_on_few_examples():
    rules = parse_rules(DEFAULT_TABLE, "defaults")
    checks = drop_checks(judge(rules, evidence({4: (15, 0)})))
    # 15 newly right, none newly wrong: the interval rules out a 3-point drop.
    assert checks["label=4"].status == "pass" and checks["label=4"].conclusive


def test_paired_counts_that_contradict_the_delta_are_refused():
    rules = parse_rules(DEFAULT_TABLE, "defaults")
    broken = evidence({})
    broken.summary["paired"]["label=2"]["newly_wrong"] += 1
    broken.summary["paired"]["label=2"]["both_right"] -= 1
    with pytest.raises(InputError, match="disagrees with its paired counts"):
        judge(rules, broken)
