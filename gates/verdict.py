"""Turn TFMA's ValidationResult and the analysis summary into a verdict.

Fail closed: anything missing, NaN or inconsistent is an `InputError`
(exit 2), never a pass. Pass/fail of each rule is TFMA's own validation; the
gate recomputes each decision from the saved numbers and refuses to bless
when the two disagree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from analysis.evaluate import ACCURACY, BASELINE, CANDIDATE, VALIDATION_NAME, load_summary, rules_key
from evalsuite.errors import InputError
from evalsuite.rundir import RunDir
from gates.rules import FLOAT_SLACK, NUM_CLASSES, GateRules, inclusive_drop_bound, strict_change_bound


@dataclass
class Check:
    rule: str
    metric: str
    slice: str
    baseline: float | None
    candidate: float | None
    delta: float | None
    threshold: str
    passed: bool
    interval: list[float] | None = None
    message: str = ""


@dataclass
class Verdict:
    passed: bool
    baseline: dict
    candidate: dict
    rules: dict
    eval_examples: int
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        payload = asdict(self)
        payload["checks"] = [asdict(check) for check in self.checks]
        return payload

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def decide(run: RunDir, rules: GateRules) -> Verdict:
    """Read the run's analysis and judge it against `rules`."""
    record = run.require_stage("analysis", "analysis")
    if record.get("rules") != rules_key(rules):
        raise InputError(
            f"{run.analysis_dir}: analysis was run with other gate rules than {rules.source}; "
            "rerun the analysis (python -m analysis) or the whole pipeline"
        )
    summary = load_summary(run)
    validation = _load_validation(run.analysis_dir / VALIDATION_NAME)
    failures = _tfma_failures(validation)
    _check_complete(summary, rules, validation, run.analysis_dir)

    base, cand = summary["models"][BASELINE], summary["models"][CANDIDATE]
    deltas = summary["deltas"]
    total = int(summary["eval_data"]["examples"])
    checks: list[Check] = []

    if rules.min_improvement is not None:
        bound = strict_change_bound(rules.min_improvement, total)
        checks.append(
            _change_check(
                "overall improvement",
                "overall",
                base,
                cand,
                deltas,
                bound,
                f"delta > {rules.min_improvement:g}",
                failures.get(("overall", "change"), False),
            )
        )
    if rules.min_accuracy is not None:
        value = cand["overall"]["accuracy"]
        checks.append(
            Check(
                rule="overall floor",
                metric="accuracy",
                slice="overall",
                baseline=base["overall"]["accuracy"],
                candidate=value,
                delta=deltas["overall"]["accuracy"],
                threshold=f"candidate >= {rules.min_accuracy:g}",
                passed=not failures.get(("overall", "value"), False),
                interval=cand["overall"].get("accuracy_ci"),
            )
        )
        _agree(checks[-1], value >= rules.min_accuracy - FLOAT_SLACK)
    if rules.max_drop is not None:
        counts = summary["eval_data"]["examples_per_class"]
        for digit in range(NUM_CLASSES):
            sid = f"label={digit}"
            bound = inclusive_drop_bound(rules.max_drop, int(counts.get(str(digit), 0)))
            checks.append(
                _change_check(
                    "per-digit drop",
                    sid,
                    base,
                    cand,
                    deltas,
                    bound,
                    f"delta >= -{rules.max_drop:g}",
                    failures.get((sid, "change"), False),
                )
            )
    if rules.max_gap is not None:
        overall = cand["overall"]["accuracy"]
        for digit in range(NUM_CLASSES):
            sid = f"label={digit}"
            gap = summary["cross_slices"].get(f"overall vs {sid}", {}).get("accuracy_gap")
            if gap is None:
                raise InputError(f"{run.analysis_dir}: no cross-slice gap for slice {sid}")
            check = Check(
                rule="gap to overall",
                metric="accuracy",
                slice=sid,
                baseline=overall,
                candidate=cand[sid]["accuracy"],
                delta=-gap,
                threshold=f"overall - digit <= {rules.max_gap:g}",
                passed=not failures.get((f"overall vs {sid}", "value"), False),
            )
            _agree(check, gap <= rules.max_gap + FLOAT_SLACK)
            checks.append(check)
    if rules.require_significant:
        interval = deltas["overall"].get("accuracy_ci")
        if interval is None:
            raise InputError(
                f"{run.analysis_dir}: significance.require needs confidence intervals; rerun analysis without --no-intervals"
            )
        checks.append(
            Check(
                rule="significant improvement",
                metric="accuracy",
                slice="overall",
                baseline=base["overall"]["accuracy"],
                candidate=cand["overall"]["accuracy"],
                delta=deltas["overall"]["accuracy"],
                threshold="95% interval of delta above 0",
                passed=interval[0] > 0,
                interval=interval,
            )
        )

    for check in checks:
        if not check.passed and not check.message:
            check.message = _failure_message(check)
    spurious_cross = bool(validation.get("missing_cross_slices")) and rules.max_gap is not None
    if not validation.get("validation_ok", False) and not failures and not spurious_cross:
        raise InputError(
            f"{run.analysis_dir}: TFMA validation is not ok for no reason the gate knows; refusing to bless"
        )
    unexplained = set(failures) - _explained(checks)
    if unexplained:
        raise InputError(f"{run.analysis_dir}: TFMA validation failed on {sorted(unexplained)} that no rule explains")
    notes = []
    if spurious_cross:
        # TFMA 0.52 files cross-slice validation details under an empty SlicingSpec, so it
        # always reports them missing; every digit's gap was checked above instead.
        notes.append("TFMA reported cross slices missing (a known TFMA 0.52 defect); each digit's gap was checked")
    return Verdict(
        passed=bool(checks) and all(check.passed for check in checks),
        baseline=summary["baseline"],
        candidate=summary["candidate"],
        rules=rules.as_dict(),
        eval_examples=total,
        checks=checks,
        notes=notes,
    )


def _change_check(rule, sid, base, cand, deltas, bound, threshold, tfma_failed) -> Check:
    delta = deltas[sid]["accuracy"]
    check = Check(
        rule=rule,
        metric="accuracy",
        slice=sid,
        baseline=base[sid]["accuracy"],
        candidate=cand[sid]["accuracy"],
        delta=delta,
        threshold=threshold,
        passed=not tfma_failed,
        interval=deltas[sid].get("accuracy_ci"),
    )
    _agree(check, delta >= bound)
    return check


def _agree(check: Check, recomputed_pass: bool) -> None:
    if recomputed_pass != check.passed:
        raise InputError(
            f"TFMA validation says {'pass' if check.passed else 'fail'} for {check.rule} on {check.slice} "
            f"but its own numbers say otherwise; refusing to bless"
        )


def _failure_message(check: Check) -> str:
    where = "overall" if check.slice == "overall" else f"digit {check.slice.split('=', 1)[1]}"
    interval = ""
    if check.interval:
        interval = f" (95% CI {check.interval[0]:+.4f}..{check.interval[1]:+.4f})"
    return (
        f"{where}: {check.metric} baseline {check.baseline:.4f}, candidate {check.candidate:.4f}, "
        f"delta {check.delta:+.4f}{interval}; needs {check.threshold}"
    )


def _explained(checks: list[Check]) -> set:
    kinds = {
        "overall improvement": "change",
        "per-digit drop": "change",
        "overall floor": "value",
        "gap to overall": "value",
    }
    keys = set()
    for check in checks:
        if check.rule in kinds:
            sid = f"overall vs {check.slice}" if check.rule == "gap to overall" else check.slice
            keys.add((sid, kinds[check.rule]))
    return keys


def _load_validation(path: Path) -> dict:
    """TFMA's ValidationResult, as the analysis stage saved it (plain JSON)."""
    import json

    try:
        validation = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing TFMA validation result (run the analysis stage)") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise InputError(f"{path}: corrupt TFMA validation result ({error})") from None
    if not isinstance(validation, dict) or not isinstance(validation.get("metric_validations_per_slice", []), list):
        raise InputError(f"{path}: corrupt TFMA validation result (not a ValidationResult)")
    return validation


def _tfma_failures(validation: dict) -> dict[tuple[str, str], bool]:
    """(slice id, 'change' | 'value') for each failed threshold of the candidate."""
    failures = {}
    for per_slice in validation.get("metric_validations_per_slice", []):
        if "cross_slice_key" in per_slice:
            cross = per_slice["cross_slice_key"]
            sid = (
                f"{_slice_key_id(cross.get('baseline_slice_key', {}))} vs "
                f"{_slice_key_id(cross.get('comparison_slice_key', {}))}"
            )
        else:
            sid = _slice_key_id(per_slice.get("slice_key", {}))
        for failure in per_slice.get("failures", []):
            metric_key = failure.get("metric_key", {})
            if metric_key.get("name") != ACCURACY:
                raise InputError(f"TFMA validation failed on unexpected metric {metric_key.get('name')!r} ({sid})")
            failures[(sid, "change" if metric_key.get("is_diff") else "value")] = True
    return failures


def _slice_key_id(slice_key: dict) -> str:
    parts = []
    for single in slice_key.get("single_slice_keys", []):
        value = next((v for k, v in single.items() if k.endswith("_value")), "")
        parts.append(f"{single.get('column')}={value}")
    return ",".join(parts) or "overall"


def _check_complete(summary: dict, rules: GateRules, validation, where: Path) -> None:
    """Every slice present for both models, no NaN, same examples on both sides."""
    if validation.get("missing_thresholds"):
        raise InputError(f"{where}: TFMA ran without thresholds; refusing to bless")
    for spec in validation.get("missing_slices", []):
        values = ",".join(f"{k}={v}" for k, v in spec.get("feature_values", {}).items()) or "overall"
        raise InputError(f"{where}: slice {values} is missing from the evaluation (no examples of that class?)")
    expected = ["overall"] + [f"label={d}" for d in range(NUM_CLASSES)]
    for name in (BASELINE, CANDIDATE):
        slices = summary.get("models", {}).get(name)
        if not isinstance(slices, dict):
            raise InputError(f"{where}: analysis summary has no results for the {name}")
        for sid in expected:
            metrics = slices.get(sid)
            if metrics is None:
                raise InputError(f"{where}: slice {sid} is missing for the {name} (no examples of that class?)")
            for key in ("accuracy", "examples"):
                value = metrics.get(key)
                if value is None or not math.isfinite(value):
                    raise InputError(f"{where}: {name} {key} on slice {sid} is {value!r}")
    for sid in expected:
        if summary["models"][BASELINE][sid]["examples"] != summary["models"][CANDIDATE][sid]["examples"]:
            raise InputError(
                f"{where}: baseline and candidate were evaluated on different numbers of examples on slice {sid}"
            )
        delta = summary.get("deltas", {}).get(sid, {}).get("accuracy")
        if delta is None or not math.isfinite(delta):
            raise InputError(f"{where}: accuracy delta on slice {sid} is {delta!r}")
    if summary["models"][CANDIDATE]["overall"]["examples"] != summary["eval_data"]["examples"]:
        raise InputError(f"{where}: TFMA saw a different number of examples than the evaluation data holds")
