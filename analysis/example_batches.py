"""The evaluation examples as Arrow record batches, read a file at a time: TFMA's input without a Beam element per example.

TFMA's own `run_model_analysis` reads TFRecords with Beam's record-at-a-time
reader and batches them again; at 300,000 examples that per-element handling
costs seconds. Here each shard is one element: a worker reads it with
TensorFlow's reader and decodes it in batches with the same tfx_bsl decoder and
raw-record column TFMA's TFExampleRecord source produces, so the extracts are
the ones TFMA would build. Shards are the unit of parallel work.

Each batch also carries every example's position (its shard's number and its
place in the shard, `analysis/outcome_table.py`), so the rows TFMA's pass
writes can be put back in the files' order without reading the files again.
"""

from __future__ import annotations

import apache_beam as beam

from analysis.outcome_table import PLACE_MASK, POSITION_FEATURE, positions

BATCH_SIZE = 1000  # records per batch: the cap of the adaptive batches TFMA's own reader makes (tfx_bsl's)


class _DecodeShard(beam.DoFn):
    """One TFRecord file of tf.Examples into record batches, in file order, each example's position beside it."""

    def __init__(self, raw_record_column: str, batch_size: int):
        self.raw_record_column = raw_record_column
        self.batch_size = batch_size

    def setup(self):
        from tfx_bsl.coders import example_coder

        self.decoder = example_coder.ExamplesToRecordBatchDecoder()

    def process(self, shard: tuple[int, str]):
        import numpy as np
        import pyarrow as pa
        import tensorflow as tf
        from tfx_bsl.tfxio.record_based_tfxio import AppendRawRecordColumn

        number, path = shard
        start = 0
        for records in tf.data.TFRecordDataset(path).batch(self.batch_size).as_numpy_iterator():
            records = records.tolist()
            batch = AppendRawRecordColumn(self.decoder.DecodeBatch(records), self.raw_record_column, records)
            if POSITION_FEATURE in batch.schema.names:
                raise ValueError(f"a feature named {POSITION_FEATURE} (a name kept for positions) in {path}")
            if start + len(records) > PLACE_MASK + 1:
                raise ValueError(f"more than {PLACE_MASK + 1} examples in one file, {path}")
            # One value per example, as the decoder gives every int64 feature.
            at = pa.LargeListArray.from_arrays(
                pa.array(np.arange(len(records) + 1), pa.int64()), pa.array(positions(number, start, len(records)))
            )
            start += len(records)
            yield batch.append_column(POSITION_FEATURE, at)


@beam.ptransform_fn
def ReadExampleBatches(pipeline, files: list[str], ordered: bool = False, batch_size: int = BATCH_SIZE):  # noqa: N802  (Beam's naming)
    """PCollection[pyarrow.RecordBatch] of every example in `files` (literal paths, never globbed).

    `ordered` keeps the shards in order on every runner (the jackknife draws its buckets in the order
    examples arrive); otherwise Beam may shuffle them across workers.
    """
    from tensorflow_model_analysis import constants

    return (
        pipeline
        | "Shards" >> beam.Create(list(enumerate(files)), reshuffle=not ordered)
        | "DecodeShards" >> beam.ParDo(_DecodeShard(constants.ARROW_INPUT_COLUMN, batch_size))
    )
