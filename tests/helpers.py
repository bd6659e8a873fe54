"""Helpers the tests share: seeded tiny models and plain predictions."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_pipeline(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """The pipeline as users run it: its own process, its own command line."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(
        [sys.executable, "-m", "evalsuite", *args], capture_output=True, text=True, env=env, timeout=timeout
    )
