"""The classic Keras MNIST MLP and its export as a SavedModel TFMA can read."""

from __future__ import annotations

from pathlib import Path

from evalsuite.contract import IMAGE_KEY, OUTPUT_KEY, SIGNATURE, SIGNATURE_INPUT

# Several steps per call into TensorFlow: the same updates in the same order (bitwise
# the same weights under op determinism), far less per-step Python overhead.
STEPS_PER_EXECUTION = 25


def build_model(steps_per_execution: int = 1):
    """Flatten, Dense 512 relu, Dropout 0.2, Dense 10 softmax; adam; sparse CE."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28), name="image"),
            keras.layers.Flatten(),
            keras.layers.Dense(512, activation="relu"),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name="mnist_mlp",
    )
    # Keras 3: the third positional argument of compile is loss_weights, not metrics.
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        steps_per_execution=steps_per_execution,
    )
    return model


def export_saved_model(model, path: Path) -> None:
    """Export `model` with a `serving_default` that parses serialized tf.Example.

    The image arrives as 784 raw bytes and is scaled here exactly as in
    training, so TFMA evaluates what was trained, on compact examples.
    """
    import keras
    import tensorflow as tf

    def serve(examples):
        parsed = tf.io.parse_example(examples, {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        pixels = tf.io.decode_raw(parsed[IMAGE_KEY], tf.uint8)
        images = tf.reshape(tf.cast(pixels, tf.float32) / 255.0, [-1, 28, 28])
        return {OUTPUT_KEY: model(images, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE, fn=serve, input_signature=[tf.TensorSpec([None], tf.string, name=SIGNATURE_INPUT)]
    )
    archive.write_out(str(path), verbose=False)


def scale_images(images):
    """uint8 pixels to float32 in 0..1, as the serving signature does."""
    import numpy as np

    return images.astype(np.float32) / 255.0


def write_op_graph(model, logs_dir: Path) -> None:
    """Write the model's op graph for TensorBoard's Graphs dashboard.

    Keras 3's TensorBoard callback writes only the conceptual graph.
    """
    import tensorflow as tf

    forward = tf.function(lambda images: model(images, training=False))
    concrete = forward.get_concrete_function(tf.TensorSpec([None, 28, 28], tf.float32, name="images"))
    writer = tf.summary.create_file_writer(str(logs_dir))
    with writer.as_default():
        tf.summary.graph(concrete.graph)
    writer.close()
