"""Statistics of a training recipe judged across seeds on one test set.

Seed s gives a pair (baseline_s, candidate_s); on example i its outcome is
d_si = candidate right - baseline right (+1 newly right, -1 newly wrong, 0).
The recipe's delta is the mean over seeds of the per-seed paired deltas,
D = mean_s mean_i d_si. Its uncertainty has two sources, as Bouthillier et
al. separate them ("Accounting for Variance in Machine Learning Benchmarks",
MLSys 2021): which seeds were drawn, and which examples make the test set.
Seeds and examples are crossed (every seed sees every example), and the
variance of D is estimated as

    se^2 = s_seeds^2 / N + s_examples^2 / n

with s_seeds^2 the variance of the N per-seed deltas and s_examples^2 the
variance over the n examples of m_i = mean_s d_si (the example's
seed-averaged outcome). Each term also holds a share of the seed x example
interaction, so together they count it twice: the variance is, in
expectation, a little larger than the true one. The interval is
Student's t with Welch-Satterthwaite degrees of freedom (F. E. Satterthwaite,
Biometrics Bulletin 2:110-114, 1946): close to N - 1 when the seeds' spread
dominates, close to n - 1 when the test set's does. It assumes the seeds are
a random draw of the recipe's seeds and the examples a random draw of the
data the model will meet; it says nothing about other splits of the data.

The churn floor (Yan et al., "Positive-Congruent Training", CVPR 2021, call
its per-pair form the negative flip rate): over ordered pairs of seeds (a, b)
of the baseline's recipe, the share of examples a gets right and b wrong. It
is what retraining alone breaks: were the candidate's recipe the baseline's,
its newly-wrong rate would be this on average. (Against one blessed model for
every seed, the candidates' seeds against each other stand in.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from evalsuite.rules import paired_stats
from evalsuite.run.contract import NEWLY_RIGHT, NEWLY_WRONG


@dataclass(frozen=True)
class RecipeEstimate:
    per_seed: list[float]  # each seed's paired delta
    delta: float  # their mean
    se: float
    df: float
    examples: int
    # Summed over seeds: what the degenerate case falls back on (see `pooled`).
    newly_right: int = 0
    newly_wrong: int = 0

    @property
    def pooled(self) -> bool:
        """No spread at all (no example moved differently in any seed, or one example): a standard error
        of 0 would claim certainty, so the seeds' pairs are taken as N x n paired examples and judged
        as one pair is."""
        return self.se == 0.0

    def interval(self, confidence: float = 0.95) -> list[float]:
        if self.pooled:
            n = len(self.per_seed) * self.examples
            return list(paired_stats.tango_interval(self.newly_right, self.newly_wrong, n, confidence))
        half = float(_t().ppf(0.5 + confidence / 2.0, self.df)) * self.se
        return [self.delta - half, self.delta + half]

    def worse_p_value(self) -> float:
        """One-sided p that the recipe does not lower accuracy (small: the drop is shown)."""
        if self.pooled:
            return paired_stats.worse_p_value(self.newly_right, self.newly_wrong)
        return float(_t().sf(-self.delta / self.se, self.df))

    def better_p_value(self) -> float:
        """One-sided p that the recipe does not raise accuracy (small: the gain is shown)."""
        if self.pooled:
            return paired_stats.better_p_value(self.newly_right, self.newly_wrong)
        return float(_t().sf(self.delta / self.se, self.df))

    def shows(self, effect: float, level: float) -> bool:
        """Whether a drop (or gain) of `effect` could reach p < level on these data."""
        if self.pooled:
            pairs = len(self.per_seed) * self.examples
            return math.floor(effect * pairs + 1e-9) + 1 >= paired_stats.min_detectable_worse(level)
        return bool(effect / self.se > _t().isf(level, self.df))


def _t():
    from scipy.stats import t  # scipy arrives with TFMA; the gate imports it only for recipes

    return t


def estimate(per_seed_cells: list[dict], outcome_sum: int, outcome_square_sum: int) -> RecipeEstimate:
    """The recipe's delta and its standard error on one slice, from the counts analysis/recipe_counts.py keeps.

    `outcome_sum` and `outcome_square_sum` are the sums over examples of
    D_i = sum_s d_si and of D_i ** 2 (exact integers).
    """
    seeds = len(per_seed_cells)
    if seeds < 2:
        raise ValueError("a recipe needs at least two seeds")
    n = sum(per_seed_cells[0].values())
    if n < 1 or any(sum(cells.values()) != n for cells in per_seed_cells):
        raise ValueError(
            f"every seed must be scored on the same examples, got {[sum(c.values()) for c in per_seed_cells]}"
        )
    deltas = [(cells[NEWLY_RIGHT] - cells[NEWLY_WRONG]) / n for cells in per_seed_cells]
    mean = sum(deltas) / seeds
    if abs(outcome_sum / (seeds * n) - mean) > 1e-12:
        raise ValueError("the outcome sums do not match the per-seed counts")
    moved = {
        "newly_right": sum(cells[NEWLY_RIGHT] for cells in per_seed_cells),
        "newly_wrong": sum(cells[NEWLY_WRONG] for cells in per_seed_cells),
    }
    if n == 1:  # one example has no spread over examples to estimate: judged as N pairs (pooled)
        return RecipeEstimate(deltas, mean, 0.0, math.inf, n, **moved)
    seed_variance = sum((d - mean) ** 2 for d in deltas) / (seeds - 1)
    # Variance over examples of m_i = D_i / N, from the exact sums.
    example_variance = max((outcome_square_sum / seeds**2 - n * mean * mean) / (n - 1), 0.0)
    v_seeds, v_examples = seed_variance / seeds, example_variance / n
    variance = v_seeds + v_examples
    if variance <= 0.0:
        return RecipeEstimate(deltas, mean, 0.0, math.inf, n, **moved)
    df = variance**2 / (v_seeds**2 / (seeds - 1) + v_examples**2 / (n - 1))
    return RecipeEstimate(deltas, mean, math.sqrt(variance), df, n, **moved)


def churn_floor(floor_count: int, seeds: int, examples: int) -> float | None:
    """The share of examples one seed gets right and another wrong, averaged over ordered pairs of seeds."""
    if seeds < 2 or examples < 1:
        return None
    return floor_count / (seeds * (seeds - 1) * examples)
