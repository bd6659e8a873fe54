"""The examples whose outcome changed between baseline and candidate (`changed.json`),
and the check that their counts equal TFMA's paired counts."""

from __future__ import annotations

from evalsuite.contract import BASELINE, CANDIDATE, LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG, OUTPUT_KEY
from evalsuite.errors import InputError


def changed_examples(signatures: dict, pattern: str) -> dict:
    """Every example the two models disagree on in outcome, with both predictions and confidences.

    Computed outside TFMA (plain batched calls of each serving signature) so the
    report can show the images; its counts are checked against TFMA's.
    """
    import numpy as np
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(pattern))
    batches = list(tf.data.TFRecordDataset(files).batch(1024).as_numpy_iterator())
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    labels = np.concatenate([tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy() for batch in batches])
    predictions = {
        role: np.concatenate([serve(tf.constant(batch))[OUTPUT_KEY].numpy() for batch in batches])
        for role, (_, serve) in signatures.items()
    }
    base_pred = predictions[BASELINE].argmax(axis=1)
    cand_pred = predictions[CANDIDATE].argmax(axis=1)
    base_right, cand_right = base_pred == labels, cand_pred == labels
    examples = []
    for index in np.flatnonzero(base_right != cand_right):
        examples.append(
            {
                "index": int(index),
                "label": int(labels[index]),
                "change": NEWLY_RIGHT if cand_right[index] else NEWLY_WRONG,
                "baseline": {
                    "class": int(base_pred[index]),
                    "confidence": round(float(predictions[BASELINE][index].max()), 4),
                },
                "candidate": {
                    "class": int(cand_pred[index]),
                    "confidence": round(float(predictions[CANDIDATE][index].max()), 4),
                },
            }
        )
    counts: dict[str, dict[str, int]] = {}
    for sid, mask in [("overall", np.ones_like(labels, dtype=bool))] + [
        (f"{LABEL_KEY}={c}", labels == c) for c in sorted(set(int(x) for x in labels))
    ]:
        counts[sid] = {
            NEWLY_RIGHT: int(np.sum(mask & cand_right & ~base_right)),
            NEWLY_WRONG: int(np.sum(mask & base_right & ~cand_right)),
        }
    return {"examples": examples, "counts": counts, "pattern": pattern}


def check_changed_against_tfma(changed: dict, summary: dict) -> None:
    for sid, counts in changed["counts"].items():
        tfma_counts = summary["paired"].get(sid)
        if tfma_counts is None or any(tfma_counts[k] != counts[k] for k in (NEWLY_RIGHT, NEWLY_WRONG)):
            raise InputError(
                f"the examples listed as changed on {sid} ({counts}) disagree with TFMA's paired counts "
                f"({tfma_counts}); refusing to hand on an analysis that contradicts itself"
            )
