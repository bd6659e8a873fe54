"""Each evaluation example's row from TFMA's pass, and the rows read back in the files' order.

The examples enter the pipeline a shard at a time (`analysis/example_batches.py`),
each carrying its position: the shard's number and its place in the shard. The
outcome stage (`analysis/outcome_tap.py`) writes one row per example: that
position, the label, and each model's class and confidence. Read back, the rows
are put in the files' order by position alone: no model runs twice, and no
example is matched by its bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalsuite.errors import InputError

OUTCOME_PREFIX = "outcomes"
OUTCOME_SUFFIX = ".tfrecord"
POSITION_FEATURE = "__example_position__"  # a column the reader adds; no tf.Example feature is named so
SHARD_SHIFT = 32  # position = shard number << 32 | place in the shard
PLACE_MASK = (1 << SHARD_SHIFT) - 1


def positions(shard: int, start: int, count: int) -> np.ndarray:
    """The positions of `count` examples of shard number `shard`, from its place `start` on."""
    return (np.int64(shard) << SHARD_SHIFT) + np.arange(start, start + count, dtype=np.int64)


# One row per example, as the outcome stage writes it (a TFRecord per batch of rows).
OUTCOME_DTYPE = np.dtype(
    [
        ("position", "<i8"),
        ("label", "<i8"),
        ("base_class", "<i4"),
        ("base_confidence", "<f4"),  # the float32 the model gave
        ("cand_class", "<i4"),
        ("cand_confidence", "<f4"),
    ]
)


def read_outcomes(folder: Path, examples: int, pattern: str) -> dict[str, np.ndarray]:
    """Every column, in the files' order: each batch of rows is copied to its place and let go.

    Each batch the stage wrote holds consecutive places of one shard. Together they must cover each
    shard from its first example without a gap or an overlap, `examples` in all; anything else is one
    line and exit 2.
    """
    import tensorflow as tf

    files = sorted(str(path) for path in folder.glob(f"{OUTCOME_PREFIX}*{OUTCOME_SUFFIX}"))
    records = tf.data.TFRecordDataset(files).as_numpy_iterator()
    batches = [np.frombuffer(record, dtype=OUTCOME_DTYPE) for record in records]
    batches = [batch for batch in batches if len(batch)]
    starts = np.array([batch["position"][0] for batch in batches], dtype=np.int64)
    sizes = np.array([len(batch) for batch in batches], dtype=np.int64)
    order = np.argsort(starts, kind="stable")
    starts, sizes = starts[order], sizes[order]
    shards, places = starts >> SHARD_SHIFT, starts & PLACE_MASK
    # Within a shard each batch starts where the one before it ended; each shard starts at 0.
    follows = np.r_[True, shards[1:] != shards[:-1]]
    expected = np.where(follows, 0, np.r_[0, places[:-1] + sizes[:-1]])
    if int(sizes.sum()) != examples or not np.array_equal(places, expected):
        raise InputError(
            f"{pattern}: the examples TFMA's pass predicted ({int(sizes.sum())}) are not the {examples} counted "
            "before it (did the files change while the analysis ran?)"
        )
    columns = {name: np.empty(examples, dtype=OUTCOME_DTYPE[name]) for name in OUTCOME_DTYPE.names}
    at = np.r_[0, np.cumsum(sizes)]
    for slot, index in enumerate(order.tolist()):
        batch = batches[index]
        if not np.array_equal(batch["position"], starts[slot] + np.arange(len(batch))):
            raise InputError(f"{pattern}: TFMA's pass wrote a batch of rows out of order")
        for name in OUTCOME_DTYPE.names:
            columns[name][at[slot] : at[slot + 1]] = batch[name]
        batches[index] = None  # each batch is let go once placed
    return columns
