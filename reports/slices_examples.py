"""The changed examples the slicing browser shows: which slices each one is in, and a small image of it.

Every changed example (analysis/changed.json) belongs to overall, to its class,
to one value of each declared slice feature (read from the evaluation
TFRecords, without TensorFlow) and to every discovered slice whose members
hold it. Per slice, the most confident few of each kind of change are shown;
the page's images are bounded in bytes, handed out in rounds (each slice's
first example, then each slice's second, ...), so a run of 1,000 classes
shows a few images of every slice rather than all of a few, and the rest are
counted, not drawn.
"""

from __future__ import annotations

import base64
import math
import struct
import zlib

import numpy as np

from evalsuite.data.slice_features import slice_id
from evalsuite.errors import InputError
from evalsuite.run.contract import NEWLY_RIGHT, NEWLY_WRONG, class_slice
from evalsuite.run.literal_paths import matching_files
from reports.tfrecord import _fields, _varint, read_images, read_records

PER_SLICE = 12  # of each kind of change per slice, at most
IMAGE_BUDGET = 2_500_000  # bytes of embedded images (base64) in the page, at most
THUMBNAIL_SIDE = 64  # larger images are shrunk (block means) to at most this many pixels a side
CHANGES = (NEWLY_WRONG, NEWLY_RIGHT)


def feature_values(pattern: str, names: tuple[str, ...], indices) -> dict[int, dict[str, str]]:
    """{index: {feature: value as its slice id writes it}} for the examples at `indices` (shard order)."""
    wanted = sorted(set(int(i) for i in indices))
    if not wanted or not names:
        return {index: {} for index in wanted}
    files = matching_files(pattern)
    if not files:
        raise InputError(f"{pattern}: no TFRecord files match")
    found: dict[int, dict[str, str]] = {}
    position = 0
    for path in files:
        for record in read_records(path):
            if position == wanted[len(found)]:
                try:
                    values = scalar_features(record, names)
                except ValueError:
                    raise InputError(f"{pattern}: record {position} is not a tf.Example") from None
                missing = [name for name in names if name not in values]
                if missing:
                    raise InputError(f"{pattern}: record {position} has no slice feature {missing[0]!r}")
                found[position] = values
                if len(found) == len(wanted):
                    return found
            position += 1
    raise InputError(f"{pattern}: holds {position} examples, not the example {wanted[len(found)]} the analysis listed")


def scalar_features(example: bytes, names: tuple[str, ...]) -> dict[str, str]:
    """The single int64 or bytes value of each named feature of a serialized tf.Example, as text.

    tf.Example: Example {Features features = 1}; Features {map<string, Feature> feature = 1};
    Feature {BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3}; a later map
    entry of the same key wins, as protobuf parses it. Raises ValueError for bytes that are no tf.Example.
    """
    values: dict[str, str] = {}
    for features in (value for number, wire, value in _fields(example) if number == 1 and wire == 2):
        for number, wire, entry in _fields(features):
            if number != 1 or wire != 2:
                continue
            key, feature = None, b""
            for part_number, part_wire, part in _fields(entry):
                if part_number == 1 and part_wire == 2:
                    key = part.decode("utf-8")
                elif part_number == 2 and part_wire == 2:
                    feature += part
            if key in names:
                value = _single_value(feature)
                if value is not None:
                    values[key] = value
                else:
                    values.pop(key, None)
    return values


def _single_value(feature: bytes) -> str | None:
    found: list[str] = []
    for number, wire, listed in _fields(feature):
        if wire != 2:
            continue
        if number == 1:
            found = [item.decode("utf-8") for n, w, item in _fields(listed) if n == 1 and w == 2]
        elif number == 3:
            found = []
            for n, w, item in _fields(listed):
                if n == 1 and w == 0:
                    found.append(str(_signed(item)))
                elif n == 1 and w == 2:  # packed
                    position = 0
                    while position < len(item):
                        value, position = _varint(item, position)
                        found.append(str(_signed(value)))
        elif number == 2:
            found = []
    return found[0] if len(found) == 1 else None


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def png(pixels: np.ndarray) -> bytes:
    """An 8-bit PNG of grey (H, W) or colour (H, W, 3 or 4) pixels: stdlib zlib only, the same bytes every time."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 3 and pixels.shape[2] not in (3, 4):
        pixels = np.ascontiguousarray(pixels[:, :, 0])
    height, width = pixels.shape[:2]
    colour = 0 if pixels.ndim == 2 else (2 if pixels.shape[2] == 3 else 6)
    rows = pixels.reshape(height, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def thumbnail(image: np.ndarray) -> np.ndarray:
    """At most THUMBNAIL_SIDE pixels a side: block means over whole blocks (small images unchanged)."""
    height, width = image.shape[:2]
    factor = math.ceil(max(height, width) / THUMBNAIL_SIDE)
    if factor <= 1:
        return image
    height, width = height // factor * factor, width // factor * factor
    blocks = image[:height, :width].astype(np.float64)
    shape = (height // factor, factor, width // factor, factor) + blocks.shape[2:]
    return np.rint(blocks.reshape(shape).mean(axis=(1, 3))).astype(np.uint8)


def members_of_changed(
    changed: dict, summary: dict, discovered: dict, values: dict[int, dict[str, str]]
) -> dict[str, list[dict]]:
    """{slice id: its changed examples, most confident candidate first}: overall, classes, features, discovered."""
    ranked = sorted(changed["examples"], key=lambda e: (-e["candidate"]["confidence"], e["index"]))
    known = set(summary["models"]["candidate"])
    found: dict[str, list[dict]] = {}
    for example in ranked:
        found.setdefault(class_slice(example["label"]), []).append(example)
        for name, value in values.get(example["index"], {}).items():
            sid = slice_id(name, value)
            if sid in known:
                found.setdefault(sid, []).append(example)
    # In the table's order (overall, the classes, each feature's values, discovered): the order images are handed out.
    order = list(summary.get("slices") or []) + [sid for sids in (summary.get("feature_slices") or {}).values() for sid in sids]
    by_slice = {"overall": ranked, **{sid: found.pop(sid) for sid in order if sid in found}, **dict(sorted(found.items()))}
    for kept in discovered.get("slices", []):
        members = set(kept["members"])
        by_slice[discovered_id(kept)] = [e for e in ranked if e["index"] in members]
    return by_slice


def discovered_id(found: dict) -> str:
    """A discovered slice's id in the browser (kept apart from TFMA's slice ids)."""
    return f"discovered:{found['id']}"


def choose_shown(by_slice: dict[str, list[dict]], extra: dict[str, list[int]], sizes: dict[int, int]) -> dict:
    """Which examples each slice shows: per slice and kind, the first few, handed out in rounds within the budget.

    `extra`: further indices a slice shows (a discovered slice's members both models get right);
    `sizes`: each index's image size in bytes. Returns {sid: {kind: [index, ...]}}.
    """
    queues = {
        sid: {kind: [e["index"] for e in examples if e["change"] == kind][:PER_SLICE] for kind in CHANGES}
        for sid, examples in by_slice.items()
    }
    for sid, indices in extra.items():
        queues.setdefault(sid, {kind: [] for kind in CHANGES})["both_right"] = list(indices)[:PER_SLICE]
    shown: dict[str, dict[str, list[int]]] = {sid: {kind: [] for kind in queue} for sid, queue in queues.items()}
    included: set[int] = set()
    spent = 0
    for turn in range(PER_SLICE):
        for sid in queues:
            for kind, queue in queues[sid].items():
                if turn >= len(queue):
                    continue
                index = queue[turn]
                if index not in included:
                    if spent + sizes[index] > IMAGE_BUDGET:
                        continue
                    included.add(index)
                    spent += sizes[index]
                shown[sid][kind].append(index)
    return shown


def candidate_indices(by_slice: dict[str, list[dict]], extra: dict[str, list[int]]) -> list[int]:
    """Every index some slice could show (its first PER_SLICE of each kind): the images worth reading."""
    wanted = set()
    for examples in by_slice.values():
        for kind in CHANGES:
            wanted.update([e["index"] for e in examples if e["change"] == kind][:PER_SLICE])
    for indices in extra.values():
        wanted.update(list(indices)[:PER_SLICE])
    return sorted(wanted)


def example_images(pattern: str, spec, indices: list[int]) -> dict[int, str]:
    """{index: base64 PNG} of each example's image, shrunk to a thumbnail."""
    images = read_images(pattern, spec, indices)
    return {index: base64.b64encode(png(thumbnail(image))).decode("ascii") for index, image in images.items()}
