"""Helpers the tests share: seeded tiny models and plain predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SEED = 7


def train_and_export(x, y, epochs: int, path: Path, seed: int = SEED) -> Path:
    """A real classic-MLP SavedModel, trained on uint8 images `x`."""
    import keras
    import tensorflow as tf

    from training.model import build_model, export_saved_model, scale_images

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model()
    model.fit(scale_images(x), y, epochs=epochs, batch_size=32, verbose=0)
    export_saved_model(model, path)
    return path


def predict_probabilities(model_path: Path, records: list[bytes]) -> np.ndarray:
    """Plain batched predictions through the SavedModel's serving signature."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_path)).signatures["serving_default"]
    return signature(examples=tf.constant(records))["probabilities"].numpy()
