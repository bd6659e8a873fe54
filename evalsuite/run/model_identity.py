"""What a model *is*, independent of how its files happen to be written.

Two exports of the same trained weights differ in their bytes: TensorFlow
writes a SavedModel's variable list in an order that changes from process to
process. A byte fingerprint therefore guards custody (these files, unchanged),
while this one says whether two models hold the same weights, which is what
"the candidate is the blessed model" means after a deterministic retraining.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from evalsuite.errors import InputError
from evalsuite.run.literal_paths import without_glob_characters

CHECKPOINT = ("variables", "variables")
OBJECT_GRAPH = "_CHECKPOINTABLE_OBJECT_GRAPH"


def weights_fingerprint(saved_model: Path) -> str:
    """Hash every variable's dtype, shape and values, as a set: the order they are stored in varies."""
    import tensorflow as tf

    try:
        # TensorFlow's checkpoint reader matches its path as a glob: a folder named run[1] finds nothing.
        with without_glob_characters(saved_model) as readable:
            reader = tf.train.load_checkpoint(str(Path(readable).joinpath(*CHECKPOINT)))
            names = sorted(name for name in reader.get_variable_to_shape_map() if name != OBJECT_GRAPH)
            parts = []
            for name in names:
                value = reader.get_tensor(name)  # data files are opened lazily: read inside the with
                header = f"{value.dtype}|{value.shape}|".encode("utf-8")
                parts.append(hashlib.sha256(header + value.tobytes()).hexdigest())
    except (tf.errors.OpError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise InputError(f"{saved_model}: cannot read the model's weights ({first[:160]})") from None
    return hashlib.sha256("".join(sorted(parts)).encode("ascii")).hexdigest()[:16]
