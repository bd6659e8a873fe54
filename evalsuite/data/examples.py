"""Evaluation examples as sharded TFRecords of tf.Example, the format TFMA reads.

Each example holds the image as its raw uint8 bytes (`image`: height x width x
channels of the run's data spec, compact and decoded inside the serving
signature) and the true class as an int64 `label`, plus any per-example
features to slice by (`evalsuite.data.slice_features`): int64 or bytes, by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.run.contract import IMAGE_KEY, LABEL_KEY
from evalsuite.run.literal_paths import matching_files

EXAMPLES_PER_SHARD = 5000
SHARD_PATTERN = "eval-*.tfrecord"


def shard_count(num_examples: int) -> int:
    return max(1, -(-num_examples // EXAMPLES_PER_SHARD))


def write_examples(folder: Path, images: np.ndarray, labels: np.ndarray, features: dict | None = None) -> list[Path]:
    """Write `images` (uint8 (N, H, W) or (N, H, W, C)), `labels` and `features` into `folder` as TFRecord shards."""
    import tensorflow as tf

    def extra(index: int) -> dict:
        out = {}
        for name, values in (features or {}).items():
            value = values[index]
            if values.dtype.kind == "i":
                out[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))
            else:
                out[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(value).encode("utf-8")]))
        return out

    folder.mkdir(parents=True, exist_ok=True)
    shards = shard_count(len(labels))
    paths = [folder / f"eval-{i:05d}-of-{shards:05d}.tfrecord" for i in range(shards)]
    for shard, path in enumerate(paths):
        with tf.io.TFRecordWriter(str(path)) as writer:
            for index in range(shard, len(labels), shards):
                example = tf.train.Example(
                    features=tf.train.Features(
                        feature={
                            IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[images[index].tobytes()])),
                            LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[int(labels[index])])),
                            **extra(index),
                        }
                    )
                )
                # Map fields sorted: otherwise their order (and the shard bytes) changes from process to process.
                writer.write(example.SerializeToString(deterministic=True))
    return paths


def read_examples(
    pattern: str, spec: DataSpec, feature_names: tuple[str, ...] = ()
) -> tuple[np.ndarray, np.ndarray, list[bytes], dict[str, np.ndarray]]:
    """Read examples of `spec` back: images (N, H, W) or (N, H, W, C) uint8, labels (N,), the raw records,
    and the features named (each example must carry them)."""
    import tensorflow as tf

    from evalsuite.data.slice_features import check_values

    files = matching_files(pattern)
    if not files:
        raise InputError(f"{pattern}: no TFRecord files match")
    records: list[bytes] = []
    try:
        for record in tf.data.TFRecordDataset(files):
            records.append(record.numpy())
    except tf.errors.OpError as error:
        raise InputError(f"{pattern}: corrupt TFRecord ({error.message.splitlines()[0]})") from None
    if not records:
        raise InputError(f"{pattern}: holds no examples")
    shape = (spec.height, spec.width) if spec.channels == 1 else spec.input_shape
    images = np.empty((len(records), *shape), dtype=np.uint8)
    labels = np.empty(len(records), dtype=np.int64)
    columns: dict[str, list] = {name: [] for name in feature_names}
    for index, record in enumerate(records):
        example = tf.train.Example()
        try:
            example.ParseFromString(record)
            feature = example.features.feature
            raw = feature[IMAGE_KEY].bytes_list.value
            label = feature[LABEL_KEY].int64_list.value
        except Exception:
            raise InputError(f"{pattern}: record {index} is not a tf.Example") from None
        images[index] = _image(raw, shape, spec, f"{pattern}: record {index}")
        if len(label) != 1 or not 0 <= label[0] < spec.num_classes:
            raise InputError(f"{pattern}: record {index} has no int64 '{LABEL_KEY}' in 0..{spec.num_classes - 1}")
        labels[index] = label[0]
        for name, column in columns.items():
            values = list(feature[name].int64_list.value) or list(feature[name].bytes_list.value)
            if len(values) != 1:
                raise InputError(f"{pattern}: record {index} has no single value of the slice feature {name!r}")
            column.append(values[0])
    features = {name: check_values(name, column, len(records), pattern) for name, column in columns.items()}
    return images, labels, records, features


def scan_examples(pattern: str, spec: DataSpec) -> tuple[np.ndarray, str]:
    """The labels of examples of `spec` and the fingerprint of their records, parsed in batches.

    The same checks and the same fingerprint as `read_examples` (every record hashed in order),
    without decoding one example at a time; on anything amiss, `read_examples` names the record.
    """
    import hashlib

    import tensorflow as tf

    files = matching_files(pattern)
    if not files:
        raise InputError(f"{pattern}: no TFRecord files match")
    layout = {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string), LABEL_KEY: tf.io.FixedLenFeature([], tf.int64)}
    digest, labels = hashlib.sha256(), []
    try:
        for batch in tf.data.TFRecordDataset(files).batch(4096).as_numpy_iterator():
            # Each record then a zero byte, as evalsuite.run.fingerprints.fingerprint joins its parts.
            digest.update(b"\x00".join(batch.tolist()) + b"\x00")
            parsed = tf.io.parse_example(batch, layout)
            sizes, batch_labels = tf.strings.length(parsed[IMAGE_KEY]).numpy(), parsed[LABEL_KEY].numpy()
            if (
                np.any(sizes != spec.image_bytes)
                or np.any(batch_labels < 0)
                or np.any(batch_labels >= spec.num_classes)
            ):
                raise ValueError("a record does not fit the data spec")
            labels.append(batch_labels)
    except (tf.errors.OpError, ValueError):
        read_examples(pattern, spec)  # raises the one-line error naming the record
        raise InputError(f"{pattern}: records that do not fit the run's data spec ({spec.describe()})") from None
    if not labels:
        raise InputError(f"{pattern}: holds no examples")
    return np.concatenate(labels).astype(np.int64), digest.hexdigest()[:16]


def read_images(pattern: str, spec: DataSpec, indices) -> dict[int, np.ndarray]:
    """The images of the examples at `indices` (positions in the shards' order), streamed in batches."""
    import tensorflow as tf

    wanted = sorted(set(int(i) for i in indices))
    shape = (spec.height, spec.width) if spec.channels == 1 else spec.input_shape
    images: dict[int, np.ndarray] = {}
    files = matching_files(pattern)
    if not files:
        raise InputError(f"{pattern}: no TFRecord files match")
    offset, position = 0, 0
    try:
        for batch in tf.data.TFRecordDataset(files).batch(4096).as_numpy_iterator():
            while position < len(wanted) and wanted[position] < offset + len(batch):
                index = wanted[position]
                images[index] = _image_of(batch[index - offset], shape, spec, f"{pattern}: record {index}")
                position += 1
            offset += len(batch)
            if position == len(wanted):
                break
    except tf.errors.OpError as error:
        raise InputError(f"{pattern}: corrupt TFRecord ({error.message.splitlines()[0]})") from None
    if position < len(wanted):
        raise InputError(f"{pattern}: holds {offset} examples, not the example {wanted[position]} the analysis listed")
    return images


def _image_of(record: bytes, shape: tuple, spec: DataSpec, where: str) -> np.ndarray:
    import tensorflow as tf

    try:
        raw = tf.train.Example.FromString(record).features.feature[IMAGE_KEY].bytes_list.value
    except Exception:
        raise InputError(f"{where} is not a tf.Example") from None
    return _image(raw, shape, spec, where)


def _image(raw, shape: tuple, spec: DataSpec, where: str) -> np.ndarray:
    """One example's image from its `image` bytes feature, which must hold exactly one image of `spec`."""
    if len(raw) != 1 or len(raw[0]) != spec.image_bytes:
        raise InputError(
            f"{where} has no {spec.image_bytes}-byte '{IMAGE_KEY}' feature (the run's data spec is {spec.describe()})"
        )
    return np.frombuffer(raw[0], dtype=np.uint8).reshape(shape)
