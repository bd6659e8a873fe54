"""Where each evaluation example sits in the baseline model's own representation: the input of its last layer.

Read from the Keras file beside the baseline's SavedModel (training writes
`models/<run>.keras`, the registry `model.keras`), checked to give the
SavedModel's own predictions, and reduced by a seeded random projection when
they would not fit in memory whole (a million examples). A model with no readable Keras file (a
SavedModel handed in alone, a layer Keras cannot load) has no representation;
discovery then proposes image-property slices only and says why.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalsuite.data.spec import DataSpec
from evalsuite.run.serving import scale_images

PROJECTED = 32  # dimensions kept: distances survive a random projection this wide well enough to cluster
FULL_LIMIT = 1 << 24  # activations kept whole up to this many values (64 MB), projected beyond
AGREEMENT = 1e-4  # largest difference in any probability between the Keras file and the SavedModel


class Unreadable(Exception):
    """The baseline's representation cannot be read; the message says why, in one line."""


class Representation:
    def __init__(self, model_path: Path, spec: DataSpec, seed: int, examples: int):
        keras_file = model_path.parent / f"{model_path.name}.keras"
        if not keras_file.is_file():
            raise Unreadable(f"{model_path} has no Keras file beside it ({keras_file.name})")
        import keras

        try:
            model = keras.saving.load_model(str(keras_file), compile=False)
            last = next(layer for layer in reversed(model.layers) if layer.weights)
            self.model = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, last.input)
        except Exception as error:  # a user's layer Keras cannot rebuild, a model without inputs
            reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            raise Unreadable(f"{keras_file}: its layers cannot be read ({reason})") from None
        self.full = model
        self.spec = spec
        self.seed = seed
        self.examples = examples
        self.checked = False
        self.projection: np.ndarray | None = None

    def __call__(self, images: np.ndarray, served_classes: np.ndarray, served_confidences: np.ndarray) -> np.ndarray:
        """Projected activations of `images` (uint8); the SavedModel predicted `served_classes` with those confidences."""
        scaled = scale_images(images, self.spec)
        if not self.checked:
            own = np.asarray(self.full(scaled, training=False))
            rows = np.arange(len(images))
            agrees = (
                own.shape == (len(images), self.spec.num_classes)
                # The served class has the served probability, and no class is more probable beyond rounding.
                and float(np.max(np.abs(own[rows, served_classes] - served_confidences), initial=0)) <= AGREEMENT
                and float(np.max(own.max(axis=1) - served_confidences, initial=0)) <= AGREEMENT
            )
            if not agrees:
                raise Unreadable("the Keras file beside the baseline does not give its SavedModel's predictions")
            self.checked = True
        activations = np.asarray(self.model(scaled, training=False), dtype=np.float32).reshape(len(images), -1)
        if self.projection is None:
            width = activations.shape[1]
            if width <= PROJECTED or width * self.examples <= FULL_LIMIT:
                self.projection = np.eye(width, dtype=np.float32)
            else:
                rng = np.random.default_rng(self.seed)
                self.projection = (rng.standard_normal((width, PROJECTED)) / np.sqrt(PROJECTED)).astype(np.float32)
        return activations @ self.projection
