"""Pixels of more than 8 bits, brought to the 8 bits every image travels as (evalsuite/data/spec.py).

16-bit values keep their high byte (value >> 8), the rule PIL itself applies to
16-bit colour, so grey and colour files are scaled alike; the data spec records
it. Floating-point images, and 32-bit integers beyond 16 bits, are refused
naming the file: their range is not knowable from the file.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from evalsuite.errors import InputError

SIXTEEN_BIT = "16-bit pixels scaled to 8 bits: value >> 8 (the high byte)"
_DEEP_SOURCE = "evalsuite: 16-bit source"  # noted in an image's info when it is opened
# 16 bits per channel, as PNG's RGB;16B; not BMP's 16-bit 5-6-5 pixels (BGR;16).
_DEEP_RAWMODE = re.compile(r";16[BLN]")


def note_deep_source(image) -> None:
    """Before decoding: PIL reads 16-bit colour straight to 8 bits, and only the file's layout tells."""
    if any(_DEEP_RAWMODE.search(str(tile.args)) for tile in getattr(image, "tile", None) or ()):
        image.info[_DEEP_SOURCE] = True


def is_deep_grey(image) -> bool:
    """16-bit grey (PIL's I;16 modes), or 32-bit integer grey, which is how PIL may give a 16-bit file."""
    return image.mode.startswith("I;16") or image.mode == "I"


def is_sixteen_bit(image) -> bool:
    """A 16-bit grey image, or a 16-bit colour file PIL has already brought to 8 bits."""
    return is_deep_grey(image) or bool(image.info.get(_DEEP_SOURCE))


def eight_bit(image, file: Path):
    """`image` with 8-bit pixels: 16-bit grey scaled by value >> 8, floats refused.

    PIL's own conversion clips instead: every 16-bit value of 255 or more would become white.
    """
    from PIL import Image

    if image.mode == "F":
        raise InputError(f"{file}: 32-bit floating-point pixels (PIL mode F); save the image with 8 or 16 bits")
    if not is_deep_grey(image):
        return image
    values = np.asarray(image).astype(np.int64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise InputError(
            f"{file}: 32-bit pixel values {values.min()}..{values.max()}, outside 0..65535; "
            "save the image with 8 or 16 bits"
        )
    return Image.fromarray((values >> 8).astype(np.uint8))
