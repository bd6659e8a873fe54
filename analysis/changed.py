"""The examples whose outcome changed between baseline and candidate (`changed.json`),
and the check that their counts equal TFMA's paired counts.

Every example's predictions come from TFMA's own pass (`analysis/outcome_tap.py`
writes them there, keyed by each serialized example's digest); here the
examples are read in file order, numbered, and matched to them: no model runs
a second time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError
from evalsuite.run.contract import LABEL_KEY, NEWLY_RIGHT, NEWLY_WRONG
from evalsuite.run.literal_paths import matching_files

BATCH = 1024  # examples read and matched at a time
OUTCOME_PREFIX = "outcomes"
OUTCOME_SUFFIX = ".hex"
# 16 bytes: two different examples never share a digest by chance, nor can a file be made to.
DIGEST_BYTES = 16
DIGEST_DTYPE = f"S{DIGEST_BYTES}"


# One row per example, as the outcome stage writes it (hex of the rows' bytes, a line per batch).
OUTCOME_DTYPE = np.dtype(
    [
        ("digest", DIGEST_DTYPE),
        ("base_class", "<i4"),
        ("base_confidence", "<f4"),
        ("cand_class", "<i4"),
        ("cand_confidence", "<f4"),
    ]
)


def digests(records) -> np.ndarray:
    """What names each serialized example in the outcome files (equal examples share it, and their outcomes)."""
    joined = b"".join(hashlib.blake2b(bytes(record), digest_size=DIGEST_BYTES).digest() for record in records)
    return np.frombuffer(joined, dtype=DIGEST_DTYPE)


class Outcomes:
    """Both models' predicted class and confidence per example, as TFMA's pass wrote them, found by digest.

    Equal examples (the same bytes, so the same label) share a digest; each occurrence in the files takes
    one of their rows in turn, so every count is TFMA's even if equal inputs were predicted apart.
    """

    def __init__(self, folder: Path):
        parts = []
        for path in sorted(folder.glob(f"{OUTCOME_PREFIX}*{OUTCOME_SUFFIX}")):
            with path.open() as lines:
                parts += [np.frombuffer(bytes.fromhex(line.strip()), dtype=OUTCOME_DTYPE) for line in lines if line.strip()]
        table = np.concatenate(parts) if parts else np.zeros(0, dtype=OUTCOME_DTYPE)
        # By digest; equal examples predicted apart in order of their predictions, so which occurrence gets
        # which does not depend on how Beam bundled them.
        columns = ("cand_confidence", "cand_class", "base_confidence", "base_class", "digest")
        table = table[np.lexsort([table[name] for name in columns])]
        self.keys = table["digest"]
        self.classes = [table["base_class"].astype(np.int64), table["cand_class"].astype(np.int64)]
        self.confidences = [table["base_confidence"], table["cand_confidence"]]  # float32, as the models gave them
        self._taken = np.zeros(len(self.keys), dtype=np.int64)  # occurrences matched so far, at each digest's first row
        self._repeated = len(self.keys) > 1 and bool(np.any(self.keys[1:] == self.keys[:-1]))

    def rows(self, records, pattern: str) -> np.ndarray:
        """Where each record's outcome sits."""
        wanted = digests(records)
        rows = np.searchsorted(self.keys, wanted)
        if self._repeated:  # equal examples: each occurrence takes the next of their rows
            for i, start in enumerate(rows.tolist()):
                if start < len(self.keys):
                    rows[i] = start + self._taken[start]
                    self._taken[start] += 1
        else:
            np.add.at(self._taken, rows[rows < len(self.keys)], 1)
        found = rows < len(self.keys)
        found[found] = self.keys[rows[found]] == wanted[found]
        if not found.all():
            raise InputError(
                f"{pattern}: {int(np.sum(~found))} examples have no predictions from TFMA's pass "
                "(did the files change while the analysis ran?)"
            )
        return rows

    def check_all_matched(self, pattern: str) -> None:
        """Every row used exactly once: the files hold the examples TFMA's pass predicted, no more, no fewer."""
        starts = np.flatnonzero(np.r_[True, self.keys[1:] != self.keys[:-1]]) if len(self.keys) else np.zeros(0, int)
        occurrences = np.diff(np.r_[starts, len(self.keys)])
        if not np.array_equal(self._taken[starts], occurrences):
            raise InputError(
                f"{pattern}: the files do not hold the examples TFMA's pass predicted ({len(self.keys)} predicted, "
                f"{int(self._taken.sum())} read; did the files change while the analysis ran?)"
            )


def changed_examples(outcome_folder: Path, pattern: str, observe=None) -> tuple[dict, dict]:
    """Every example the two models disagree on in outcome, with both predictions and confidences.

    The examples stream through in batches: only the changed ones are kept, and
    each example's outcome (right or wrong, per model) as one bit.
    `observe(records, baseline_classes, baseline_confidences)` sees every batch
    (discovery reads the images there).
    """
    import tensorflow as tf

    files = matching_files(pattern)
    predicted = Outcomes(outcome_folder)
    label_spec = {LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    examples = []
    right_counts: dict[str, dict[int, int]] = {NEWLY_RIGHT: {}, NEWLY_WRONG: {}}
    classes: set[int] = set()
    offset = 0
    outcomes: dict[str, list] = {"labels": [], "base_right": [], "cand_right": []}
    for batch in tf.data.TFRecordDataset(files).batch(BATCH).as_numpy_iterator():
        labels = tf.io.parse_example(batch, label_spec)[LABEL_KEY].numpy()
        rows = predicted.rows(batch, pattern)
        base_pred, cand_pred = (column[rows] for column in predicted.classes)
        base_conf, cand_conf = (column[rows] for column in predicted.confidences)
        base_right, cand_right = base_pred == labels, cand_pred == labels
        classes.update(np.unique(labels).tolist())
        for key, values in (("labels", labels), ("base_right", base_right), ("cand_right", cand_right)):
            outcomes[key].append(values)
        if observe is not None:
            observe(batch, base_pred, base_conf)
        for row in np.flatnonzero(base_right != cand_right):
            change = NEWLY_RIGHT if cand_right[row] else NEWLY_WRONG
            label = int(labels[row])
            right_counts[change][label] = right_counts[change].get(label, 0) + 1
            examples.append(
                {
                    "index": offset + int(row),
                    "label": label,
                    "change": change,
                    "baseline": {"class": int(base_pred[row]), "confidence": round(float(base_conf[row]), 4)},
                    "candidate": {"class": int(cand_pred[row]), "confidence": round(float(cand_conf[row]), 4)},
                }
            )
        offset += len(labels)
    predicted.check_all_matched(pattern)
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
