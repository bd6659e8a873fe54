"""The data spec: what one image and one label are, worked out once from the data.

Training works it out and records it in the data stage's manifest record
(`data_spec`); every later stage reads it from there (the analysis copies it
into `summary.json` for the gate and the report). The serving signature,
TFMA's slices, the paired counts, the confusion matrices, the per-class
checks and the report's images all follow it, and a model or evaluation data
handed in later is checked against it.

Pixels travel as raw uint8 bytes in row-major (height, width, channels) order
and are scaled to 0..1 (divided by 255) inside the serving signature, exactly
as in training. Data whose pixels were not 8-bit (16-bit images, floats in
0..1) were brought to 8 bits first; `pixel_scaling` says how.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from evalsuite.errors import InputError

ENCODING = "uint8 raw bytes, (height, width, channels) row-major, scaled to 0..1 by /255 in the serving signature"
RESIZE_METHOD = "bilinear (PIL Image.resize, on 8-bit RGB)"
MIN_CLASSES, MAX_CLASSES = 2, 1000
MAX_SIDE = 4096
CHANNEL_NAMES = {1: "grey", 3: "colour"}


@dataclass(frozen=True)
class DataSpec:
    height: int
    width: int
    channels: int
    num_classes: int
    class_names: tuple[str, ...] | None = None
    encoding: str = ENCODING
    resize: str | None = None  # how every image was brought to height x width; None: the data's own size
    pixel_scaling: str | None = None  # how pixel values became 8-bit; None: they were 8-bit (0..255) already

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """What a model takes: (height, width, channels)."""
        return (self.height, self.width, self.channels)

    @property
    def image_bytes(self) -> int:
        return self.height * self.width * self.channels

    def describe(self) -> str:
        """'28x28 grey, 10 classes' (and how images were resized, if they were)."""
        text = f"{self.height}x{self.width} {CHANNEL_NAMES.get(self.channels, f'{self.channels}-channel')}"
        text += f", {self.num_classes} classes"
        text += f", {self.pixel_scaling}" if self.pixel_scaling else ""
        return text + (f", resized {self.resize}" if self.resize else "")

    def as_dict(self) -> dict:
        payload = asdict(self)
        payload["class_names"] = list(self.class_names) if self.class_names else None
        if self.pixel_scaling is None:
            del payload["pixel_scaling"]  # 8-bit data keep the record they always had
        return payload

    @classmethod
    def from_dict(cls, payload, where: str) -> "DataSpec":
        """A recorded spec, checked: a corrupt one is an InputError naming where it came from."""
        if not isinstance(payload, dict):
            raise InputError(f"{where}: corrupt data spec (not an object)")
        try:
            spec = cls(
                height=payload["height"],
                width=payload["width"],
                channels=payload["channels"],
                num_classes=payload["num_classes"],
                class_names=tuple(payload["class_names"]) if payload.get("class_names") else None,
                encoding=payload.get("encoding", ENCODING),
                resize=payload.get("resize"),
                pixel_scaling=payload.get("pixel_scaling"),
            )
        except (KeyError, TypeError) as error:
            raise InputError(f"{where}: corrupt data spec ({error})") from None
        problem = spec.problem()
        if problem:
            raise InputError(f"{where}: corrupt data spec ({problem})")
        return spec

    def problem(self) -> str | None:
        for name in ("height", "width", "channels", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                return f"{name} is {value!r}"
        if not (1 <= self.height <= MAX_SIDE and 1 <= self.width <= MAX_SIDE):
            return f"image size {self.height}x{self.width}"
        if self.pixel_scaling is not None and not isinstance(self.pixel_scaling, str):
            return f"pixel_scaling is {self.pixel_scaling!r}"
        if self.channels not in (1, 3):
            return f"{self.channels} channels (1 or 3)"
        if not MIN_CLASSES <= self.num_classes <= MAX_CLASSES:
            return f"{self.num_classes} classes ({MIN_CLASSES} to {MAX_CLASSES})"
        if self.class_names is not None and (
            len(self.class_names) != self.num_classes or not all(isinstance(n, str) for n in self.class_names)
        ):
            return f"{len(self.class_names)} class names for {self.num_classes} classes"
        return None

    def fits(self, images, where: str) -> None:
        """Images (N, H, W) or (N, H, W, C) of this spec's size and channels, else one line saying what differs."""
        shape = tuple(images.shape[1:])
        channels = 1 if len(shape) == 2 else shape[-1] if len(shape) == 3 else None
        if channels is None or shape[:2] != (self.height, self.width) or channels != self.channels:
            raise InputError(
                f"{where}: images have shape {tuple(images.shape)}, the run's data spec is {self.describe()} "
                f"(N, {self.height}, {self.width}{'' if self.channels == 1 else f', {self.channels}'})"
            )


# The reference data: MNIST's 28x28 grey digits in ten classes.
MNIST = DataSpec(height=28, width=28, channels=1, num_classes=10)


def recorded_spec(record: dict | None, where: str) -> DataSpec:
    """The data spec a manifest or summary record holds; a run folder from before specs holds MNIST."""
    if not record or record.get("data_spec") is None:
        return MNIST
    return DataSpec.from_dict(record["data_spec"], where)


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """'32x32' or '64X48' (height x width) from --image-size."""
    if text is None:
        return None
    height, sep, width = text.lower().partition("x")
    if not sep or not height.strip().isdigit() or not width.strip().isdigit():
        raise InputError(f"--image-size: expected HEIGHTxWIDTH such as 32x32, got {text!r}")
    size = (int(height), int(width))
    if not all(1 <= side <= MAX_SIDE for side in size):
        raise InputError(f"--image-size: each side must be in 1..{MAX_SIDE}, got {text!r}")
    return size
