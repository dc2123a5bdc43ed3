"""Procedurally drawn scenes with exact ground truth: flat-coloured discs, squares and triangles.

Each shape is drawn from a boolean mask computed on pixel centres, so the mask *is* the drawing:
every pixel of a shape's mask has exactly its colour, and no other pixel does (the textured
background stays in muted mid-tones, the shape colours each have a channel far below them). Shapes
never touch: their bounding circles keep `GAP` pixels apart, and from the image edge too. All
randomness comes from the `numpy.random.Generator` a caller passes, so a scene is a pure function
of its seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

#: Saturated colours; each has a channel <= 70, far below the background's floor of 110.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 160, 60),
    "blue": (40, 90, 220),
    "yellow": (240, 200, 30),
    "purple": (150, 70, 200),
    "orange": (245, 130, 20),
}
SHAPES: tuple[str, ...] = ("disc", "square", "triangle")
#: Pixels between the bounding circles of two shapes, and between a shape and the image edge.
GAP = 6
#: Pixels between the two named shapes of a spatial scene along the asked axis: "left of" holds
#: for the whole shapes, not only their centres.
RELATION_GAP = 10


@dataclass
class Shape:
    """One drawn shape: its description, its bounding circle and its exact (H, W) bool mask."""

    colour: str
    kind: str
    cx: float
    cy: float
    radius: float
    angle: float
    mask: np.ndarray

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"


def shape_mask(kind: str, cx: float, cy: float, radius: float, angle: float, width: int, height: int) -> np.ndarray:
    """The (H, W) bool mask of a shape inscribed in the circle (cx, cy, radius), tested at pixel centres.

    A disc fills 90% of the radius (so it looks as big as the others); a square's corners and a
    triangle's vertices touch the circle; `angle` (radians) turns squares and triangles.
    """
    mask = np.zeros((height, width), dtype=bool)
    c0, c1 = max(0, int(cx - radius) - 1), min(width, int(cx + radius) + 2)
    r0, r1 = max(0, int(cy - radius) - 1), min(height, int(cy + radius) + 2)
    xs, ys = np.meshgrid(np.arange(c0, c1) + 0.5 - cx, np.arange(r0, r1) + 0.5 - cy)
    if kind == "disc":
        inside = xs**2 + ys**2 <= (0.9 * radius) ** 2
    elif kind == "square":
        u = xs * math.cos(angle) + ys * math.sin(angle)
        v = -xs * math.sin(angle) + ys * math.cos(angle)
        half = radius / math.sqrt(2)
        inside = (np.abs(u) <= half) & (np.abs(v) <= half)
    elif kind == "triangle":
        inside = _in_triangle(xs, ys, radius, angle)
    else:
        raise ValueError(f"unknown shape {kind!r}; choices: {', '.join(SHAPES)}")
    mask[r0:r1, c0:c1] = inside
    return mask


def _in_triangle(xs: np.ndarray, ys: np.ndarray, radius: float, angle: float) -> np.ndarray:
    corners = [
        (radius * math.cos(angle + a), radius * math.sin(angle + a))
        for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
    ]
    inside = np.ones(xs.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1]):
        # The corners run clockwise on screen (y down), so the inside is where the cross product is >= 0.
        inside &= (x1 - x0) * (ys - y0) - (y1 - y0) * (xs - x0) >= 0
    return inside


def textured_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A muted, mottled (H, W, 3) uint8 background; every channel stays within 110..235.

    Smooth noise at three scales (coarse and fine brightness, a faint colour cast) gives SAM and
    a viewer some texture; no per-pixel grain, which would double the PNG size for nothing.
    """
    base = rng.uniform(150, 195) + rng.uniform(-12, 12, size=3)
    texture = (
        _smooth_noise(rng, width, height, cell=24, channels=1) * 9.0
        + _smooth_noise(rng, width, height, cell=6, channels=1) * 4.0
        + _smooth_noise(rng, width, height, cell=32, channels=3) * 4.0
    )
    return np.clip(np.rint(base + texture), 110, 235).astype(np.uint8)


def _smooth_noise(rng: np.random.Generator, width: int, height: int, cell: int, channels: int) -> np.ndarray:
    """Unit normal noise on a grid of `cell`-pixel cells, cubic-interpolated to (H, W, channels)."""
    coarse = rng.normal(0.0, 1.0, size=(max(2, height // cell), max(2, width // cell), channels)).astype(np.float32)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return smooth.reshape(height, width, channels)


def radius_range(n_shapes: int, width: int, height: int) -> tuple[float, float]:
    """Radii that leave room: the bounding circles (with the gap) cover at most ~30% of the image."""
    side = min(width, height)
    fits = math.sqrt(0.30 * width * height / (max(n_shapes, 1) * math.pi)) - GAP / 2
    high = min(0.075 * side, fits)
    low = min(0.045 * side, high)
    if low < 6:
        raise ValueError(f"{n_shapes} shapes do not fit a {width}x{height} demo image; lower the counts or enlarge it")
    return low, high


def place(
    rng: np.random.Generator, specs: list[tuple[str, str]], width: int, height: int,
    placed: list[Shape] | None = None, attempts: int = 400,
) -> list[Shape] | None:
    """Shapes for `specs` (colour, kind) at random spots clear of `placed`; None when one finds no room."""
    low, high = radius_range(len(specs) + len(placed or []), width, height)
    shapes = list(placed or [])
    for colour, kind in specs:
        for _ in range(attempts):
            r = rng.uniform(low, high)
            cx = rng.uniform(r + GAP, width - r - GAP)
            cy = rng.uniform(r + GAP, height - r - GAP)
            if all(math.hypot(cx - s.cx, cy - s.cy) >= r + s.radius + GAP for s in shapes):
                angle = rng.uniform(-math.pi / 6, math.pi / 6)
                shapes.append(Shape(colour, kind, cx, cy, r, angle, shape_mask(kind, cx, cy, r, angle, width, height)))
                break
        else:
            return None
    return shapes[len(placed or []):]


def render(background: np.ndarray, shapes: list[Shape]) -> np.ndarray:
    """The background with every shape painted flat in its colour."""
    image = background.copy()
    for s in shapes:
        image[s.mask] = COLOURS[s.colour]
    return image
