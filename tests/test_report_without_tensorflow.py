"""The report reads TFRecords and writes TensorBoard summaries without TensorFlow, exactly as TensorFlow would."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalsuite.data.spec import MNIST
from evalsuite.errors import InputError
from tests.helpers import error_lines


def _accumulator(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={"tensors": 0, "images": 0, "scalars": 0})
    accumulator.Reload()
    return accumulator


def _runs(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())["stages"]["training"]["runs"]


def test_every_tensorboard_scalar_is_the_summarys_number(tiny_run):
    from tensorboard.util import tensor_util

    summary = json.loads((tiny_run / "analysis" / "summary.json").read_text())
    runs = _runs(tiny_run)
    for role in ("baseline", "candidate"):
        label = summary[role]["label"]
        accumulator = _accumulator(tiny_run / "logs" / label / "tfma")
        scalars = {
            tag: accumulator.Tensors(tag)
            for tag in accumulator.Tags()["tensors"]
            if accumulator.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
        }
        expected = {f"tfma/accuracy/{sid}": m["accuracy"] for sid, m in summary["models"][role].items()}
        if role == "candidate":
            expected |= {f"tfma/delta_vs_baseline/{sid}": d["accuracy"] for sid, d in summary["deltas"].items()}
        assert set(scalars) == set(expected)
        for tag, events in scalars.items():
            (event,) = events
            assert event.step == runs[label]["epochs"], tag
            assert tensor_util.make_ndarray(event.tensor_proto) == np.float32(expected[tag]), tag


def _tf_summaries(folder: Path, role: str, summary: dict, table: str, confusion: dict, grids: dict, step: int):
    """What the report wrote before, with tf.summary (the reference the TF-free writer must match)."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(folder))
    with writer.as_default():
        for sid, metrics in summary["models"][role].items():
            description = f"TFMA SparseCategoricalAccuracy on slice {sid}"
            tf.summary.scalar(f"tfma/accuracy/{sid}", metrics["accuracy"], step=step, description=description)
            if role == "candidate":
                tf.summary.scalar(f"tfma/delta_vs_baseline/{sid}", summary["deltas"][sid]["accuracy"], step=step)
        tf.summary.image("tfma/confusion_matrix", tf.io.decode_png(confusion[role], channels=4)[None], step=step)
        tf.summary.text("tfma/per_class_accuracy", table, step=step)
        if role == "candidate":
            for change, png in grids.items():
                tf.summary.image(f"tfma/{change}_examples", tf.io.decode_png(png, channels=4)[None], step=step)
    writer.close()


def test_the_summaries_are_what_tf_summary_writes(run_copy, tmp_path):
    """Same tags, steps, plugin metadata, values, text and image pixels as tf.summary gives."""
    import tensorflow as tf
    from tensorboard.util import tensor_util

    from evalsuite.run.contract import load_changed, load_summary
    from evalsuite.run.folder import RunDir
    from evalsuite.tables import P_NOTE, markdown, per_class_table
    from reports.html_report import changed_grids, confusion_figures
    from reports.tensorboard_summaries import write_tfma_summaries

    run = RunDir(run_copy)
    summary, changed = load_summary(run.analysis_dir), load_changed(run.analysis_dir)
    grids, confusion = changed_grids(run, changed, summary), confusion_figures(summary)
    manifest = run.read_manifest()
    write_tfma_summaries(run, manifest, summary, changed, grids, confusion)
    table = markdown(per_class_table(summary)) + f"\n\n{P_NOTE}."
    for role in ("baseline", "candidate"):
        label = summary[role]["label"]
        reference = tmp_path / role
        _tf_summaries(reference, role, summary, table, confusion, grids, _runs(run_copy)[label]["epochs"])
        ours, theirs = _accumulator(run_copy / "logs" / label / "tfma"), _accumulator(reference)
        assert ours.Tags()["tensors"] == theirs.Tags()["tensors"]
        for tag in theirs.Tags()["tensors"]:
            assert ours.SummaryMetadata(tag) == theirs.SummaryMetadata(tag), tag
            (mine,), (reference_event,) = ours.Tensors(tag), theirs.Tensors(tag)
            assert mine.step == reference_event.step, tag
            if ours.SummaryMetadata(tag).plugin_data.plugin_name != "images":
                assert mine.tensor_proto == reference_event.tensor_proto, tag
                continue
            (width, height, png), (tf_width, tf_height, tf_png) = (
                tensor_util.make_ndarray(event.tensor_proto) for event in (mine, reference_event)
            )
            assert (width, height) == (tf_width, tf_height), tag
            np.testing.assert_array_equal(tf.io.decode_png(png).numpy(), tf.io.decode_png(tf_png).numpy())


def test_training_curves_read_as_tensorboard_reads_them(tiny_run):
    from tensorboard.util import tensor_util

    from reports.curves import CURVE_TAGS, read_curves

    for info in _runs(tiny_run).values():
        curves = read_curves(tiny_run / info["logs"])
        assert set(curves) == {"train", "validation"}
        for split, series in curves.items():
            accumulator = _accumulator(tiny_run / info["logs"] / split)
            expected = {
                tag: [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]
                for tag in CURVE_TAGS
            }
            assert series == expected and all(expected.values())


def test_the_images_are_those_tensorflow_reads(tiny_run):
    from evalsuite.data.examples import read_images as read_with_tensorflow
    from reports.tfrecord import read_images

    pattern = str(tiny_run / "data" / "eval-*.tfrecord")
    wanted = [299, 0, 5, 5, 150]
    ours, theirs = read_images(pattern, MNIST, wanted), read_with_tensorflow(pattern, MNIST, wanted)
    assert sorted(ours) == sorted(theirs) == [0, 5, 150, 299]
    for index in ours:
        np.testing.assert_array_equal(ours[index], theirs[index])
    assert read_images(pattern, MNIST, []) == {}
    with pytest.raises(InputError, match="holds 300 examples, not the example 300 the analysis listed"):
        read_images(pattern, MNIST, [3, 300])


def _records(tiny_run) -> list[bytes]:
    from reports.tfrecord import read_records

    (shard,) = sorted((tiny_run / "data").glob("eval-*.tfrecord"))
    return list(read_records(shard))


def test_tfrecord_framing_and_checksums_match_tensorflows(tiny_run, tmp_path):
    import tensorflow as tf

    from reports.tfrecord import frame

    records = _records(tiny_run)
    (shard,) = sorted((tiny_run / "data").glob("eval-*.tfrecord"))
    assert records == [record.numpy() for record in tf.data.TFRecordDataset(str(shard))]
    assert b"".join(frame(record) for record in records) == shard.read_bytes()


def _huge_length(data: bytes) -> bytes:
    """A well-formed header (its checksum right) claiming 2**40 bytes."""
    from reports.tfrecord import masked_crc32c

    length = struct.pack("<Q", 1 << 40)
    return length + struct.pack("<I", masked_crc32c(length)) + data[12:]


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[:5], "record 0 at byte 0: the file ends inside the record's header"),
        (lambda data: _flip(data, 8), "record 0 at byte 0: its length fails its checksum"),
        (lambda data: _flip(data, 30), "record 0 at byte 0: its data fail their checksum"),
        (lambda data: data[:-3], "record 2 at byte \\d+: its 8\\d\\d bytes run past the end of the file"),
        (_huge_length, "record 0 at byte 0: its 1099511627776 bytes run past the end of the file"),
    ],
)
def test_a_damaged_tfrecord_is_refused_in_one_line(tiny_run, tmp_path, damage, message):
    from reports.tfrecord import frame, read_images

    data = b"".join(frame(record) for record in _records(tiny_run)[:3])
    bad = tmp_path / "eval-00000-of-00001.tfrecord"
    bad.write_bytes(damage(data))
    with pytest.raises(InputError, match=f"^{re.escape(str(bad))}: corrupt TFRecord \\({message}\\)$"):
        read_images(str(tmp_path / "eval-*.tfrecord"), MNIST, [2])


def test_a_record_that_is_no_example_or_no_image_is_named(tiny_run, tmp_path):
    from reports.tfrecord import frame, read_images

    pattern = str(tmp_path / "eval-*.tfrecord")
    records = _records(tiny_run)[:3]
    (tmp_path / "eval-00000-of-00001.tfrecord").write_bytes(b"".join(map(frame, [*records, b"not an example"])))
    with pytest.raises(InputError, match="record 3 is not a tf.Example$"):
        read_images(pattern, MNIST, [3])
    shorter = dataclasses.replace(MNIST, height=27)
    with pytest.raises(InputError, match="record 1 has no 756-byte 'image' feature \\(the run's data spec is "):
        read_images(pattern, shorter, [1])


def test_a_pipe_is_refused_not_waited_on(tmp_path):
    from reports.tfrecord import read_records

    pipe = tmp_path / "eval-00000-of-00001.tfrecord"  # a shard pattern never lists it; a file swapped for one
    os.mkfifo(pipe)
    with pytest.raises(InputError, match="a named pipe \\(FIFO\\), not a TFRecord file"):
        next(read_records(pipe))


def test_the_image_feature_is_parsed_as_protobuf_parses_it(tiny_run):
    """Real records, and thousands of damaged ones: the same image bytes as tf.train.Example, or both refuse."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    from reports.tfrecord import feature_bytes

    def parsed_by_protobuf(record: bytes):
        try:
            return list(tf.train.Example.FromString(record).features.feature["image"].bytes_list.value)
        except DecodeError:
            return "refused"

    def parsed_here(record: bytes):
        try:
            return feature_bytes(record, "image")
        except ValueError:
            return "refused"

    records = _records(tiny_run)
    for record in records:
        assert parsed_here(record) == parsed_by_protobuf(record)
    merged = tf.train.Example()
    merged.features.feature["image"].int64_list.value.append(5)
    merged.features.feature["f"].float_list.value.extend([1.5, 2.0])
    twice = tf.train.Example()
    twice.features.feature["image"].bytes_list.value.extend([b"a", b"b"])
    seeds = [*records[:2], merged.SerializeToString() + twice.SerializeToString(), twice.SerializeToString() * 2]
    rng = random.Random(7)
    for _ in range(3000):
        damaged = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        assert parsed_here(bytes(damaged)) == parsed_by_protobuf(bytes(damaged)), bytes(damaged)


def test_the_report_command_imports_no_tensorflow(run_copy):
    (run_copy / "report" / "index.html").unlink()  # else the report is reused
    probe = (
        "import sys\n"
        "from reports.__main__ import main\n"
        f"code = main(['--run-dir', {str(run_copy)!r}, '-q'])\n"
        "heavy = sorted(name for name in sys.modules if name.split('.')[0] in ('tensorflow', 'keras', 'tf_keras'))\n"
        "print(code, heavy[:5])\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=600)
    assert error_lines(result.stderr) == []
    assert result.stdout.strip().splitlines()[-1] == "0 []"


def test_per_class_legends_sit_beside_the_bars_and_intervals_never_on_them():
    """Two classes (ants, bees): the legends name bars and intervals, sit outside the axes, and every interval
    is inside the delta panel's range."""
    from reports.plots import per_class_plot

    rows = [
        {"title": "overall", "baseline": 0.90, "candidate": 0.86, "delta": -0.04, "interval": (-0.11, 0.03)},
        {"title": "ants", "baseline": 0.95, "candidate": 0.93, "delta": -0.02, "interval": (-0.09, 0.05)},
        {"title": "bees", "baseline": 0.85, "candidate": 0.79, "delta": -0.06, "interval": (-0.16, 0.01)},
    ]
    figure = per_class_plot(rows, "epochs-3", "epochs-6", 0.03)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    top, bottom = figure.axes
    assert [t.get_text() for t in top.get_legend().get_texts()] == ["epochs-3", "epochs-6"]
    labels = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert labels == ["drop", "95% interval of the delta", "allowed drop (0.03)"]  # no class gained
    for axis in (top, bottom):
        legend = axis.get_legend().get_window_extent(renderer)
        marks = [*axis.patches, *axis.lines, *axis.collections]
        assert marks
        for mark in marks:
            assert not legend.overlaps(_extent(mark, axis, renderer)), mark
        assert legend.x0 >= axis.get_window_extent(renderer).x1  # outside the axes, right of them
    low, high = bottom.get_ylim()
    assert all(low < row["interval"][0] and row["interval"][1] < high for row in rows)
    assert low < -0.03 < high


def _extent(mark, axis, renderer):
    """Where a bar, line or interval is drawn (an interval's whiskers are a LineCollection without an extent)."""
    from matplotlib.collections import LineCollection
    from matplotlib.transforms import Bbox

    if isinstance(mark, LineCollection):
        points = axis.transData.transform(np.concatenate(mark.get_segments()))
        return Bbox([points.min(axis=0), points.max(axis=0)])
    return mark.get_window_extent(renderer)
