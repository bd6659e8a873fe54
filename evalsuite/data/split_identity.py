"""Which split of which data a model was trained on, so a blessed baseline's training data is known.

The bundled digits and class folders are split by `--seed`: a run with
another seed holds out other examples, and a model blessed from the first
run was trained on part of what the second evaluates on. The data stage
records the split's identity; a blessing carries it as `training_split`; a
run judged against that blessing compares it with its own.

The identity is two order-free hashes of the examples themselves (image bytes
and label): `pool`, everything the split is drawn from (before any
--train-limit/--eval-limit subset), and `held_out`, the part kept for
evaluation. The same pool with another held-out part means another split of
the same data; files that fix their own split (.npz, IDX, train/ and test/
folders) hold out the same part whatever the seed.

Such an overlap is a warning in the verdict, not a refusal: the examples the
baseline has seen flatter only the baseline, which makes a candidate's
comparison harder, never easier, so it cannot let a regression through; and
changing the seed is a legitimate thing to do. The warning says why a good
candidate may fail and which seed matches the blessing.
"""

from __future__ import annotations

import hashlib

import numpy as np


def split_identity(dataset, seed: int) -> dict:
    """The split of `dataset` (train and evaluation parts as loaded, before any subset) drawn with `seed`."""
    train = _example_digests(dataset.x_train, dataset.y_train)
    held_out = _example_digests(dataset.x_test, dataset.y_test)
    shape = str(tuple(dataset.x_train.shape[1:]))
    return {
        "seed": int(seed),
        "pool": _set_hash(shape, train + held_out),
        "held_out": _set_hash(shape, held_out),
        "examples": len(train) + len(held_out),
    }


def overlap_warning(blessed: dict | None, run: dict | None, where: str) -> str | None:
    """A warning when the blessed model's training split and this run's split draw from the same data
    differently; None when they match, differ in data, or either is unknown."""
    if not isinstance(blessed, dict) or not isinstance(run, dict):
        return None
    if not blessed.get("pool") or blessed.get("pool") != run.get("pool"):
        return None
    if blessed.get("held_out") == run.get("held_out"):
        return None
    return (
        f"the blessed baseline {where} was trained on another split of the same data (split seed "
        f"{blessed.get('seed')}; this run's: {run.get('seed')}): part of this run's evaluation examples were in "
        "its training part, which flatters the baseline, so a good candidate may fail; "
        f"train with --seed {blessed.get('seed')} for a like-for-like comparison"
    )


def _example_digests(images: np.ndarray, labels: np.ndarray) -> list[bytes]:
    rows = np.ascontiguousarray(images).reshape(len(images), -1)
    codes = np.asarray(labels).astype("<i8")
    return [hashlib.sha256(code.tobytes() + row.tobytes()).digest()[:16] for row, code in zip(rows, codes)]


def _set_hash(shape: str, digests: list[bytes]) -> str:
    """Order-free: the same examples in any order (a seeded shuffle) hash alike; duplicates count."""
    digest = hashlib.sha256(shape.encode("utf-8"))
    for item in sorted(digests):
        digest.update(item)
    return digest.hexdigest()[:16]
