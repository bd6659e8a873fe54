"""TensorBoard event files written and read without TensorFlow.

Each summary is the `Summary.Value` that `tf.summary.scalar`, `tf.summary.image`
and `tf.summary.text` write in TF 2 (a tensor with the scalars, images or text
plugin's metadata), one per event, in a TFRecord named as TensorFlow names
it, so TensorBoard shows them as it shows tf.summary's (an image keeps the
PNG it was drawn as; tf.summary re-encodes the same pixels). TensorBoard's
own event writer and reader import TensorFlow when it is installed
(`tensorboard.compat.tf`), which costs the report about 5 s.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from pathlib import Path

from reports.tfrecord import frame, read_records

FILE_VERSION = "brain.Event:2"


class EventFile:
    """One new event file in `folder`: add summaries, then close."""

    def __init__(self, folder: Path):
        from tensorboard.compat.proto import event_pb2

        self._event = event_pb2.Event
        now = time.time()
        name = f"events.out.tfevents.{int(now):010d}.{socket.gethostname()}.{os.getpid()}.0.v2"
        self.path = Path(folder) / name
        self._handle = open(self.path, "wb")
        self._write(
            event_pb2.Event(
                wall_time=now,
                file_version=FILE_VERSION,
                source_metadata=event_pb2.SourceMetadata(writer="evalsuite reports"),
            )
        )

    def _write(self, event) -> None:
        self._handle.write(frame(event.SerializeToString()))

    def add(self, value, step: int) -> None:
        """Write one `Summary.Value` (from `scalar`, `image` or `text`) at `step`."""
        event = self._event(wall_time=time.time(), step=step)
        event.summary.value.append(value)
        self._write(event)

    def close(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()

    def __enter__(self) -> "EventFile":
        return self

    def __exit__(self, *_) -> None:
        self.close()


def _value(tag: str, plugin: str, tensor, description: str = ""):
    from tensorboard.compat.proto import summary_pb2

    value = summary_pb2.Summary.Value(tag=tag, tensor=tensor)
    value.metadata.plugin_data.plugin_name = plugin
    if description:
        value.metadata.summary_description = description
    return value


def scalar(tag: str, number: float, description: str = ""):
    """As `tf.summary.scalar`: a float32 scalar tensor for the scalars plugin."""
    from tensorboard.compat.proto import tensor_pb2, types_pb2

    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_content=struct.pack("<f", number))
    tensor.tensor_shape.SetInParent()
    return _value(tag, "scalars", tensor, description)


def image(tag: str, png: bytes):
    """As `tf.summary.image` of one image: [width, height, PNG] as strings for the images plugin."""
    from tensorboard.compat.proto import tensor_pb2, types_pb2

    width, height = png_size(png)
    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[b"%d" % width, b"%d" % height, png])
    tensor.tensor_shape.dim.add(size=3)
    return _value(tag, "images", tensor)


def text(tag: str, markdown: str):
    """As `tf.summary.text`: one string for the text plugin (which renders Markdown)."""
    from tensorboard.compat.proto import tensor_pb2, types_pb2

    tensor = tensor_pb2.TensorProto(dtype=types_pb2.DT_STRING, string_val=[markdown.encode("utf-8")])
    tensor.tensor_shape.SetInParent()
    return _value(tag, "text", tensor)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return struct.unpack(">II", png[16:24])


def read_scalars(folder: Path, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} for the scalar summaries of these tags in a folder's event files.

    Read as TensorBoard's EventAccumulator reads TF 2 event files: the files in name order, every event
    in file order (it purges nothing from a `brain.Event:2` file without a restart mark), tensors or
    TF 1 simple values.
    """
    from tensorboard.compat.proto import event_pb2

    series: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(Path(folder).iterdir()):
        if "tfevents" not in path.name or not path.is_file():
            continue
        for record in read_records(path):
            event = event_pb2.Event.FromString(record)
            for value in event.summary.value:
                if value.tag not in tags:
                    continue
                number = _number(value)
                if number is None:
                    continue
                series.setdefault(value.tag, []).append((event.step, number))
    return {tag: series[tag] for tag in tags if tag in series}


def _number(value) -> float | None:
    """A scalar summary's number: a float32 or float64 scalar tensor, or a TF 1 simple value."""
    if value.HasField("tensor"):
        tensor = value.tensor
        formats = {1: "<f", 2: "<d"}  # DT_FLOAT, DT_DOUBLE
        if tensor.dtype not in formats or tensor.tensor_shape.dim:
            return None
        if tensor.tensor_content:
            return struct.unpack(formats[tensor.dtype], tensor.tensor_content)[0]
        values = tensor.float_val if tensor.dtype == 1 else tensor.double_val
        return float(values[0]) if values else None
    if value.WhichOneof("value") == "simple_value":
        return float(value.simple_value)
    return None
