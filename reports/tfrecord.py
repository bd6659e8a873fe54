"""TFRecord files and tf.Example without TensorFlow, for the report's images and TensorBoard event files.

A TFRecord is a run of records, each framed as: length (uint64, little-endian),
the masked CRC-32C of those 8 bytes, the data, the masked CRC-32C of the data.
TensorBoard's event files are TFRecords of `Event` protos. Importing anything
under `tensorflow` imports all of TensorFlow (about 5 s), so the one
feature the report needs is read from tf.Example's wire format here.
"""

from __future__ import annotations

import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

import google_crc32c  # a dependency of apache-beam[gcp], which TFMA requires
import numpy as np

from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.run.contract import IMAGE_KEY
from evalsuite.run.literal_paths import matching_files
from evalsuite.safe_files import kind_of

_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")


def masked_crc32c(data: bytes) -> int:
    """TFRecord's checksum: CRC-32C, rotated right by 15 bits and offset, as TensorFlow's `crc32c::Mask`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record as it is stored in a TFRecord file."""
    length = struct.pack("<Q", len(data))
    return length + _FOOTER.pack(masked_crc32c(length)) + data + _FOOTER.pack(masked_crc32c(data))


def read_records(path: str | Path) -> Iterator[bytes]:
    """Each record of one TFRecord file, every length and every record checked against its CRC.

    A damaged or cut-short file raises one InputError line naming the file and the record.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)  # a FIFO must not hang the report
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise InputError(f"{path}: {kind_of(status.st_mode)}, not a TFRecord file")
    size, position, index = status.st_size, 0, 0

    def damaged(what: str) -> InputError:
        return InputError(f"{path}: corrupt TFRecord (record {index} at byte {position}: {what})")

    with os.fdopen(fd, "rb") as handle:
        while True:
            header = handle.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise damaged("the file ends inside the record's header")
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise damaged("its length fails its checksum")
            if length > size - position - _HEADER.size - _FOOTER.size:
                raise damaged(f"its {length} bytes run past the end of the file")
            data = handle.read(length)
            footer = handle.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                raise damaged("the file ends inside the record")
            if masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
                raise damaged("its data fail their checksum")
            yield data
            position += _HEADER.size + length + _FOOTER.size
            index += 1


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise ValueError("a varint runs past its message")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _fields(message: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """(field number, wire type, value) of each field of one serialized protobuf message, in order."""
    position, end = 0, len(message)
    while position < end:
        key, position = _varint(message, position)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(message, position)
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, position = message[position : position + size], position + size
        elif wire == 2:
            size, position = _varint(message, position)
            value, position = message[position : position + size], position + size
        else:
            raise ValueError(f"wire type {wire}")  # groups: not in tf.Example
        if number == 0 or position > end:
            raise ValueError("a field runs past its message")
        yield number, wire, value


def feature_bytes(example: bytes, name: str) -> list[bytes]:
    """The `bytes_list` values of feature `name` of a serialized tf.Example, as protobuf parses them.

    tf.Example: Example {Features features = 1}; Features {map<string, Feature> feature = 1};
    Feature {oneof kind {BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3}};
    each list {repeated value = 1} (tensorflow/core/example/{example,feature}.proto). As protobuf: a message
    field given twice is merged (each part parsed in turn), a map key given twice keeps its last entry, a map
    entry with unknown fields is set aside, a later member of a oneof replaces an earlier one, and every
    feature must parse. Raises ValueError when the bytes are not a tf.Example.
    """
    found: list[bytes] = []
    # A message field given twice is merged: each part must parse on its own, later parts override.
    for features in (value for number, wire, value in _fields(example) if number == 1 and wire == 2):
        for number, wire, entry in _fields(features):
            if number != 1 or wire != 2:
                continue
            parts = list(_fields(entry))
            keys = [value.decode("utf-8") for number, wire, value in parts if number == 1 and wire == 2]
            values = _bytes_values(value for number, wire, value in parts if number == 2 and wire == 2)
            if (keys or [""])[-1] == name and all(wire == 2 and number in (1, 2) for number, wire, _ in parts):
                found = values  # (an entry with unknown fields is kept by protobuf as one, not as a feature)
    return found


def _bytes_values(feature_parts) -> list[bytes]:
    """The bytes values of a Feature given in parts ([] when it holds another kind), every list checked."""
    values: list[bytes] = []
    for part in feature_parts:
        for number, wire, field in _fields(part):
            if wire != 2 or number not in (1, 2, 3):
                continue
            items = list(_fields(field))
            if number == 1:
                values.extend(item for item_number, item_wire, item in items if item_number == 1 and item_wire == 2)
                continue
            values = []  # another kind of list replaces the bytes
            for item_number, item_wire, item in items:
                if item_number == 1 and item_wire == 2:  # packed floats or varints
                    if number == 2 and len(item) % 4:
                        raise ValueError("packed floats of a length not a multiple of 4")
                    position = 0
                    while number == 3 and position < len(item):
                        _, position = _varint(item, position)
    return values


def read_images(pattern: str, spec: DataSpec, indices) -> dict[int, np.ndarray]:
    """The images of the examples at `indices` (positions in the shards' order), read record by record.

    As `evalsuite.data.examples.read_images` (the same positions and checks), without TensorFlow; the files
    are read only up to the last example wanted, and a damaged one is named with the record and byte.
    """
    wanted = sorted(set(int(i) for i in indices))
    shape = (spec.height, spec.width) if spec.channels == 1 else spec.input_shape
    files = matching_files(pattern)
    if not files:
        raise InputError(f"{pattern}: no TFRecord files match")
    images: dict[int, np.ndarray] = {}
    if not wanted:
        return images
    position = 0  # of the next record, across the files
    for path in files:
        if len(images) == len(wanted):
            break
        for record in read_records(path):
            if position == wanted[len(images)]:
                images[position] = _image(record, shape, spec, f"{pattern}: record {position}")
                if len(images) == len(wanted):
                    break
            position += 1
    if len(images) < len(wanted):
        raise InputError(
            f"{pattern}: holds {position} examples, not the example {wanted[len(images)]} the analysis listed"
        )
    return images


def _image(record: bytes, shape: tuple, spec: DataSpec, where: str) -> np.ndarray:
    try:
        raw = feature_bytes(record, IMAGE_KEY)
    except ValueError:
        raise InputError(f"{where} is not a tf.Example") from None
    if len(raw) != 1 or len(raw[0]) != spec.image_bytes:
        raise InputError(
            f"{where} has no {spec.image_bytes}-byte '{IMAGE_KEY}' feature (the run's data spec is {spec.describe()})"
        )
    return np.frombuffer(raw[0], dtype=np.uint8).reshape(shape)
