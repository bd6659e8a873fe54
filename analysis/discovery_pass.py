"""What discovery reads of every evaluation example: read after TFMA's pass, in the files' order.

Per batch: the images' properties, and the baseline's representation when its
Keras file can be read, checked against the predictions TFMA's pass recorded.
A representation that cannot be read is a warning and a fall-back to
properties, never an error: discovery does not turn a good run into a failed
one.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from analysis.discovery import discover
from analysis.image_properties import image_properties
from analysis.representation import Representation, Unreadable
from evalsuite.data.spec import DataSpec
from evalsuite.run.contract import IMAGE_KEY
from evalsuite.run.literal_paths import matching_files

SWITCH = "EVALSUITE_DISCOVERY"
BATCH = 1024  # examples read at a time


class DiscoveryInputs:
    """Each example's image properties and representation, written batch by batch into arrays made once.

    The arrays are sized for the examples the analysis counted, so a million examples are held once,
    not once in pieces and again joined.
    """

    def __init__(self, baseline_path: Path, spec: DataSpec, seed: int, examples: int):
        self.spec = spec
        self.seed = seed
        self.examples = examples
        self.filled = 0
        self.properties: dict[str, np.ndarray] = {}
        self.representation: np.ndarray | None = None
        self.note: str | None = None
        try:
            self.represent: Representation | None = Representation(baseline_path, spec, seed, examples)
        except Unreadable as why:
            self._give_up(str(why))

    def _give_up(self, why: str) -> None:
        self.represent, self.representation = None, None
        self.note = f"image properties only: {why}"

    def read(self, pattern: str, baseline_classes: np.ndarray, baseline_confidences: np.ndarray) -> None:
        """Every example's columns, from the files in order; the baseline's predictions are TFMA's, in the same order.

        (Read on a thread beside TFMA's pass, or inside the pass on its workers, the same work made the
        analysis slower on two cores, not faster: docs/scale.md.)
        """
        import tensorflow as tf

        shape = (self.spec.height, self.spec.width) if self.spec.channels == 1 else self.spec.input_shape
        layout = {IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)}

        def pixels(records):
            return tf.io.decode_raw(tf.io.parse_example(records, layout)[IMAGE_KEY], tf.uint8)

        # Parsed and decoded by TensorFlow ahead of the numpy work, never as a Python object per example.
        batches = tf.data.TFRecordDataset(matching_files(pattern)).batch(BATCH).map(pixels).prefetch(2)
        for images in batches.as_numpy_iterator():
            at = slice(self.filled, self.filled + len(images))
            self._add(images.reshape(-1, *shape), baseline_classes[at], baseline_confidences[at])

    def _add(self, images: np.ndarray, baseline_classes: np.ndarray, baseline_confidences: np.ndarray) -> None:
        rows = slice(self.filled, self.filled + len(images))
        self.filled = rows.stop
        if rows.stop > self.examples:
            return  # the files hold more than were counted: `discovered` says so, the analysis goes on
        for name, values in image_properties(images).items():
            if name not in self.properties:
                self.properties[name] = np.empty(self.examples, dtype=values.dtype)
            self.properties[name][rows] = values
        if self.represent is not None:
            try:
                projected = self.represent(images, baseline_classes, baseline_confidences)
                if self.representation is None:
                    self.representation = np.empty((self.examples, projected.shape[1]), dtype=projected.dtype)
                self.representation[rows] = projected
            except Unreadable as why:
                self._give_up(str(why))

    def discovered(self, outcomes: dict, *, alpha: float, max_drop: float | None, class_names) -> dict:
        if self.filled != self.examples:
            raise ValueError(f"{self.filled} examples read, {self.examples} counted before")
        return discover(
            outcomes["labels"],
            outcomes["base_right"],
            outcomes["cand_right"],
            self.properties,
            self.representation,
            seed=self.seed,
            alpha=alpha,
            max_drop=max_drop,
            class_names=class_names,
            channels=self.spec.channels,
            representation_note=self.note,
        )


def discovery_enabled() -> bool:
    """EVALSUITE_DISCOVERY=off skips discovery (to measure what it costs, or on a set too large to wait for)."""
    return os.environ.get(SWITCH, "").strip().lower() != "off"


def find_regressed_slices(inputs: DiscoveryInputs | None, outcomes: dict, rules, summary: dict, log) -> dict:
    """discovered.json's content; a discovery that cannot run says why in it and warns, the analysis goes on."""
    import time

    from evalsuite import progress

    if inputs is None:
        return {"skipped": f"discovery turned off ({SWITCH}=off)", "slices": []}
    started = time.perf_counter()
    try:
        discovered = inputs.discovered(
            outcomes, alpha=rules.alpha, max_drop=rules.max_drop, class_names=summary["eval_data"].get("class_names")
        )
    except (ValueError, MemoryError, ArithmeticError) as error:
        reason = f"discovery could not run ({type(error).__name__}: {str(error).splitlines()[0][:120] if str(error) else ''})"
        progress.warn(f"analysis: {reason}; the other checks stand")
        return {"skipped": reason, "slices": []}
    if inputs.note:
        progress.warn(f"analysis: discovery used {inputs.note}")
    regressed = [found for found in discovered["slices"] if found["status"] == "regressed"]
    log(
        f"analysis: discovery scored {discovered['candidates']['total']} candidate slices on "
        f"{discovered['halves']['discovery']} examples, kept {len(discovered['slices'])}, "
        f"{len(regressed)} regressed on the other {discovered['halves']['confirmation']} "
        f"({time.perf_counter() - started:.1f}s)"
    )
    return discovered
