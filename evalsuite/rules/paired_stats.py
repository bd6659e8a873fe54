"""Exact statistics for two classifiers scored on the same examples.

Both models see the same images, so the comparison is paired: all the
information about the difference sits in the examples where they disagree,
`newly_right` (baseline wrong, candidate right) and `newly_wrong` (baseline
right, candidate wrong). Accuracy delta = (newly_right - newly_wrong) / n.

- Interval of the delta: Tango's asymptotic score interval for the difference
  of paired proportions (T. Tango, Statistics in Medicine 17:891-908, 1998;
  recommended by Fagerland, Lydersen & Laake, Statistics in Medicine
  33:2850-2875, 2014). It is never zero-width when the models agree
  everywhere: n agreements out of n do not prove equality on the next n.
- p-values: McNemar's exact conditional test with the mid-p correction
  (Fagerland, Lydersen & Laake, BMC Medical Research Methodology 13:91, 2013):
  given d disagreements, newly_wrong ~ Binomial(d, 1/2) when neither model is
  better. A tie (newly right = newly wrong = k) has mid-p 1 - P(X = k) / 2, as
  in the authors' own code (R package contingencytables).
- Many classes at once: Holm's step-down procedure keeps the family-wise
  error at alpha (S. Holm, Scand. J. Statist. 6:65-70, 1979).

Pure Python, no heavy imports: the gate uses it without TensorFlow.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def delta(newly_right: int, newly_wrong: int, n: int) -> float:
    return (newly_right - newly_wrong) / n if n else 0.0


def _tango_z(newly_right: int, newly_wrong: int, n: int, d0: float) -> float:
    """Tango's score statistic for H0: delta = d0 (delta = candidate - baseline accuracy)."""
    # Tango's notation: n12 moves a pair towards the first proportion (the candidate), n21 away.
    n12, n21 = newly_right, newly_wrong
    a = 2.0 * n
    b = -n12 - n21 + (2.0 * n - n12 + n21) * d0
    c = -n21 * d0 * (1.0 - d0)
    # Restricted maximum-likelihood estimate of the newly-wrong cell's probability under H0.
    p21 = (math.sqrt(max(b * b - 4.0 * a * c, 0.0)) - b) / (2.0 * a)
    variance = n * (2.0 * p21 + d0 * (1.0 - d0))
    numerator = n12 - n21 - n * d0
    if variance <= 0.0:
        return math.copysign(math.inf, numerator) if numerator else 0.0
    return numerator / math.sqrt(variance)


def tango_interval(newly_right: int, newly_wrong: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Tango's score interval for the accuracy delta, by bisection on the monotone score."""
    if n <= 0:
        raise ValueError("an interval needs at least one example")
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    estimate = delta(newly_right, newly_wrong, n)

    def solve(target: float, low: float, high: float) -> float:
        # _tango_z decreases in d0; find where it crosses `target` within [low, high].
        for _ in range(200):
            middle = (low + high) / 2.0
            if _tango_z(newly_right, newly_wrong, n, middle) > target:
                low = middle
            else:
                high = middle
        return (low + high) / 2.0

    edge = 1.0 - 1e-12
    lower = -1.0 if _tango_z(newly_right, newly_wrong, n, -edge) <= z else solve(z, -edge, estimate)
    upper = 1.0 if _tango_z(newly_right, newly_wrong, n, edge) >= -z else solve(-z, estimate, edge)
    return lower, upper


def _log_binomial_pmf_half(k: int, d: int) -> float:
    return math.lgamma(d + 1) - math.lgamma(k + 1) - math.lgamma(d - k + 1) - d * math.log(2.0)


def _upper_tail_mid(k: int, d: int) -> float:
    """P(X > k) + P(X = k) / 2 for X ~ Binomial(d, 1/2)."""
    if d == 0:
        return 0.5
    terms = [_log_binomial_pmf_half(x, d) for x in range(k, d + 1)]
    if not terms:
        return 0.0
    top = max(terms)
    total = sum(math.exp(t - top) for t in terms[1:]) + 0.5 * math.exp(terms[0] - top)
    return min(1.0, math.exp(top) * total)


def worse_p_value(newly_right: int, newly_wrong: int) -> float:
    """One-sided McNemar mid-p that the candidate is worse than the baseline."""
    return _upper_tail_mid(newly_wrong, newly_right + newly_wrong)


def better_p_value(newly_right: int, newly_wrong: int) -> float:
    """One-sided McNemar mid-p that the candidate is better than the baseline."""
    return _upper_tail_mid(newly_right, newly_right + newly_wrong)


def mcnemar_mid_p(newly_right: int, newly_wrong: int) -> float:
    """Two-sided McNemar mid-p (Fagerland et al.): 2 x the smaller one-sided mid-p; a tie gives 1 - P(X = k)/2."""
    if newly_right == newly_wrong:
        return 1.0 - 0.5 * math.exp(_log_binomial_pmf_half(newly_wrong, newly_right + newly_wrong))
    return min(1.0, 2.0 * min(worse_p_value(newly_right, newly_wrong), better_p_value(newly_right, newly_wrong)))


def holm(p_values: dict[str, float], alpha: float) -> dict[str, bool]:
    """Which hypotheses Holm's step-down procedure rejects at family-wise level alpha."""
    ordered = sorted(p_values.items(), key=lambda item: (item[1], item[0]))
    rejected = {key: False for key in p_values}
    for rank, (key, p) in enumerate(ordered):
        if p >= alpha / (len(ordered) - rank):
            break
        rejected[key] = True
    return rejected


def min_detectable_worse(level: float) -> int:
    """Fewest newly-wrong examples (with none newly right) that reach one-sided mid-p < level.

    The most a slice can show: if its drop beyond the tolerance needs more
    examples than this, no outcome of that size could have been detected.
    """
    k = 1
    while worse_p_value(0, k) >= level:
        k += 1
    return k
