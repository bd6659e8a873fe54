"""The examples whose outcome changed between baseline and candidate (`changed.json`),
and the check that their counts equal TFMA's paired counts."""

from __future__ import annotations

from evalsuite.errors import InputError
from evalsuite.run.contract import BASELINE, CANDIDATE, LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG, OUTPUT_KEY
from evalsuite.run.literal_paths import matching_files

BATCH = 1024  # examples per call of each model


def changed_examples(signatures: dict, pattern: str, observe=None) -> tuple[dict, dict]:
    """Every example the two models disagree on in outcome, with both predictions and confidences.

    Computed outside TFMA (plain batched calls of each serving signature) so the
    report can show the images; its counts are checked against TFMA's. The
    examples stream through in batches: only the changed ones are kept, and each
    example's outcome (right or wrong, per model) as one bit. `observe(records,
    baseline_outputs)` sees every batch (discovery reads the images there).
    """
    import numpy as np
    import tensorflow as tf

    files = matching_files(pattern)
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    examples = []
    right_counts: dict[str, dict[int, int]] = {NEWLY_RIGHT: {}, NEWLY_WRONG: {}}
    classes: set[int] = set()
    offset = 0
    outcomes: dict[str, list] = {"labels": [], "base_right": [], "cand_right": []}
    for batch in tf.data.TFRecordDataset(files).batch(BATCH).as_numpy_iterator():
        labels = tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy()
        records = tf.constant(batch)
        predictions = {role: serve(records)[OUTPUT_KEY].numpy() for role, (_, serve) in signatures.items()}
        base_pred = predictions[BASELINE].argmax(axis=1)
        cand_pred = predictions[CANDIDATE].argmax(axis=1)
        base_right, cand_right = base_pred == labels, cand_pred == labels
        classes.update(np.unique(labels).tolist())
        for key, values in (("labels", labels), ("base_right", base_right), ("cand_right", cand_right)):
            outcomes[key].append(values)
        if observe is not None:
            observe(batch, predictions[BASELINE])
        for row in np.flatnonzero(base_right != cand_right):
            change = NEWLY_RIGHT if cand_right[row] else NEWLY_WRONG
            label = int(labels[row])
            right_counts[change][label] = right_counts[change].get(label, 0) + 1
            examples.append(
                {
                    "index": offset + int(row),
                    "label": label,
                    "change": change,
                    "baseline": {
                        "class": int(base_pred[row]),
                        "confidence": round(float(predictions[BASELINE][row].max()), 4),
                    },
                    "candidate": {
                        "class": int(cand_pred[row]),
                        "confidence": round(float(predictions[CANDIDATE][row].max()), 4),
                    },
                }
            )
        offset += len(labels)
    counts = {
        "overall": {change: sum(by_class.values()) for change, by_class in right_counts.items()},
        **{
            f"{LABEL_KEY}={c}": {change: by_class.get(c, 0) for change, by_class in right_counts.items()}
            for c in sorted(classes)
        },
    }
    joined = {key: np.concatenate(values) if values else np.zeros(0, bool) for key, values in outcomes.items()}
    return {"examples": examples, "counts": counts, "pattern": pattern}, joined


def check_changed_against_tfma(changed: dict, summary: dict) -> None:
    for sid, counts in changed["counts"].items():
        tfma_counts = summary["paired"].get(sid)
        if tfma_counts is None or any(tfma_counts[k] != counts[k] for k in (NEWLY_RIGHT, NEWLY_WRONG)):
            raise InputError(
                f"the examples listed as changed on {sid} ({counts}) disagree with TFMA's paired counts "
                f"({tfma_counts}); refusing to hand on an analysis that contradicts itself"
            )
