"""The analysis' evaluation data: the run's own examples, or other data converted into the run folder.

Either way the result names the shards' bytes as they are on disk now, how
many examples each class has, and where they came from.
"""

from __future__ import annotations

from pathlib import Path

from evalsuite.atomic import atomic_dir
from evalsuite.contract import LABEL_KEY, NUM_CLASSES
from evalsuite.errors import InputError
from evalsuite.examples import SHARD_PATTERN, read_examples, write_examples
from evalsuite.fingerprints import fingerprint, fingerprint_shards
from evalsuite.rundir import RunDir


def resolve_eval_data(run: RunDir, eval_data: str | None, log) -> dict:
    """The run's own evaluation examples, or PATH converted into the run folder.

    `files_fingerprint` hashes the shards' bytes as they are on disk now, so a
    replaced or truncated shard is never taken for the data that was judged.
    """

    if eval_data is None:
        record = run.require_stage("data", "evaluation examples")
        if not isinstance(record.get("pattern"), str) or not isinstance(record.get("eval_examples"), int):
            raise InputError(f"{run.manifest_path}: corrupt manifest (the data stage has no pattern or example count)")
        if not isinstance(record.get("eval_examples_per_class"), dict):
            raise InputError(f"{run.manifest_path}: corrupt manifest (the data stage has no examples per class)")
        pattern = str(run.path / record["pattern"])
        files_fingerprint = fingerprint_shards(pattern)
        if files_fingerprint is None:
            raise InputError(f"{pattern}: the run's evaluation examples are missing (rerun training)")
        if record.get("files_fingerprint") not in (None, files_fingerprint):
            raise InputError(
                f"{run.data_dir}: evaluation examples changed on disk since the data stage wrote them; "
                "rerun with --force"
            )
        per_class = record["eval_examples_per_class"]
        _require_every_class([int(c) for c, n in per_class.items() if n], record["source"])
        return {
            "source": record["source"],
            "fingerprint": record["fingerprint"],
            "files_fingerprint": files_fingerprint,
            "examples": record["eval_examples"],
            "examples_per_class": record["eval_examples_per_class"],
            "class_names": record.get("class_names"),
            "pattern": pattern,
        }
    import numpy as np

    from evalsuite.datasets import class_names_for, load_eval_split

    path = Path(eval_data)
    if path.suffix == ".tfrecord" or "*" in eval_data or (path.is_dir() and list(path.glob("*.tfrecord"))):
        pattern = str(path / "*.tfrecord") if path.is_dir() else eval_data
        _, labels, records = read_examples(pattern)
        data_fingerprint = fingerprint(*records)
        source = f"tfrecord:{pattern}"
        names = None
        _require_every_class(labels, source)
    else:
        images, labels = load_eval_split(path)
        source = f"{'idx' if path.is_dir() else 'npz'}:{path.resolve()}"
        names = class_names_for(path)
        _require_every_class(labels, source)
        data_fingerprint = fingerprint(images.tobytes(), labels.tobytes())
        folder = run.data_dir.parent / f"data-{data_fingerprint}"
        if not folder.exists():
            with atomic_dir(folder) as staging:
                write_examples(staging, images, labels)
        pattern = str(folder / SHARD_PATTERN)
    counts = {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True))}
    log(f"analysis: evaluation data {source} - {len(labels)} examples")
    return {
        "source": source,
        "fingerprint": data_fingerprint,
        "files_fingerprint": fingerprint_shards(pattern),
        "examples": int(len(labels)),
        "examples_per_class": counts,
        "class_names": names,
        "pattern": pattern,
    }


def _require_every_class(labels, source: str) -> None:
    """Every class must have evaluation examples: a missing slice cannot be judged by any rule."""
    import numpy as np

    present = set(np.unique(labels).tolist())
    missing = [str(c) for c in range(NUM_CLASSES) if c not in present]
    if missing:
        raise InputError(
            f"{source}: no evaluation examples of class {', '.join(missing)}; "
            f"slice {LABEL_KEY}={missing[0]} is missing, so no rule on it can be judged"
        )
