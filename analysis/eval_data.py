"""The analysis' evaluation data: the run's own examples, or other data converted into the run folder.

Either way the result names the shards' bytes as they are on disk now, how
many examples each class has, and where they came from.
"""

from __future__ import annotations

import glob
from pathlib import Path

from evalsuite.data.examples import SHARD_PATTERN, read_examples, scan_examples, write_examples
from evalsuite.data.spec import DataSpec, recorded_spec
from evalsuite.errors import InputError
from evalsuite.run.atomic import atomic_dir
from evalsuite.run.contract import LABEL_KEY
from evalsuite.run.fingerprints import fingerprint, fingerprint_shards
from evalsuite.run.folder import RunDir
from evalsuite.run.literal_paths import matching_files
from evalsuite.safe_files import require_data_file


def resolve_eval_data(run: RunDir, eval_data: str | None, log) -> dict:
    """The run's own evaluation examples, or PATH converted into the run folder.

    Either follows the run's data spec (recorded by training): other data are
    resized and made grey or colour as the training data were, and refused
    when they still do not fit. `files_fingerprint` hashes the shards' bytes as they are on disk now, so a
    replaced or truncated shard is never taken for the data that was judged.
    """

    data_record = run.stage("data")
    spec = recorded_spec(data_record, str(run.manifest_path))
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
        _require_every_class([int(c) for c, n in per_class.items() if n], record["source"], spec)
        return {
            "source": record["source"],
            "fingerprint": record["fingerprint"],
            "files_fingerprint": files_fingerprint,
            "examples": record["eval_examples"],
            "examples_per_class": record["eval_examples_per_class"],
            "class_names": record.get("class_names"),
            "data_spec": spec.as_dict(),
            "slice_features": record.get("slice_features") or {},
            "pattern": pattern,
        }
    import numpy as np

    from evalsuite.data import slice_features
    from evalsuite.data.class_names import names_for
    from evalsuite.data.datasets import load_eval_split
    from evalsuite.data.images import is_class_folders, is_image_folders

    # Other data are sliced as the run's own: they must carry the same features.
    wanted = tuple((data_record or {}).get("slice_features") or {})
    path = Path(eval_data)
    require_data_file(path, "--eval-data")  # a FIFO or device would block or never end
    if is_tfrecord_data(path, eval_data):
        pattern = tfrecord_pattern(path, eval_data)
        for shard in matching_files(pattern):
            require_data_file(shard, "--eval-data shard")
        if wanted:
            _, labels, records, features = read_examples(pattern, spec, wanted)
            data_fingerprint = fingerprint(*records)
        else:  # the common case, parsed in batches
            (labels, data_fingerprint), features = scan_examples(pattern, spec), {}
        source = f"tfrecord:{pattern}"
        names = list(spec.class_names) if spec.class_names else None
        _require_every_class(labels, source, spec)
    else:
        images, labels, features = load_eval_split(path, spec, wanted)
        folders = is_image_folders(path, need_train=False) or is_class_folders(path)
        kind = "folders" if folders else "idx" if path.is_dir() else "npz"
        source = f"{kind}:{path.resolve()}"
        names = names_for(path) if kind != "folders" else None
        if names is not None and len(names) != spec.num_classes:
            raise InputError(
                f"{path}: {len(names)} class names beside the data; the run's models know {spec.num_classes} classes"
            )
        names = names or (list(spec.class_names) if spec.class_names else None)
        _require_every_class(labels, source, spec)
        carried = slice_features.features_fingerprint(features)
        data_fingerprint = fingerprint(images.tobytes(), labels.tobytes(), *([carried] if carried else []))
        folder = run.data_dir.parent / f"data-{data_fingerprint}"
        if not folder.exists():
            with atomic_dir(folder) as staging:
                write_examples(staging, images, labels, features)
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
        "data_spec": spec.as_dict(),
        "slice_features": slice_features.value_counts(features),
        "pattern": pattern,
    }


def is_tfrecord_data(path: Path, eval_data: str) -> bool:
    """A .tfrecord file, a folder of them, or a glob (a path that exists is never read as a glob)."""
    if path.exists():
        return path.suffix == ".tfrecord" or (path.is_dir() and any(path.glob("*.tfrecord")))
    return path.suffix == ".tfrecord" or glob.has_magic(eval_data)


def tfrecord_pattern(path: Path, eval_data: str) -> str:
    """The shard pattern of --eval-data: a folder's *.tfrecord, one file named literally, or the user's glob."""
    if path.is_dir():
        return str(path / "*.tfrecord")
    if path.exists():
        return str(path.parent / glob.escape(path.name))
    return eval_data


def _require_every_class(labels, source: str, spec: DataSpec) -> None:
    """Every class must have evaluation examples: a missing slice cannot be judged by any rule."""
    import numpy as np

    present = set(np.unique(labels).tolist())
    missing = [str(c) for c in range(spec.num_classes) if c not in present]
    if missing:
        raise InputError(
            f"{source}: no evaluation examples of class {', '.join(missing)}; "
            f"slice {LABEL_KEY}={missing[0]} is missing, so no rule on it can be judged"
        )
