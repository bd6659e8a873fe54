"""What each evaluation image looks like, in numbers a person can act on: the candidate slices of discovery.

Computed from the pixels alone (no model, no outcome), one value per image:
brightness, contrast, ink share (the part that differs from the background),
the foreground's extent and position, and for colour images colourfulness.
"""

from __future__ import annotations

import numpy as np

# name -> the words a slice description uses for it
PROPERTIES = {
    "brightness": "brightness",
    "contrast": "contrast",
    "ink_share": "ink share",
    "extent": "foreground extent",
    "centre_row": "foreground's vertical position (0 top, 1 bottom)",
    "centre_column": "foreground's horizontal position (0 left, 1 right)",
}
COLOUR_PROPERTIES = {"colourfulness": "colourfulness"}
# A pixel is foreground when it differs from the background level by more than this share of the range.
FOREGROUND_STEP = 0.25


def property_names(channels: int) -> dict[str, str]:
    return {**PROPERTIES, **(COLOUR_PROPERTIES if channels == 3 else {})}


def image_properties(images: np.ndarray) -> dict[str, np.ndarray]:
    """uint8 images (B, H, W) or (B, H, W, C) -> one float32 value per image and property."""
    pixels = images.astype(np.float32) / 255.0
    colour = pixels.ndim == 4 and pixels.shape[3] == 3
    if pixels.ndim == 4:
        grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32) if colour else pixels[..., 0]
    else:
        grey = pixels
    batch, height, width = grey.shape
    flat = grey.reshape(batch, -1)
    # The background is what the border mostly is: MNIST's black, a photo's wall or sky.
    border = np.concatenate([grey[:, 0, :], grey[:, -1, :], grey[:, :, 0], grey[:, :, -1]], axis=1)
    background = np.median(border, axis=1)
    foreground = np.abs(grey - background[:, None, None]) > FOREGROUND_STEP
    ink = foreground.reshape(batch, -1).mean(axis=1)
    rows, columns = foreground.any(axis=2), foreground.any(axis=1)
    extent = np.zeros(batch, np.float32)
    centre_row = np.full(batch, 0.5, np.float32)
    centre_column = np.full(batch, 0.5, np.float32)
    has = ink > 0
    if has.any():
        row_span = _span(rows[has]) / height
        column_span = _span(columns[has]) / width
        extent[has] = row_span * column_span
        weights = foreground[has].astype(np.float32)
        total = weights.sum(axis=(1, 2))
        centre_row[has] = (weights.sum(axis=2) @ (np.arange(height, dtype=np.float32) + 0.5)) / total / height
        centre_column[has] = (weights.sum(axis=1) @ (np.arange(width, dtype=np.float32) + 0.5)) / total / width
    values = {
        "brightness": flat.mean(axis=1),
        "contrast": flat.std(axis=1),
        "ink_share": ink.astype(np.float32),
        "extent": extent,
        "centre_row": centre_row,
        "centre_column": centre_column,
    }
    if colour:
        values["colourfulness"] = _colourfulness(pixels)
    return {name: value.astype(np.float32) for name, value in values.items()}


def _span(present: np.ndarray) -> np.ndarray:
    """How many rows (or columns) lie between the first and the last that hold foreground, inclusive."""
    count = present.shape[1]
    first = present.argmax(axis=1)
    last = count - 1 - present[:, ::-1].argmax(axis=1)
    return (last - first + 1).astype(np.float32)


def _colourfulness(pixels: np.ndarray) -> np.ndarray:
    """Hasler and Suesstrunk's colourfulness (2003), on 0..1 pixels."""
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    rg = (red - green).reshape(len(pixels), -1)
    yb = (0.5 * (red + green) - blue).reshape(len(pixels), -1)
    spread = np.sqrt(rg.std(axis=1) ** 2 + yb.std(axis=1) ** 2)
    centre = np.sqrt(rg.mean(axis=1) ** 2 + yb.mean(axis=1) ** 2)
    return spread + 0.3 * centre
