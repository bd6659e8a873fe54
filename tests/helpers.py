"""Helpers the tests share: seeded tiny models, a planted regression, and the one command launcher."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from evalsuite.run.contract import BOTH_RIGHT, BOTH_WRONG, NEWLY_RIGHT, NEWLY_WRONG

SEED = 7


def train_and_export(x, y, epochs: int, path: Path, seed: int = SEED, spec=None) -> Path:
    """A real classic-MLP SavedModel, trained on uint8 images `x` (MNIST-shaped unless `spec` says otherwise)."""
    import keras
    import tensorflow as tf

    from evalsuite.data.spec import MNIST
    from training.model import build_model, export_saved_model, scale_images

    spec = spec or MNIST

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(spec)
    model.fit(scale_images(x, spec), y, epochs=epochs, batch_size=32, verbose=0)
    export_saved_model(model, path, spec)
    return path


def never_predicts(model_path: Path, class_id: int, path: Path, num_classes: int = 10) -> Path:
    """A planted regression: the model at `model_path`, except that it never predicts `class_id`.

    A real SavedModel with the same serving contract, whose probabilities for
    that class are zeroed and the rest renormalised.
    """
    import tensorflow as tf

    from evalsuite.run.contract import OUTPUT_KEY, SIGNATURE, SIGNATURE_INPUT

    inner = tf.saved_model.load(str(model_path))
    mask = tf.constant([0.0 if c == class_id else 1.0 for c in range(num_classes)])

    class Planted(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SIGNATURE_INPUT)])
        def serve(self, examples):
            probabilities = self.inner.signatures[SIGNATURE](examples)[OUTPUT_KEY] * mask
            return {OUTPUT_KEY: probabilities / tf.reduce_sum(probabilities, axis=1, keepdims=True)}

    module = Planted()
    tf.saved_model.save(module, str(path), signatures={SIGNATURE: module.serve})
    return path


def predict_probabilities(model_path: Path, records: list[bytes]) -> np.ndarray:
    """Plain batched predictions through the SavedModel's serving signature."""
    import tensorflow as tf

    signature = tf.saved_model.load(str(model_path)).signatures["serving_default"]
    return signature(examples=tf.constant(records))["probabilities"].numpy()


def run_command(module: str, *args: str, cwd=None, timeout: float = 1800, env: dict | None = None):
    """A command as users run it: `python -m MODULE ARGS` in its own process."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def start_command(module: str, *args: str) -> subprocess.Popen:
    """The same, started in the background (its stdout readable line by line)."""
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )


def run_pipeline(*args: str, timeout: float = 1800):
    return run_command("pipeline", *args, timeout=timeout)


def analyse_and_gate(run_dir: Path, baseline, candidate, eval_data: Path, *extra: str) -> int:
    """`python -m analysis` then `python -m gates` on two SavedModels, in this process (TFMA imported once)."""
    from analysis.__main__ import main as analysis_main
    from gates.__main__ import main as gate_main

    run_dir.mkdir(parents=True, exist_ok=True)
    models = ["--baseline", str(baseline), "--candidate", str(candidate), "--eval-data", str(eval_data)]
    code = analysis_main(["--run-dir", str(run_dir), *models, "-q", *extra])
    if code != 0:
        return code
    rules = [arg for pair in zip(extra, extra[1:]) if pair[0] == "--rules" for arg in pair]
    return gate_main(["--run-dir", str(run_dir), "-q", *rules])


def error_lines(stderr: str) -> list[str]:
    """Our own error lines, and any traceback (which must never appear without --debug)."""
    return [line for line in stderr.splitlines() if line.startswith("error:") or "Traceback" in line]


def cells_of(base: np.ndarray, cand: np.ndarray) -> dict:
    return {
        BOTH_RIGHT: int(np.sum(base & cand)),
        NEWLY_RIGHT: int(np.sum(~base & cand)),
        NEWLY_WRONG: int(np.sum(base & ~cand)),
        BOTH_WRONG: int(np.sum(~base & ~cand)),
    }


def counts_of(base: np.ndarray, cand: np.ndarray) -> dict:
    """What analysis/recipe_counts.py keeps for one slice, from (seeds, examples) right/wrong matrices."""
    outcome = cand.sum(axis=0) - base.sum(axis=0)
    seeds = len(base)
    floor = lambda right: sum(  # noqa: E731 - every ordered pair of seeds, visited (the metric does not)
        int(np.sum(right[a] & ~right[b])) for a in range(seeds) for b in range(seeds) if a != b
    )
    return {
        "per_seed": [cells_of(b, c) for b, c in zip(base, cand)],
        "outcome_sum": int(outcome.sum()),
        "outcome_square_sum": int((outcome**2).sum()),
        "floor_candidates": floor(cand),
        "floor_baselines": floor(base),
    }


COLOURS = {"apple": (200, 30, 30), "leaf": (30, 160, 40)}


def write_image(path: Path, pixels: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def colour_folders(root: Path, per_class: int = 30, size=(20, 20), seed: int = 0) -> Path:
    """Two classes of small colour pictures (a noisy red or green square), as PNG, JPEG, BMP and GIF."""
    rng = np.random.default_rng(seed)
    suffixes = (".png", ".jpg", ".bmp", ".gif")
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for name, colour in COLOURS.items():
            for index in range(count):
                pixels = rng.integers(0, 60, (*size, 3), dtype=np.uint8)
                top, left = rng.integers(0, size[0] // 2, 2)
                pixels[top : top + size[0] // 2, left : left + size[1] // 2] = colour
                write_image(root / split / name / f"{index:03d}{suffixes[index % len(suffixes)]}", pixels)
    return root


def small_npz(path: Path, classes: int, side: int, per_class: int = 6, channels: int = 0, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    shape = (side, side) if not channels else (side, side, channels)
    labels = np.repeat(np.arange(classes), per_class)
    images = rng.integers(0, 256, (len(labels), *shape), dtype=np.uint8)
    np.savez(path, x_train=images, y_train=labels, x_test=images[::2], y_test=labels[::2])
    return path
