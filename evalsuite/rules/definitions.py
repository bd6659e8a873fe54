"""Gate rules as data: one entry per rule, shared by the analysis and the gate.

Each rule is one `Rule` entry: when it is on (its settings, read from
gate.toml by `evalsuite/rules/settings.py`), the TFMA thresholds it asks the
analysis for (plain data; `analysis/thresholds.py` turns them into TFMA
protos), and how the gate checks and explains it from the saved evidence.
`decide` loops over `RULES`; adding a rule is adding an entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from evalsuite.data.class_names import title
from evalsuite.data.slice_features import slice_id
from evalsuite.errors import InputError
from evalsuite.rules import paired_stats
from evalsuite.rules.evidence import Check, Evidence, accuracy_check, paired_evidence
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import ACCURACY, CANDIDATE, NEWLY_RIGHT, NEWLY_WRONG, class_of, class_slices, num_classes_of

# TFMA computes in float32 (0.8999999761 for 0.9): value bounds get this much slack.
FLOAT_SLACK = 1e-6
NEWLY_WRONG_RATE = "newly_wrong_rate"


@dataclass(frozen=True)
class Threshold:
    """A TFMA threshold as data: `metric` on `slice` ('overall', 'label=3', 'overall vs label')."""

    metric: str
    slice: str
    kind: str  # change (candidate - baseline) | value (candidate alone)
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Rule:
    name: str
    enabled: Callable[[GateRules], bool]
    # (rules, examples, examples per class, examples per value of each slice feature) -> thresholds
    thresholds: Callable[[GateRules, int, dict, dict], list[Threshold]]
    check: Callable[[GateRules, Evidence], list[Check]]


def _agree(check: Check, tfma_failed: bool, recomputed_pass: bool) -> None:
    """TFMA's own decision and the saved numbers must tell the same story."""
    if recomputed_pass == tfma_failed:
        raise InputError(
            f"TFMA validation says {'fail' if tfma_failed else 'pass'} for {check.rule} on {check.slice} "
            "but its own numbers say otherwise; refusing to judge"
        )


def strict_change_bound(min_improvement: float, examples: int) -> float:
    """TFMA's change thresholds are inclusive (diff >= bound); make "diff > m" exact.

    Accuracy on n examples moves in steps of 1/n, so "diff > m" equals
    "diff >= the midpoint between the last step at or below m and the next".
    The midpoint also absorbs TFMA's float32 noise (0.04000002 for 0.04).
    """
    steps = math.floor(min_improvement * examples + 1e-9)
    return (steps + 0.5) / examples


def inclusive_drop_bound(max_drop: float, examples: int) -> float:
    """ "diff >= -max_drop", with the bound moved half a step down to absorb float noise."""
    if examples <= 0:
        return -max_drop
    steps = math.ceil(-max_drop * examples - 1e-9)
    return (steps - 0.5) / examples


def _class_slices(per_class: dict) -> list[str]:
    """One slice per class; every class has evaluation examples (the analysis refuses data without some)."""
    return class_slices(len(per_class))


def _evidence_slices(evidence: Evidence) -> list[str]:
    return class_slices(num_classes_of(evidence.summary["eval_data"]))


def _improvement_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return [Threshold(ACCURACY, "overall", "change", lower=strict_change_bound(rules.min_improvement, total))]


def _improvement_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    sid = "overall"
    stats = paired_evidence(evidence, sid)
    counts = stats["counts"]
    check = accuracy_check(
        "overall improvement",
        sid,
        evidence,
        f"delta > {rules.min_improvement:g}",
        interval=stats["interval"],
        p_value=paired_stats.better_p_value(counts[NEWLY_RIGHT], counts[NEWLY_WRONG]),
        counts=counts,
    )
    failed = evidence.tfma_failed(ACCURACY, sid, "change")
    _agree(check, failed, check.delta >= strict_change_bound(rules.min_improvement, counts["examples"]))
    check.status = "fail" if failed else "pass"
    return [check]


def _significance_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    sid = "overall"
    stats = paired_evidence(evidence, sid)
    counts = stats["counts"]
    p = paired_stats.better_p_value(counts[NEWLY_RIGHT], counts[NEWLY_WRONG])
    return [
        accuracy_check(
            "significant improvement",
            sid,
            evidence,
            f"one-sided McNemar mid-p < {rules.alpha:g}",
            status="pass" if p < rules.alpha else "fail",
            interval=stats["interval"],
            p_value=p,
            counts=counts,
        )
    ]


def _floor_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return [Threshold(ACCURACY, "overall", "value", lower=rules.min_accuracy - FLOAT_SLACK)]


def _floor_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    value = evidence.accuracy(CANDIDATE, "overall")
    check = accuracy_check("overall floor", "overall", evidence, f"candidate >= {rules.min_accuracy:g}")
    failed = evidence.tfma_failed(ACCURACY, "overall", "value")
    _agree(check, failed, value >= rules.min_accuracy - FLOAT_SLACK)
    check.status = "fail" if failed else "pass"
    return [check]


def _drop_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return [
        Threshold(
            ACCURACY,
            sid,
            "change",
            lower=inclusive_drop_bound(rules.max_drop, int(per_class.get(str(class_of(sid)), 0))),
        )
        for sid in _class_slices(per_class)
    ]


def _drop_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    """A class fails when its drop exceeds the tolerance (TFMA) and the data show it (Holm across classes)."""
    return _drops(rules, evidence, _evidence_slices(evidence), "per-class drop")


def _feature_drop_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return [
        Threshold(ACCURACY, slice_id(name, value), "change", lower=inclusive_drop_bound(rules.max_drop, int(count)))
        for name, counts in per_feature.items()
        for value, count in counts.items()
    ]


def _feature_drop_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    """The per-class rule on each slice feature's values, Holm across the values of one feature."""
    features = evidence.summary["eval_data"].get("slice_features") or {}
    return [
        check
        for name, counts in features.items()
        for check in _drops(rules, evidence, [slice_id(name, value) for value in counts], "per-feature drop")
    ]


def _drops(rules: GateRules, evidence: Evidence, slices: list[str], rule: str) -> list[Check]:
    """A slice fails when its drop exceeds the tolerance (TFMA) and the data show it (Holm across `slices`)."""
    stats = {sid: paired_evidence(evidence, sid) for sid in slices}
    p_worse = {
        sid: paired_stats.worse_p_value(stats[sid]["counts"][NEWLY_RIGHT], stats[sid]["counts"][NEWLY_WRONG])
        for sid in slices
    }
    shown = paired_stats.holm(p_worse, rules.alpha)
    # What a lone regressed slice must reach (Holm's first step, alpha / slices): with fewer
    # newly-wrong examples than this it cannot be shown, whatever the other counts.
    needed = paired_stats.min_detectable_worse(rules.alpha / len(slices))
    checks = []
    for sid in slices:
        counts = stats[sid]["counts"]
        n = counts["examples"]
        check = accuracy_check(
            rule,
            sid,
            evidence,
            f"drop <= {rules.max_drop:g}, or not significant (Holm, alpha {rules.alpha:g})",
            interval=stats[sid]["interval"],
            p_value=p_worse[sid],
            counts=counts,
        )
        beyond = evidence.tfma_failed(ACCURACY, sid, "change")
        _agree(check, beyond, check.delta >= inclusive_drop_bound(rules.max_drop, n))
        # Smallest drop past the tolerance, in examples, against what the data could ever show.
        smallest_drop_past_tolerance = math.floor(rules.max_drop * n + 1e-9) + 1
        # Conclusive when a drop past the tolerance could have been shown at all, or when the
        # data rule such a drop out: the one-sided (1 - alpha) bound lies above -tolerance.
        right, wrong = counts[NEWLY_RIGHT], counts[NEWLY_WRONG]
        lower = paired_stats.tango_interval(right, wrong, n, confidence=1 - 2 * rules.alpha)[0]
        check.conclusive = smallest_drop_past_tolerance >= needed or lower >= -rules.max_drop
        if beyond and shown[sid]:
            check.status = "fail"
            check.conclusive = True
        elif not check.conclusive:
            check.status = "inconclusive"
            check.message = (
                f"{n} examples can show a drop only from {needed} newly wrong ({needed / n:.0%}), "
                f"more than the {rules.max_drop:g} tolerated"
            )
        checks.append(check)
    return checks


def _gap_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    # TFMA's cross-slice value is (overall - class).
    return [Threshold(ACCURACY, "overall vs label", "value", upper=rules.max_gap + FLOAT_SLACK)]


def _gap_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    overall = evidence.accuracy(CANDIDATE, "overall")
    checks = []
    for sid in _evidence_slices(evidence):
        gap = evidence.summary.get("cross_slices", {}).get(f"overall vs {sid}", {}).get("accuracy_gap")
        if not isinstance(gap, (int, float)) or not math.isfinite(gap):
            raise InputError(f"{evidence.where}: no cross-slice gap for slice {sid}")
        check = Check(
            rule="gap to overall",
            metric="accuracy",
            slice=sid,
            baseline=overall,
            candidate=evidence.accuracy(CANDIDATE, sid),
            delta=-gap,
            threshold=f"overall - class <= {rules.max_gap:g}",
        )
        failed = evidence.tfma_failed(ACCURACY, f"overall vs {sid}", "value")
        _agree(check, failed, gap <= rules.max_gap + FLOAT_SLACK)
        check.status = "fail" if failed else "pass"
        checks.append(check)
    return checks


def _churn_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return [
        Threshold(NEWLY_WRONG_RATE, sid, "value", upper=rules.max_newly_wrong_rate + FLOAT_SLACK)
        for sid in ["overall", *_class_slices(per_class)]
    ]


def _churn_check(rules: GateRules, evidence: Evidence) -> list[Check]:
    checks = []
    for sid in ["overall", *_evidence_slices(evidence)]:
        stats = paired_evidence(evidence, sid)
        counts = stats["counts"]
        rate = counts[NEWLY_WRONG] / counts["examples"]
        check = Check(
            rule="churn",
            metric=NEWLY_WRONG_RATE,
            slice=sid,
            baseline=None,
            candidate=rate,
            delta=None,
            threshold=f"newly wrong rate <= {rules.max_newly_wrong_rate:g}",
            counts=counts,
        )
        failed = evidence.tfma_failed(NEWLY_WRONG_RATE, sid, "value")
        _agree(check, failed, rate <= rules.max_newly_wrong_rate + FLOAT_SLACK)
        check.status = "fail" if failed else "pass"
        checks.append(check)
    return checks


def _none(rules: GateRules, total: int, per_class: dict, per_feature: dict) -> list[Threshold]:
    return []


RULES: tuple[Rule, ...] = (
    Rule("overall improvement", lambda r: r.min_improvement is not None, _improvement_thresholds, _improvement_check),
    Rule("overall floor", lambda r: r.min_accuracy is not None, _floor_thresholds, _floor_check),
    Rule("per-class drop", lambda r: r.max_drop is not None, _drop_thresholds, _drop_check),
    Rule("per-feature drop", lambda r: r.max_drop is not None, _feature_drop_thresholds, _feature_drop_check),
    Rule("gap to overall", lambda r: r.max_gap is not None, _gap_thresholds, _gap_check),
    Rule("significant improvement", lambda r: r.require_significant, _none, _significance_check),
    Rule("churn", lambda r: r.max_newly_wrong_rate is not None, _churn_thresholds, _churn_check),
)


def tfma_thresholds(rules: GateRules, total: int, per_class: dict, per_feature: dict | None = None) -> list[Threshold]:
    """Every threshold the enabled rules ask TFMA to validate, as plain data."""
    per_feature = per_feature or {}
    return [t for rule in RULES if rule.enabled(rules) for t in rule.thresholds(rules, total, per_class, per_feature)]


def judge(rules: GateRules, evidence: Evidence) -> list[Check]:
    checks = [check for rule in RULES if rule.enabled(rules) for check in rule.check(rules, evidence)]
    names = evidence.summary["eval_data"].get("class_names")
    for check in checks:
        check.title = title(check.slice, names)
        check.passed = check.status == "pass" or (check.status == "inconclusive" and rules.inconclusive == "pass")
        if check.status == "fail" and not check.message:
            check.message = failure_message(check)
    return checks


def failure_message(check: Check) -> str:
    if check.metric == NEWLY_WRONG_RATE:
        counts = check.counts or {}
        return (
            f"{check.title}: {counts.get(NEWLY_WRONG)} of {counts.get('examples')} newly wrong "
            f"({check.candidate:.4f}); needs {check.threshold}"
        )
    interval = f" (95% CI {check.interval[0]:+.4f}..{check.interval[1]:+.4f})" if check.interval else ""
    p_value = f", p {check.p_value:.2g}" if check.p_value is not None else ""
    return (
        f"{check.title}: {check.metric} baseline {check.baseline:.4f}, candidate {check.candidate:.4f}, "
        f"delta {check.delta:+.4f}{interval}{p_value}; needs {check.threshold}"
    )
