"""Planted regressions: a known drop put into a real candidate's outcomes, to measure what the gate catches."""

from __future__ import annotations

import numpy as np

DROPS = (0.05, 0.10, 0.20)  # points below the baseline, per planted class


def plant(labels, base_right, cand_right, class_id: int, drop: float, rng) -> np.ndarray | None:
    """The candidate made worse on `class_id` until that class sits `drop` below the baseline.

    It loses as many of the examples of that class it got right as it takes for
    its accuracy there to end `drop` (5, 10, 20 points) under the baseline's:
    a regression of that size against the accepted model, whatever the real
    candidate had gained there.
    """
    mine = labels == class_id
    n = int(np.sum(mine))
    gain = int(np.sum(cand_right[mine])) - int(np.sum(base_right[mine]))
    k = int(round(drop * n)) + gain
    members = np.flatnonzero(mine & cand_right)
    if k <= 0 or k > len(members):
        return None
    planted = cand_right.copy()
    planted[rng.choice(members, size=k, replace=False)] = False
    return planted
