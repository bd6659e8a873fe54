"""Turn TFMA's ValidationResult and the analysis summary into a verdict.

Fail closed: anything missing, NaN or inconsistent is an `InputError`
(exit 2), never a pass. The point decision of each threshold is TFMA's own
validation; the gate recomputes it from the saved numbers and refuses to judge
when the two disagree, and adds the paired statistics TFMA counted.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalsuite.errors import InputError
from evalsuite.rules.definitions import NEWLY_WRONG_RATE, judge, tfma_thresholds
from evalsuite.rules.discovered import RULE as DISCOVERED_RULE
from evalsuite.rules.discovered import discovered_checks, discovered_warnings
from evalsuite.rules.evidence import Check, Evidence
from evalsuite.rules.recipe import RecipeEvidence, judge_evidence
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import (
    ACCURACY,
    BASELINE,
    CANDIDATE,
    NEWLY_RIGHT,
    NEWLY_WRONG,
    class_of,
    class_slice,
    load_changed,
    load_discovered,
    load_summary,
    load_validation,
    num_classes_of,
    slice_ids,
)
from evalsuite.run.folder import RunDir

GATED_METRICS = (ACCURACY, NEWLY_WRONG_RATE)


@dataclass
class Verdict:
    state: str  # passed | failed
    baseline: dict
    candidate: dict
    rules: dict
    eval_examples: int
    judged: dict
    class_names: list[str] | None = None
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # With several seeds: the recipe's verdict (evalsuite/rules/recipe.py), which the state follows.
    recipe: dict | None = None
    recipe_checks: list[Check] = field(default_factory=list)
    # Every setting of the rules, off or on, and where it came from: a rule is never off unseen.
    rules_in_force: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.state == "passed"

    def as_dict(self) -> dict:
        payload = asdict(self)
        payload["passed"] = self.passed
        payload["checks"] = [asdict(check) for check in self.checks]
        del payload["recipe_checks"]
        if self.recipe is None:
            del payload["recipe"]  # one seed: the verdict as it always was
        else:
            payload["recipe"] = {**self.recipe, "checks": [asdict(check) for check in self.recipe_checks]}
        return payload

    @property
    def deciding_checks(self) -> list[Check]:
        """The checks the state follows: the recipe's with several seeds (and the discovered slices of the
        first seed's pair), else the one pair's."""
        if self.recipe is None:
            return self.checks
        return self.recipe_checks + [check for check in self.checks if check.rule == DISCOVERED_RULE]

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.deciding_checks if not check.passed]

    @property
    def inconclusive(self) -> list[Check]:
        return [check for check in self.deciding_checks if check.status == "inconclusive"]


def decide(run: RunDir, rules: GateRules, judged: dict) -> Verdict:
    """Judge the run's analysis against `rules`.

    `judged` is what custody re-checked (gates.custody.judged_state): the
    models, data and outputs on disk, and that the analysis ran with these rules.
    """
    summary = load_summary(run.analysis_dir)
    validation = load_validation(run.analysis_dir)
    failures = _tfma_failures(validation)
    _check_complete(summary, validation, run.analysis_dir)
    _check_against_paired_counts(summary, load_changed(run.analysis_dir), run.analysis_dir)
    evidence = Evidence(summary, set(failures), run.analysis_dir)
    checks = judge(rules, evidence)
    discovered = load_discovered(run.analysis_dir)
    found = discovered_checks(rules, discovered)
    checks += found

    spurious_cross = bool(validation.get("missing_cross_slices")) and rules.max_gap is not None
    if not validation.get("validation_ok", False) and not failures and not spurious_cross:
        raise InputError(
            f"{run.analysis_dir}: TFMA validation is not ok for no reason the gate knows; refusing to judge"
        )
    unexplained = set(failures) - _threshold_keys(rules, summary)
    if unexplained:
        raise InputError(f"{run.analysis_dir}: TFMA validation failed on {sorted(unexplained)} that no rule explains")
    notes = [note for note in summary.get("info", []) if isinstance(note, str)] + list(rules.notes)
    if spurious_cross:
        # TFMA 0.52 files cross-slice validation details under an empty SlicingSpec, so it
        # always reports them missing; every class's gap was checked above instead.
        notes.append("TFMA reported cross slices missing (a known TFMA 0.52 defect); each class's gap was checked")
    warnings = [note for note in summary.get("notes", []) if isinstance(note, str)]
    recipe, recipe_checks = None, []
    if summary.get("recipe") is not None:
        evidence = RecipeEvidence(summary, str(run.analysis_dir))
        recipe_checks = judge_evidence(rules, evidence)
        recipe = _recipe_record(evidence)
        warnings += _inconclusive_warnings(rules, recipe_checks, "the recipe's ")
        notes.append(
            f"the verdict follows the recipe's checks across {len(recipe['seeds'])} seeds; "
            "the first seed's checks are shown for the record"
        )
    else:
        if rules.max_excess_newly_wrong is not None:
            warnings.append(
                "churn.max_excess_newly_wrong is not checked: with one seed there is no churn floor "
                "(train with --seeds 2 or more)"
            )
    warnings += _inconclusive_warnings(rules, checks, f"seed {recipe['seeds'][0]}'s " if recipe else "")
    warnings += discovered_warnings(rules, found, discovered)
    deciding = recipe_checks + found if recipe is not None else checks
    if not deciding and not rules.discovery_fail:
        raise InputError(
            f"{rules.source}: no rule judges a single seed (churn.max_excess_newly_wrong reads only across "
            "seeds); train with --seeds 2 or more, or turn on another rule"
        )
    return Verdict(
        state="passed" if (deciding or rules.discovery_fail) and all(check.passed for check in deciding) else "failed",
        baseline=summary["baseline"],
        candidate=summary["candidate"],
        rules=rules.as_dict(),
        rules_in_force=rules.in_force(),
        eval_examples=int(summary["eval_data"]["examples"]),
        judged=judged,
        class_names=summary["eval_data"].get("class_names"),
        checks=checks,
        notes=notes,
        warnings=warnings,
        recipe=recipe,
        recipe_checks=recipe_checks,
    )


def _inconclusive_warnings(rules: GateRules, checks: list[Check], whose: str) -> list[str]:
    """One warning per rule with inconclusive checks (the classes' and a feature's values say so apart)."""
    warnings = []
    for rule in dict.fromkeys(check.rule for check in checks if check.status == "inconclusive"):
        inconclusive = [check for check in checks if check.status == "inconclusive" and check.rule == rule]
        decides = (
            "shown for the record; the recipe's checks decide"
            if whose.startswith("seed")
            else f"they {'pass' if rules.inconclusive == 'pass' else 'fail'} by significance.inconclusive"
        )
        count = len(inconclusive)
        warnings.append(
            f"{count} of {whose or 'the '}{rule} checks {'is' if count == 1 else 'are'} inconclusive "
            f"({inconclusive[0].message}); {decides}"
        )
    return warnings


def _recipe_record(evidence: RecipeEvidence) -> dict:
    """What verdict.json says of the recipe besides its checks: the seeds, their models, the churn floor."""
    recipe = evidence.recipe

    def by_slice(value) -> dict:
        values = evidence.per_slice(value)
        return {"overall": values["overall"], "per_class": {sid: v for sid, v in values.items() if sid != "overall"}}

    def mean_newly_wrong(sid: str) -> float:
        rates = evidence.newly_wrong_rates(sid)
        return sum(rates) / len(rates)

    return {
        "seeds": recipe["seeds"],
        "baselines": recipe["baselines"],
        "candidates": recipe["candidates"],
        "shared_baseline": recipe["shared_baseline"],
        "churn_floor": by_slice(evidence.churn_floor),
        "newly_wrong_rate": by_slice(mean_newly_wrong),
    }


def _threshold_keys(rules: GateRules, summary: dict) -> set:
    """(metric, slice, kind) of every threshold the rules asked TFMA for."""
    keys = set()
    eval_data = summary["eval_data"]
    per_feature = eval_data.get("slice_features") or {}
    for threshold in tfma_thresholds(rules, eval_data["examples"], eval_data["examples_per_class"], per_feature):
        if threshold.slice == "overall vs label":
            keys |= {
                (threshold.metric, f"overall vs {class_slice(c)}", threshold.kind)
                for c in range(num_classes_of(eval_data))
            }
        else:
            keys.add((threshold.metric, threshold.slice, threshold.kind))
    return keys


def _tfma_failures(validation: dict) -> dict[tuple[str, str, str], bool]:
    """(metric, slice id, 'change' | 'value') for each failed threshold of the candidate."""
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
            metric_key = failure.get("metric_key", {}) if isinstance(failure, dict) else {}
            name = metric_key.get("name")
            if name not in GATED_METRICS:
                raise InputError(f"TFMA validation failed on unexpected metric {name!r} ({sid})")
            failures[(name, sid, "change" if metric_key.get("is_diff") else "value")] = True
    return failures


def _slice_key_id(slice_key: dict) -> str:
    parts = []
    for single in slice_key.get("single_slice_keys", []) if isinstance(slice_key, dict) else []:
        value = next((v for k, v in single.items() if k.endswith("_value")), "")
        if "bytes_value" in single:  # protobuf JSON writes bytes as base64
            value = _decoded(single["bytes_value"])
        parts.append(f"{single.get('column')}={value}")
    return ",".join(parts) or "overall"


def _decoded(text) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(str(text), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return str(text)


def _judged_slices(summary: dict) -> list[str]:
    """Overall, every class, and every value of each slice feature."""
    features = summary.get("feature_slices") or {}
    return slice_ids(num_classes_of(summary["eval_data"])) + [sid for sids in features.values() for sid in sids]


def _examples_in(eval_data: dict, sid: str):
    """How many examples the evaluation data hold on a slice (None when they do not say)."""
    if sid == "overall":
        return eval_data["examples"]
    column, _, value = sid.partition("=")
    if class_of(sid) is not None:
        return eval_data["examples_per_class"].get(str(class_of(sid)))
    return (eval_data.get("slice_features") or {}).get(column, {}).get(value)


def _check_complete(summary: dict, validation: dict, where: Path) -> None:
    """Every slice present for both models, no NaN, same examples on both sides."""
    if validation.get("missing_thresholds"):
        raise InputError(f"{where}: TFMA ran without thresholds; refusing to judge")
    for spec in validation.get("missing_slices", []):
        values = ",".join(f"{k}={v}" for k, v in spec.get("feature_values", {}).items()) or "overall"
        raise InputError(f"{where}: slice {values} is missing from the evaluation (no examples of that class?)")
    for role in (BASELINE, CANDIDATE):
        slices = summary["models"][role]
        for sid in _judged_slices(summary):
            metrics = slices.get(sid)
            if metrics is None:
                raise InputError(f"{where}: slice {sid} is missing for the {role} (no examples of that class?)")
            for key in ("accuracy", "examples"):
                if metrics.get(key) is None:
                    raise InputError(f"{where}: {role} {key} on slice {sid} is missing")
    eval_data = summary["eval_data"]
    for sid in _judged_slices(summary):
        examples = summary["models"][CANDIDATE][sid]["examples"]
        if summary["models"][BASELINE][sid]["examples"] != examples:
            raise InputError(
                f"{where}: baseline and candidate were evaluated on different numbers of examples on slice {sid}"
            )
        expected = _examples_in(eval_data, sid)
        if examples != expected:
            raise InputError(f"{where}: TFMA saw {examples} examples on {sid}, the evaluation data holds {expected}")
        delta = summary["deltas"].get(sid, {}).get("accuracy")
        if delta is None:
            raise InputError(f"{where}: accuracy delta on slice {sid} is missing")
        recomputed = summary["models"][CANDIDATE][sid]["accuracy"] - summary["models"][BASELINE][sid]["accuracy"]
        if abs(recomputed - delta) > 1e-5:
            raise InputError(
                f"{where}: delta on {sid} ({delta:+.6f}) is not candidate minus baseline ({recomputed:+.6f})"
            )


def _check_against_paired_counts(summary: dict, changed: dict, where: Path) -> None:
    """Each model's accuracy must follow from TFMA's paired counts, and those from the changed list.

    Accuracy = (both right + newly right) / n for the candidate and (both right +
    newly wrong) / n for the baseline: numbers edited into the summary do not
    survive this, and the changed list was computed outside TFMA.
    """
    for sid in _judged_slices(summary):
        counts = summary.get("paired", {}).get(sid)
        if counts is None:
            raise InputError(f"{where}: no paired counts for slice {sid}; rerun the analysis")
        n = sum(counts.values())
        if n != summary["models"][CANDIDATE][sid]["examples"]:
            raise InputError(f"{where}: paired counts on {sid} cover {n} examples, TFMA counted another number")
        expected = {
            CANDIDATE: (counts["both_right"] + counts[NEWLY_RIGHT]) / n,
            BASELINE: (counts["both_right"] + counts[NEWLY_WRONG]) / n,
        }
        for role, value in expected.items():
            if abs(summary["models"][role][sid]["accuracy"] - value) > 1e-6:
                raise InputError(
                    f"{where}: {role} accuracy on {sid} ({summary['models'][role][sid]['accuracy']:.6f}) "
                    f"does not follow from TFMA's paired counts ({value:.6f}); refusing to judge"
                )
        if sid != "overall" and class_of(sid) is None:
            continue  # the changed list is counted overall and per class
        listed = changed["counts"].get(sid)
        if listed is None or any(listed[cell] != counts[cell] for cell in (NEWLY_RIGHT, NEWLY_WRONG)):
            raise InputError(
                f"{where}: the changed examples on {sid} ({listed}) disagree with TFMA's paired counts; refusing to judge"
            )
