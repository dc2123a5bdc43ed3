"""Coordinate frames of a rendering, and the format names that pair a format with a frame.

Canonical geometry is absolute pixels of the original image, x before y. A `Frame` maps it to
the units a format is written in: ``pixel``, ``norm1`` (0..1), ``norm100`` (Molmo), ``norm1000``
(Qwen3-VL) or ``resized`` (pixels of the image after Qwen2.5-VL's smart resize).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import numpy as np

FORMATS = ("tvg", "ivgr", "molmo", "qwen")
FRAME_KINDS = ("pixel", "norm1", "norm100", "norm1000", "resized")
#: Decimals of a rendered coordinate in each frame; 0 means integers.
FRAME_DECIMALS = {"pixel": 0, "norm1": 3, "norm100": 1, "norm1000": 0, "resized": 0}
#: Numbers per coordinate tuple of each geometry kind.
ARITY = {"point": 2, "box": 4}


@dataclass(frozen=True)
class Frame:
    """Coordinate frame of a rendering.

    Attributes:
        kind: pixel | norm1 | norm100 | norm1000 | resized.
        width: original image width in pixels.
        height: original image height in pixels.
        resized_width: for kind "resized", the width of the resized image the model sees.
        resized_height: for kind "resized", its height.
    """

    kind: Literal["pixel", "norm1", "norm100", "norm1000", "resized"]
    width: int
    height: int
    resized_width: int | None = None
    resized_height: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise ValueError(f"Frame.kind: unknown {self.kind!r}; choices: {', '.join(FRAME_KINDS)}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"Frame: width and height must be positive, got {self.width}x{self.height}")
        if self.kind == "resized" and not ((self.resized_width or 0) > 0 and (self.resized_height or 0) > 0):
            raise ValueError(
                "Frame(kind='resized') needs positive resized_width and resized_height, "
                f"got {self.resized_width}x{self.resized_height}"
            )

    @cached_property
    def extent(self) -> tuple[float, float]:
        """(x, y) size of the whole image in frame units."""
        if self.kind == "resized":
            return float(self.resized_width), float(self.resized_height)  # type: ignore[arg-type]
        full = {"pixel": None, "norm1": 1.0, "norm100": 100.0, "norm1000": 1000.0}[self.kind]
        return (float(self.width), float(self.height)) if full is None else (full, full)

    @cached_property
    def units_per_pixel(self) -> tuple[float, float]:
        """(x, y) frame units per pixel of the original image: what `to_frame` multiplies by."""
        ex, ey = self.extent
        return ex / self.width, ey / self.height

    def _scale(self, n: int) -> np.ndarray:
        if n % 2:
            raise ValueError(f"Frame: coordinates must come in (x, y) pairs, got a last axis of {n}")
        return np.resize(np.array(self.units_per_pixel), n)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2k) absolute pixels (x, y, x, y, ...) -> frame coordinates, unrounded."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * self._scale(xy.shape[-1])

    def from_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2k) frame coordinates -> absolute pixels of the original image."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy / self._scale(xy.shape[-1])


def format_name(fmt: str, frame_kind: str) -> str:
    """The `grounded_format` column value, e.g. "tvg:norm1000"."""
    check_format(fmt)
    if frame_kind not in FRAME_KINDS:
        raise ValueError(f"unknown frame kind {frame_kind!r}; choices: {', '.join(FRAME_KINDS)}")
    return f"{fmt}:{frame_kind}"


def check_format(fmt: str) -> None:
    """Raise ValueError naming the choices when `fmt` is not one of FORMATS."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}; choices: {', '.join(FORMATS)}")


def qwen_smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """The (height, width) Qwen2-VL / Qwen2.5-VL's processor resizes an image to.

    Both sides become multiples of `factor` nearest to the original, then the pair is scaled
    (keeping the aspect ratio) into [min_pixels, max_pixels]: down with floor, up with ceil.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"qwen_smart_resize: image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"qwen_smart_resize: aspect ratio must be at most 200, got {height}x{width}")
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        shrink = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / shrink / factor) * factor)
        w = max(factor, math.floor(width / shrink / factor) * factor)
    elif h * w < min_pixels:
        grow = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * grow / factor) * factor, math.ceil(width * grow / factor) * factor
    return h, w


def qwen_resized_frame(width: int, height: int, **resize: int) -> Frame:
    """The "resized" frame of Qwen2.5-VL for an original image (`resize`: qwen_smart_resize's knobs)."""
    h, w = qwen_smart_resize(height, width, **resize)
    return Frame("resized", width, height, w, h)


def parse_format_name(name: str) -> tuple[str, str]:
    """Split a `grounded_format` value ("tvg:norm1000") into (format, frame kind)."""
    fmt, _, kind = name.partition(":")
    format_name(fmt, kind)  # validates both parts with the choices in its message
    return fmt, kind
