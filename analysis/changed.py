"""The examples whose outcome changed between baseline and candidate (`changed.json`),
and the check that their counts equal TFMA's paired counts.

Every example's predictions come from TFMA's own pass: the outcome stage
(`analysis/outcome_tap.py`) writes them with each example's position, and
`analysis/outcome_table.py` reads them back in the files' order. No model runs
a second time and no example is read again.
"""

from __future__ import annotations

import numpy as np

from evalsuite.errors import InputError
from evalsuite.run.contract import LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG


def changed_examples(columns: dict[str, np.ndarray], pattern: str) -> tuple[dict, dict]:
    """Every example the two models disagree on in outcome, with both predictions and confidences.

    `columns` are the outcome rows in the files' order. Also returns each example's label and
    outcome (right or wrong, per model), which discovery reads.
    """
    labels = columns["label"]
    base_pred, cand_pred = columns["base_class"], columns["cand_class"]
    base_conf, cand_conf = columns["base_confidence"], columns["cand_confidence"]
    base_right, cand_right = base_pred == labels, cand_pred == labels
    examples = []
    right_counts: dict[str, dict[int, int]] = {NEWLY_RIGHT: {}, NEWLY_WRONG: {}}
    for row in np.flatnonzero(base_right != cand_right).tolist():
        change = NEWLY_RIGHT if cand_right[row] else NEWLY_WRONG
        label = int(labels[row])
        right_counts[change][label] = right_counts[change].get(label, 0) + 1
        examples.append(
            {
                "index": row,
                "label": label,
                "change": change,
                "baseline": {"class": int(base_pred[row]), "confidence": round(float(base_conf[row]), 4)},
                "candidate": {"class": int(cand_pred[row]), "confidence": round(float(cand_conf[row]), 4)},
            }
        )
    counts = {
        "overall": {change: sum(by_class.values()) for change, by_class in right_counts.items()},
        **{
            f"{LABEL_KEY}={c}": {change: by_class.get(c, 0) for change, by_class in right_counts.items()}
            for c in np.unique(labels).tolist()
        },
    }
    outcomes = {"labels": labels, "base_right": base_right, "cand_right": cand_right}
    return {"examples": examples, "counts": counts, "pattern": pattern}, outcomes


def check_changed_against_tfma(changed: dict, summary: dict) -> None:
    for sid, counts in changed["counts"].items():
        tfma_counts = summary["paired"].get(sid)
        if tfma_counts is None or any(tfma_counts[k] != counts[k] for k in (NEWLY_RIGHT, NEWLY_WRONG)):
            raise InputError(
                f"the examples listed as changed on {sid} ({counts}) disagree with TFMA's paired counts "
                f"({tfma_counts}); refusing to hand on an analysis that contradicts itself"
            )
