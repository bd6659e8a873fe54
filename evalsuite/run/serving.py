"""The serving contract, in code: a Keras model exported as the SavedModel TFMA reads.

Training exports its models with it, and the analysis wraps a `.keras` file
handed in as a baseline or candidate the same way, so both meet TFMA through
one signature: a batch of serialized tf.Example in, `probabilities` (N, K) out.
"""

from __future__ import annotations

from pathlib import Path

from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError
from evalsuite.run.contract import IMAGE_KEY, OUTPUT_KEY, SIGNATURE, SIGNATURE_INPUT


def scale_images(images, spec: DataSpec):
    """uint8 pixels to float32 in 0..1, shaped (N, H, W, C), as the serving signature does."""
    import numpy as np

    return (images.astype(np.float32) / 255.0).reshape(-1, *spec.input_shape)


def export_saved_model(model, path: Path, spec: DataSpec) -> None:
    """Export `model` with a `serving_default` that parses serialized tf.Example.

    The image arrives as its raw uint8 bytes (the data spec's height x width x
    channels) and is scaled here exactly as in training, so TFMA evaluates what
    was trained, on compact examples.
    """
    import keras
    import tensorflow as tf

    def serve(examples):
        parsed = tf.io.parse_example(examples, {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        pixels = tf.io.decode_raw(parsed[IMAGE_KEY], tf.uint8)
        images = tf.reshape(tf.cast(pixels, tf.float32) / 255.0, [-1, *spec.input_shape])
        return {OUTPUT_KEY: model(images, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE, fn=serve, input_signature=[tf.TensorSpec([None], tf.string, name=SIGNATURE_INPUT)]
    )
    archive.write_out(str(path), verbose=False)


def check_fits(model, spec: DataSpec, where: str) -> None:
    """One input of (height, width, channels) and one output of K classes, else one line saying what differs."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise InputError(f"{where}: the model must take one input of shape {spec.input_shape}")
    shape = tuple(inputs[0].shape[1:])
    if len(shape) != 3 or any(got not in (None, want) for got, want in zip(shape, spec.input_shape)):
        raise InputError(
            f"{where}: the model takes {shape}, the run's data are {spec.input_shape} (height, width, channels)"
        )
    outputs = getattr(model, "outputs", None) or []
    if len(outputs) != 1 or tuple(outputs[0].shape[1:]) != (spec.num_classes,):
        got = [tuple(output.shape[1:]) for output in outputs]
        raise InputError(
            f"{where}: the model outputs {got[0] if len(got) == 1 else got}, the data have {spec.num_classes} "
            f"classes; end it with Dense({spec.num_classes}, activation='softmax')"
        )
