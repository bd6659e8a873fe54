"""The gate's rules read at the level of the recipe: across every seed's pair of models.

With `--seeds N` (N > 1) the question is whether the recipe (train the
candidate's way) beats the baseline's, not whether one seed's pair does. The
same gate.toml rules apply to the recipe's numbers: each slice's delta is
the mean of the seeds' paired deltas, its interval and p-values come from
`evalsuite/rules/recipe_stats.py` (seeds and examples both counted), and Holm's
procedure runs across the classes (and across one feature's values) as it
does for one seed. Point values (the floor, the gap, churn) are the means
over seeds. One more rule reads only here, `churn.max_excess_newly_wrong`:
the candidate's newly-wrong rate may exceed the churn floor (what retraining
alone breaks) by at most this much.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from evalsuite.data.class_names import title
from evalsuite.errors import InputError
from evalsuite.rules import paired_stats, recipe_stats
from evalsuite.rules.definitions import NEWLY_WRONG_RATE, failure_message
from evalsuite.rules.evidence import Check
from evalsuite.rules.settings import GateRules
from evalsuite.run.contract import BOTH_RIGHT, NEWLY_RIGHT, NEWLY_WRONG, class_slices, num_classes_of


@dataclass
class RecipeCheck(Check):
    per_seed: list[float] = field(default_factory=list)  # the slice's value for each seed, in seed order


@dataclass
class RecipeEvidence:
    """The analysis' recipe counts, checked, with each slice's estimate worked out once."""

    summary: dict
    where: str
    estimates: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        recipe = self.summary.get("recipe")
        if not isinstance(recipe, dict) or not isinstance(recipe.get("slices"), dict):
            raise InputError(f"{self.where}: no recipe counts in the summary; rerun the analysis")
        self.recipe = recipe
        self.seeds = len(recipe.get("seeds") or [])
        if self.seeds < 2:
            raise InputError(f"{self.where}: a recipe needs at least two seeds, the summary has {self.seeds}")

    def counts(self, sid: str) -> dict:
        counts = self.recipe["slices"].get(sid)
        if counts is None or len(counts.get("per_seed") or []) != self.seeds:
            raise InputError(f"{self.where}: no recipe counts for every seed on slice {sid}; rerun the analysis")
        first = counts["per_seed"][0]
        if first != {cell: self.summary["paired"][sid][cell] for cell in first}:
            raise InputError(f"{self.where}: the first seed's recipe counts on {sid} are not its paired counts")
        return counts

    def estimate(self, sid: str) -> recipe_stats.RecipeEstimate:
        if sid not in self.estimates:
            counts = self.counts(sid)
            try:
                self.estimates[sid] = recipe_stats.estimate(
                    counts["per_seed"], counts["outcome_sum"], counts["outcome_square_sum"]
                )
            except ValueError as error:
                raise InputError(f"{self.where}: recipe counts on {sid}: {error}") from None
        return self.estimates[sid]

    def accuracies(self, sid: str, role: str) -> list[float]:
        """Each seed's accuracy of the baselines or the candidates on one slice."""
        moved = NEWLY_RIGHT if role == "candidate" else NEWLY_WRONG
        return [(c[BOTH_RIGHT] + c[moved]) / sum(c.values()) for c in self.counts(sid)["per_seed"]]

    def newly_wrong_rates(self, sid: str) -> list[float]:
        return [c[NEWLY_WRONG] / sum(c.values()) for c in self.counts(sid)["per_seed"]]

    def churn_floor(self, sid: str) -> float:
        """Retraining the baseline's recipe with another seed: what it breaks of what one seed got right.

        That is the candidates' newly-wrong rate to expect if the candidate's recipe were the
        baseline's. With one baseline for every seed (the blessed model) there is no such spread,
        and the candidates' seeds against each other stand in.
        """
        counts = self.counts(sid)
        which = "floor_candidates" if self.recipe.get("shared_baseline") else "floor_baselines"
        return recipe_stats.churn_floor(counts[which], self.seeds, sum(counts["per_seed"][0].values()))

    def classes(self) -> list[str]:
        return class_slices(num_classes_of(self.summary["eval_data"]))

    def per_slice(self, value) -> dict:
        """`value(sid)` overall and for every class."""
        return {sid: value(sid) for sid in ["overall", *self.classes()]}


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _accuracy_check(rule: str, sid: str, evidence: RecipeEvidence, threshold: str, **fields) -> RecipeCheck:
    estimate = evidence.estimate(sid)
    return RecipeCheck(
        rule=rule,
        metric="accuracy",
        slice=sid,
        baseline=_mean(evidence.accuracies(sid, "baseline")),
        candidate=_mean(evidence.accuracies(sid, "candidate")),
        delta=estimate.delta,
        threshold=threshold,
        interval=estimate.interval(),
        per_seed=estimate.per_seed,
        **fields,
    )


def _improvement(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    estimate = evidence.estimate("overall")
    check = _accuracy_check(
        "overall improvement",
        "overall",
        evidence,
        f"mean delta over seeds > {rules.min_improvement:g}",
        p_value=estimate.better_p_value(),
    )
    check.status = "pass" if estimate.delta > rules.min_improvement + 1e-12 else "fail"
    return [check]


def _significance(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    p = evidence.estimate("overall").better_p_value()
    check = _accuracy_check(
        "significant improvement", "overall", evidence, f"one-sided t-test p < {rules.alpha:g}", p_value=p
    )
    check.status = "pass" if p < rules.alpha else "fail"
    return [check]


def _floor(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    values = evidence.accuracies("overall", "candidate")
    check = RecipeCheck(
        rule="overall floor",
        metric="accuracy",
        slice="overall",
        baseline=None,
        candidate=_mean(values),
        delta=None,
        threshold=f"mean candidate >= {rules.min_accuracy:g}",
        per_seed=values,
    )
    check.status = "pass" if _mean(values) >= rules.min_accuracy - 1e-12 else "fail"
    if check.status == "fail":
        check.message = (
            f"{{title}}: candidate accuracy {check.candidate:.4f} (mean over seeds); needs {check.threshold}"
        )
    return [check]


def _drops(rules: GateRules, evidence: RecipeEvidence, slices: list[str], rule: str) -> list[RecipeCheck]:
    """A slice fails when the recipe's mean drop exceeds the tolerance and the seeds and examples show it (Holm)."""
    estimates = {sid: evidence.estimate(sid) for sid in slices}
    p_worse = {sid: estimates[sid].worse_p_value() for sid in slices}
    shown = paired_stats.holm(p_worse, rules.alpha)
    checks = []
    for sid in slices:
        estimate = estimates[sid]
        check = _accuracy_check(
            rule,
            sid,
            evidence,
            f"mean drop <= {rules.max_drop:g}, or not significant (Holm, alpha {rules.alpha:g})",
            p_value=p_worse[sid],
        )
        beyond = estimate.delta < -rules.max_drop - 1e-12
        # Conclusive when a drop just past the tolerance could reach Holm's first step, or when the
        # one-sided (1 - alpha) bound rules such a drop out.
        lower = estimate.interval(confidence=1 - 2 * rules.alpha)[0]
        check.conclusive = estimate.shows(rules.max_drop, rules.alpha / len(slices)) or lower >= -rules.max_drop
        if beyond and shown[sid]:
            check.status, check.conclusive = "fail", True
        elif not check.conclusive:
            check.status = "inconclusive"
            check.message = (
                f"{evidence.seeds} seeds x {estimate.examples} examples cannot tell a drop of {rules.max_drop:g} "
                "from seed and test-set noise"
            )
        checks.append(check)
    return checks


def _class_drops(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    return _drops(rules, evidence, evidence.classes(), "per-class drop")


def _feature_drops(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    features = evidence.summary.get("feature_slices") or {}
    return [check for sids in features.values() for check in _drops(rules, evidence, list(sids), "per-feature drop")]


def _gap(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    overall = evidence.accuracies("overall", "candidate")
    checks = []
    for sid in evidence.classes():
        gaps = [whole - part for whole, part in zip(overall, evidence.accuracies(sid, "candidate"))]
        check = RecipeCheck(
            rule="gap to overall",
            metric="accuracy",
            slice=sid,
            baseline=_mean(overall),
            candidate=_mean(evidence.accuracies(sid, "candidate")),
            delta=-_mean(gaps),
            threshold=f"mean of overall - class <= {rules.max_gap:g}",
            per_seed=[-gap for gap in gaps],
        )
        check.status = "pass" if _mean(gaps) <= rules.max_gap + 1e-12 else "fail"
        checks.append(check)
    return checks


def _churn(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    checks = []
    for sid in ["overall", *evidence.classes()]:
        rates = evidence.newly_wrong_rates(sid)
        check = RecipeCheck(
            rule="churn",
            metric=NEWLY_WRONG_RATE,
            slice=sid,
            baseline=None,
            candidate=_mean(rates),
            delta=None,
            threshold=f"mean newly wrong rate <= {rules.max_newly_wrong_rate:g}",
            per_seed=rates,
        )
        check.status = "pass" if _mean(rates) <= rules.max_newly_wrong_rate + 1e-12 else "fail"
        if check.status == "fail":
            check.message = f"{{title}}: newly wrong {check.candidate:.4f} (mean over seeds); needs {check.threshold}"
        checks.append(check)
    return checks


def _excess_churn(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    checks = []
    for sid in ["overall", *evidence.classes()]:
        rates, floor = evidence.newly_wrong_rates(sid), evidence.churn_floor(sid)
        check = RecipeCheck(
            rule="churn beyond the floor",
            metric="newly_wrong_rate_minus_floor",
            slice=sid,
            baseline=floor,
            candidate=_mean(rates),
            delta=_mean(rates) - floor,
            threshold=f"mean newly wrong rate - churn floor <= {rules.max_excess_newly_wrong:g}",
            per_seed=[rate - floor for rate in rates],
        )
        check.status = "pass" if check.delta <= rules.max_excess_newly_wrong + 1e-12 else "fail"
        if check.status == "fail":
            check.message = (
                f"{{title}}: newly wrong {check.candidate:.4f} (mean over seeds), churn floor {floor:.4f}, "
                f"excess {check.delta:+.4f}; needs {check.threshold}"
            )
        checks.append(check)
    return checks


@dataclass(frozen=True)
class RecipeRule:
    name: str
    enabled: Callable[[GateRules], bool]
    check: Callable[[GateRules, RecipeEvidence], list[RecipeCheck]]


RECIPE_RULES: tuple[RecipeRule, ...] = (
    RecipeRule("overall improvement", lambda r: r.min_improvement is not None, _improvement),
    RecipeRule("overall floor", lambda r: r.min_accuracy is not None, _floor),
    RecipeRule("per-class drop", lambda r: r.max_drop is not None, _class_drops),
    RecipeRule("per-feature drop", lambda r: r.max_drop is not None, _feature_drops),
    RecipeRule("gap to overall", lambda r: r.max_gap is not None, _gap),
    RecipeRule("significant improvement", lambda r: r.require_significant, _significance),
    RecipeRule("churn", lambda r: r.max_newly_wrong_rate is not None, _churn),
    RecipeRule("churn beyond the floor", lambda r: r.max_excess_newly_wrong is not None, _excess_churn),
)


def judge_recipe(rules: GateRules, summary: dict, where: str) -> tuple[list[RecipeCheck], dict]:
    """The recipe's checks, and the churn floor overall and per class (RecipeEvidence.churn_floor)."""
    evidence = RecipeEvidence(summary, where)
    return judge_evidence(rules, evidence), evidence.per_slice(evidence.churn_floor)


def judge_evidence(rules: GateRules, evidence: RecipeEvidence) -> list[RecipeCheck]:
    """Every enabled rule's checks on the recipe, titled, passed or not by significance.inconclusive."""
    checks = [check for rule in RECIPE_RULES if rule.enabled(rules) for check in rule.check(rules, evidence)]
    names = evidence.summary["eval_data"].get("class_names")
    for check in checks:
        check.title = title(check.slice, names)
        check.passed = check.status == "pass" or (check.status == "inconclusive" and rules.inconclusive == "pass")
        if check.status == "fail":
            check.message = check.message.replace("{title}", check.title) if check.message else failure_message(check)
    return checks
