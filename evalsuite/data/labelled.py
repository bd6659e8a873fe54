"""Labelled images in memory: the `Dataset` every loader returns, its fingerprint, spec and subsets."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from evalsuite.data import slice_features
from evalsuite.data.spec import DataSpec
from evalsuite.errors import InputError

MNIST_CLASSES = 10


@dataclass(frozen=True)
class Dataset:
    """Train and evaluation splits: images uint8 (N, H, W) grey or (N, H, W, 3) colour, labels int64 (N,)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    class_names: tuple[str, ...] | None = None
    num_classes: int = MNIST_CLASSES
    resize: str | None = None
    # Per-example features of the evaluation split to slice by (evalsuite.data.slice_features), aligned with y_test.
    features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    # How the source's pixel values became uint8 when they were not 8-bit (16-bit grey, floats in 0..1).
    pixel_scaling: str | None = None

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        # Only what the arrays cannot say: MNIST-shaped data keeps the fingerprint it always had.
        if self.num_classes != int(max(self.y_train.max(), self.y_test.max())) + 1 or self.resize:
            digest.update(f"{self.num_classes}|{self.resize}".encode())
        return digest.hexdigest()[:16]

    @property
    def features_fingerprint(self) -> str | None:
        return slice_features.features_fingerprint(self.features)

    @property
    def spec(self) -> DataSpec:
        height, width = self.x_train.shape[1:3]
        channels = 1 if self.x_train.ndim == 3 else int(self.x_train.shape[3])
        return DataSpec(
            height=int(height),
            width=int(width),
            channels=channels,
            num_classes=self.num_classes,
            class_names=self.class_names,
            resize=self.resize,
            pixel_scaling=self.pixel_scaling,
        )

    def describe(self) -> dict:
        return {
            "source": self.source,
            "fingerprint": self.fingerprint,
            "train_examples": int(len(self.y_train)),
            "eval_examples": int(len(self.y_test)),
            "eval_examples_per_class": {str(c): int(n) for c, n in zip(*np.unique(self.y_test, return_counts=True))},
            "class_names": list(self.class_names) if self.class_names else None,
            "data_spec": self.spec.as_dict(),
            "features_fingerprint": self.features_fingerprint,
        }

    def named(self, names, where: str) -> "Dataset":
        """The same data with class names (one per class), checked."""
        from evalsuite.data.class_names import check_names

        names = check_names(list(names), where, self.num_classes)
        return dataclasses.replace(self, class_names=tuple(names))

    def subset(self, train: int | None, test: int | None, seed: int) -> "Dataset":
        """A seeded, stratified subset, for quick runs and tests."""
        for flag, count in (("--train-limit", train), ("--eval-limit", test)):
            if count is not None and count < self.num_classes:
                raise InputError(f"{flag}: must be at least {self.num_classes} (one example per class), got {count}")
        kept_train = _stratified_take(self.y_train, train, seed, self.num_classes)
        kept_test = _stratified_take(self.y_test, test, seed + 1, self.num_classes)
        return dataclasses.replace(
            self,
            x_train=self.x_train[kept_train],
            y_train=self.y_train[kept_train],
            x_test=self.x_test[kept_test],
            y_test=self.y_test[kept_test],
            features={name: values[kept_test] for name, values in self.features.items()},
            source=f"{self.source} (subset)",
        )


def _stratified_take(labels, count, seed, num_classes: int = MNIST_CLASSES) -> np.ndarray | slice:
    """Which examples a seeded stratified subset of `count` keeps, in a seeded order (all when None)."""
    if count is None or count >= len(labels):
        return slice(None)
    rng = np.random.default_rng(seed)
    per_class = max(1, count // num_classes)
    chosen = []
    for digit in np.unique(labels):
        members = np.flatnonzero(labels == digit)
        chosen.extend(rng.choice(members, size=min(per_class, len(members)), replace=False))
    return rng.permutation(np.asarray(chosen))
