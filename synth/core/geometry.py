"""Masks, boxes and points: pure conversions between them.

The convention, stated once:
- Coordinates are absolute pixels of the original, upright image, x (column) before y (row).
- Pixel (column c, row r) is the unit square [c, c+1) x [r, r+1). Boxes are XYXY on those
  edges: a mask whose pixels span columns c0..c1 and rows r0..r1 has box (c0, r0, c1+1, r1+1).
  This is pycocotools' `toBbox` [x, y, w, h] written as corners.
- A point (x, y) lies in pixel (floor(x), floor(y)); `mask_to_point` returns a pixel centre
  (c + 0.5, r + 0.5).
- Masks are (H, W) arrays, any nonzero value counting as inside; RLE is COCO's compressed RLE
  `{"size": [H, W], "counts": str}`.

Functions that derive geometry from a mask return None for an empty mask (callers turn that
into the `empty_mask` reject reason); they raise only on a wrong argument (not 2-D, shapes
that differ), which is a bug in the caller, not bad data.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]
Box = tuple[float, float, float, float]
Point = tuple[float, float]


def _as_mask(mask: np.ndarray) -> np.ndarray:
    """The mask as a 2-D bool array (a view when it already is one)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    return mask if mask.dtype == bool else mask != 0


def _tight_bounds(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(c0, r0, c1, r1), end exclusive, of a bool mask; None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    # Reducing only the band of rows that hold the mask keeps this cheap for small objects.
    cols = np.flatnonzero(mask[r0:r1].any(axis=0))
    return int(cols[0]), r0, int(cols[-1]) + 1, r1


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Encode a (H, W) mask as COCO compressed RLE with `counts` as an ASCII string.

    The result is byte-identical to `pycocotools.mask.encode`, but the runs are read from the
    mask's bounding box only, which avoids a Fortran-order copy of the whole frame.
    """
    mask = _as_mask(mask)
    return _rle_from_bounds(mask, _tight_bounds(mask))


def _rle_from_bounds(mask: np.ndarray, bounds: tuple[int, int, int, int] | None) -> RLE:
    h, w = mask.shape
    if h * w == 0:
        coded = mask_utils.encode(np.zeros((h, w), dtype=np.uint8, order="F"))
    else:
        coded = mask_utils.frPyObjects({"size": [h, w], "counts": _crop_counts(mask, bounds)}, h, w)
    return {"size": [h, w], "counts": coded["counts"].decode("ascii")}


def _crop_counts(mask: np.ndarray, bounds: tuple[int, int, int, int] | None) -> list[int]:
    """Uncompressed COCO counts (column-major runs, zeros first) of a non-degenerate mask."""
    h, w = mask.shape
    if bounds is None:
        return [h * w]
    c0, r0, c1, r1 = bounds
    # Each crop column, padded with a zero above and below, so every run has a start and an end.
    cols = np.zeros((c1 - c0, r1 - r0 + 2), dtype=np.int8)
    cols[:, 1:-1] = mask[r0:r1, c0:c1].T
    col, row = np.nonzero(np.diff(cols, axis=1))
    edges = (col + c0) * h + row + r0  # alternating run starts and ends, in column-major order
    # A run that ends at the bottom of one column and goes on at the top of the next is one run.
    joined = np.flatnonzero(edges[1:-1:2] == edges[2::2])
    if joined.size:
        edges = np.delete(edges, np.concatenate([2 * joined + 1, 2 * joined + 2]))
    counts = np.diff(np.concatenate([[0], edges, [h * w]])).tolist()
    # COCO ends on the last run: no zero-length background run after a mask that fills the end.
    return counts[:-1] if counts[-1] == 0 else counts


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode COCO RLE (compressed string/bytes or uncompressed list counts) to a (H, W) bool mask."""
    with warnings.catch_warnings():
        # pycocotools' decode trips NumPy 2's `copy=` deprecation inside its own code; harmless.
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(_coded(rle)).astype(bool)


def rle_area(rle: RLE) -> int:
    """Number of pixels in an RLE mask, without decoding it."""
    return int(mask_utils.area(_coded(rle)))


def rle_to_xyxy(rle: RLE) -> Box | None:
    """Tight XYXY box of an RLE mask (pycocotools' toBbox), None when the mask is empty."""
    if rle_area(rle) == 0:
        return None
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_coded(rle)))
    return (x, y, x + w, y + h)


def _coded(rle: RLE) -> dict[str, Any]:
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def mask_to_xyxy(mask: np.ndarray) -> Box | None:
    """Tightest XYXY box (pixel edges) around a (H, W) mask, None when the mask is empty."""
    bounds = _tight_bounds(_as_mask(mask))
    return None if bounds is None else tuple(float(v) for v in bounds)  # type: ignore[return-value]


def xyxy_to_xywh(box: Sequence[float]) -> Box:
    """(x0, y0, x1, y1) to COCO's (x, y, w, h)."""
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)


def xywh_to_xyxy(box: Sequence[float]) -> Box:
    """COCO's (x, y, w, h) to (x0, y0, x1, y1)."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def mask_to_point(mask: np.ndarray) -> Point | None:
    """A pixel centre inside the mask, as far from its edge as possible; None when empty.

    The maximum of the Euclidean distance transform is the pixel version of the pole of
    inaccessibility: unlike a centroid it lies inside rings, crescents and multi-part masks (it
    picks the part with the largest inscribed circle). The image border counts as an edge.
    Among equally deep pixels (a bar's centre line) it takes the one nearest their mean, so a
    long bar gets its point in the middle rather than at one end.
    """
    mask = _as_mask(mask)
    return _point_from_bounds(mask, _tight_bounds(mask))


def _point_from_bounds(mask: np.ndarray, bounds: tuple[int, int, int, int] | None) -> Point | None:
    if bounds is None:
        return None
    c0, r0, c1, r1 = bounds
    # The crop with a one-pixel zero border: everything outside the tight box is background, and
    # the border makes the transform treat the image edge as an edge too.
    crop = np.zeros((r1 - r0 + 2, c1 - c0 + 2), dtype=np.uint8)
    crop[1:-1, 1:-1] = mask[r0:r1, c0:c1]
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    # The exact distances are square roots of integers, but OpenCV's float32 values of equal ones
    # differ in their last bits from run to run; squared and rounded they are exact, so ties are
    # ties and the point is the same in every process.
    squared = np.rint(np.square(dist, dtype=np.float64))
    rows, cols = np.nonzero(squared == squared.max())
    if rows.size > 1:
        best = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
        rows, cols = rows[best : best + 1], cols[best : best + 1]
    return (float(c0 + cols[0] - 1) + 0.5, float(r0 + rows[0] - 1) + 0.5)


def mask_to_rle_box_point(mask: np.ndarray) -> tuple[RLE, Box, Point] | None:
    """RLE, tight XYXY box and interior point of a mask in one pass; None when it is empty.

    The same values as `mask_to_rle`, `mask_to_xyxy` and `mask_to_point`, with the bounding box
    found once: the annotate stage's per-instance work.
    """
    mask = _as_mask(mask)
    bounds = _tight_bounds(mask)
    if bounds is None:
        return None
    point = _point_from_bounds(mask, bounds)
    box = tuple(float(v) for v in bounds)
    return _rle_from_bounds(mask, bounds), box, point  # type: ignore[return-value]


def point_in_mask(point: Sequence[float], mask: np.ndarray) -> bool:
    """Whether (x, y) lies in a pixel of the mask; points outside the image are not."""
    x, y = float(point[0]), float(point[1])
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    c, r = int(np.floor(x)), int(np.floor(y))
    h, w = np.shape(mask)
    return 0 <= r < h and 0 <= c < w and bool(mask[r, c])


def mask_to_instances(mask: np.ndarray, min_area: int = 1) -> list[np.ndarray]:
    """Split a mask into its 8-connected components of at least `min_area` pixels, largest first.

    Each component comes back as a full-size (H, W) bool mask; equal areas keep the labelling
    order (top to bottom, then left to right, by first pixel).
    """
    mask = _as_mask(mask)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    out = []
    for i in order:
        if stats[i, cv2.CC_STAT_AREA] < min_area:
            continue
        x, y, w, h = (int(v) for v in stats[i, :4])
        # Compare labels inside the component's box only: one full-frame pass per component
        # would make many small components quadratic.
        part = np.zeros(mask.shape, dtype=bool)
        part[y : y + h, x : x + w] = labels[y : y + h, x : x + w] == i
        out.append(part)
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every XYXY box in `a` (N, 4) with every box in `b` (M, 4): an (N, M) array.

    Degenerate boxes (zero or negative width or height) have area 0; two of them have IoU 0.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix0 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy0 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix1 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) masks; 0.0 when both are empty."""
    a, b = _as_mask(a), _as_mask(b)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def mask_intersection_over_min(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / min(|a|, |b|): 1.0 when one mask lies inside the other; 0.0 if either is empty."""
    a, b = _as_mask(a), _as_mask(b)
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    smaller = min(np.count_nonzero(a), np.count_nonzero(b))
    return float(np.count_nonzero(a & b) / smaller) if smaller else 0.0
