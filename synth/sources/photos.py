"""Real photographs with derived, checked ground truth: scikit-image's `coins` (24 Greek coins).

The coins lie apart on a dark cloth whose lighting falls off towards the left, so a global
threshold misses the dark coins. The segmentation removes the lighting first (a white top-hat
with a disc larger than any coin), then takes Otsu's threshold, closes small gaps, fills holes,
opens away specks, and replaces each connected component by its convex hull (coins are convex;
the hull mends dark engravings at a rim). The result is checked: exactly 24 components of coin
size, or the demo refuses to run rather than ship a wrong count.

Crops make more items with exact answers: a crop's edges run along image columns and rows that
no coin touches, so every coin is wholly inside or wholly outside and the count is exact.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from scipy import ndimage as ndi

from synth.sources.base import SourceError

COINS_COUNT = 24
#: The top-hat disc must be wider than the largest coin (about 60 px across in the 384x303 photo).
_TOPHAT_RADIUS = 60
#: Crops narrower or shorter than this hold too little to ask about.
MIN_CROP = 96


def _ellipse(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))


def segment_coins(gray: np.ndarray) -> list[np.ndarray]:
    """One (H, W) bool mask per coin of the `coins` photograph, ordered by row then column."""
    tophat = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, _ellipse(2 * _TOPHAT_RADIUS + 1))
    tophat = cv2.GaussianBlur(tophat, (5, 5), 0)
    _, binary = cv2.threshold(tophat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    binary = cv2.morphologyEx(binary, cv2.MORPH_CLOSE, _ellipse(5))
    filled = ndi.binary_fill_holes(binary > 0).astype(np.uint8)
    opened = cv2.morphologyEx(filled, cv2.MORPH_OPEN, _ellipse(7))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    masks = []
    for i in range(1, n):
        hull = cv2.convexHull(cv2.findNonZero((labels == i).astype(np.uint8)))
        mask = np.zeros(gray.shape, dtype=np.uint8)
        cv2.fillConvexPoly(mask, hull, 1)
        masks.append(mask.astype(bool))
    # Rows of coins first (a coin's centre row, in bands of 40 px), then left to right.
    return sorted(masks, key=lambda m: (int(np.mean(np.nonzero(m)[0]) // 40), float(np.mean(np.nonzero(m)[1]))))


@lru_cache(maxsize=1)
def coins() -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    """The coins photograph as (H, W, 3) uint8 RGB and its checked coin masks (computed once)."""
    try:
        from skimage import data
    except ImportError:
        raise SourceError("the demo's photographs need scikit-image: pip install scikit-image") from None
    gray = np.ascontiguousarray(data.coins())
    masks = segment_coins(gray)
    areas = [int(m.sum()) for m in masks]
    if len(masks) != COINS_COUNT or min(areas) < 0.3 * float(np.median(areas)):
        raise SourceError(
            f"the coins photograph segmented into {len(masks)} coins (areas {sorted(areas)}), not "
            f"{COINS_COUNT}; this scikit-image's coins image differs from the one the demo was built on"
        )
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    for m in masks:
        m.setflags(write=False)
    return rgb, tuple(masks)


def free_lines(masks: tuple[np.ndarray, ...], axis: int) -> np.ndarray:
    """Indices of the columns (axis=0) or rows (axis=1) no coin touches."""
    covered = np.zeros(masks[0].shape[1 - axis], dtype=bool)
    for m in masks:
        covered |= m.any(axis=axis)
    return np.flatnonzero(~covered)


def coins_crop(rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray]]:
    """A random crop whose edges cut no coin, holding at least one: (RGB crop, masks inside it)."""
    rgb, masks = coins()
    h, w = rgb.shape[:2]
    for _ in range(100):
        x0, x1 = _span(rng, free_lines(masks, 0), w)
        y0, y1 = _span(rng, free_lines(masks, 1), h)
        inside = [m[y0:y1, x0:x1] for m in masks if m[y0:y1, x0:x1].sum() == m.sum()]
        if inside:
            return rgb[y0:y1, x0:x1].copy(), [np.ascontiguousarray(m) for m in inside]
    raise SourceError("found no crop of the coins photograph holding a coin")  # not reached with this photo


def _span(rng: np.random.Generator, free: np.ndarray, size: int) -> tuple[int, int]:
    """[start, end) with start 0 or a free line and end `size` or one past a free line, >= MIN_CROP apart."""
    starts = np.concatenate([[0], free])
    ends = np.concatenate([free + 1, [size]])
    for _ in range(100):
        start = int(rng.choice(starts))
        wide = ends[ends - start >= MIN_CROP]
        if wide.size:
            return start, int(rng.choice(wide))
    return 0, size
