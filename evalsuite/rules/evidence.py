"""What the gate judges and what a judgement looks like: the evidence and the checks made on it.

`Evidence` is the analysis' checked summary with TFMA's own failed
thresholds; each slice's paired counts, interval and p-value are worked out
from it once, however many rules read them. A `Check` is one judged
statement about one slice, with the evidence it rests on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evalsuite.errors import InputError
from evalsuite.rules import paired_stats
from evalsuite.run.contract import BASELINE, CANDIDATE, LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG


@dataclass
class Check:
    """One judged statement about one slice, with the evidence it rests on."""

    rule: str
    metric: str
    slice: str  # slice id: 'overall' or 'label=3'
    baseline: float | None
    candidate: float | None
    delta: float | None
    threshold: str
    status: str = "pass"  # pass | fail | inconclusive | warn (a regressed discovered slice that does not decide)
    interval: list[float] | None = None
    p_value: float | None = None
    counts: dict | None = None
    conclusive: bool = True
    passed: bool = True
    title: str = ""  # what a person calls the slice: 'overall', 'digit 3', 'Shirt'
    message: str = ""


@dataclass
class Evidence:
    """What the gate judges: the checked summary and TFMA's own failed thresholds."""

    summary: dict
    tfma_failures: set  # {(metric, slice, kind)}
    where: Path
    notes: list[str] = field(default_factory=list)
    # Each slice's counts, interval and p-value, computed once however many rules read them.
    paired_stats: dict = field(default_factory=dict, repr=False)

    def accuracy(self, role: str, sid: str) -> float:
        return self.summary["models"][role][sid]["accuracy"]

    def delta(self, sid: str) -> float:
        return self.summary["deltas"][sid]["accuracy"]

    def examples(self, sid: str) -> int:
        """How many evaluation examples the slice has, as the evaluation data say (not TFMA)."""
        eval_data = self.summary["eval_data"]
        if sid == "overall":
            return int(eval_data["examples"])
        column, _, value = sid.partition("=")
        if column == LABEL_KEY:
            return int(eval_data["examples_per_class"].get(value, 0))
        return int((eval_data.get("slice_features") or {}).get(column, {}).get(value, 0))

    def paired(self, sid: str) -> dict:
        counts = self.summary.get("paired", {}).get(sid)
        if counts is None:
            raise InputError(f"{self.where}: no paired counts for slice {sid}; rerun the analysis")
        return counts

    def tfma_failed(self, metric: str, sid: str, kind: str) -> bool:
        return (metric, sid, kind) in self.tfma_failures


def paired_evidence(evidence: Evidence, sid: str) -> dict:
    """Counts, exact interval and McNemar mid-p of one slice, as the verdict records them."""
    if sid not in evidence.paired_stats:
        evidence.paired_stats[sid] = _paired_evidence(evidence, sid)
    return evidence.paired_stats[sid]


def _paired_evidence(evidence: Evidence, sid: str) -> dict:
    counts = evidence.paired(sid)
    n = sum(counts.values())
    if n != evidence.examples(sid):
        raise InputError(
            f"{evidence.where}: paired counts on {sid} cover {n} examples, the evaluation data {evidence.examples(sid)}"
        )
    right, wrong = counts[NEWLY_RIGHT], counts[NEWLY_WRONG]
    recomputed = paired_stats.delta(right, wrong, n)
    if abs(recomputed - evidence.delta(sid)) > 1e-5:
        raise InputError(
            f"{evidence.where}: TFMA's delta on {sid} ({evidence.delta(sid):+.6f}) disagrees with its paired counts "
            f"({recomputed:+.6f}); refusing to judge"
        )
    low, high = paired_stats.tango_interval(right, wrong, n)
    return {
        "counts": {**counts, "examples": n},
        "interval": [round(low, 6), round(high, 6)],
        "mcnemar_mid_p": paired_stats.mcnemar_mid_p(right, wrong),
    }


def accuracy_check(rule: str, sid: str, evidence: Evidence, threshold: str, **evidence_fields) -> Check:
    """A check on one slice's accuracy, with both models' values and the delta filled in."""
    return Check(
        rule=rule,
        metric="accuracy",
        slice=sid,
        baseline=evidence.accuracy(BASELINE, sid),
        candidate=evidence.accuracy(CANDIDATE, sid),
        delta=evidence.delta(sid),
        threshold=threshold,
        **evidence_fields,
    )
