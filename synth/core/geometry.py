"""Masks, boxes and points: pure conversions between them.

The convention, stated once:
- Coordinates are absolute pixels of the original, upright image, x (column) before y (row).
- Pixel (column c, row r) is the unit square [c, c+1) x [r, r+1). Boxes are XYXY on those
  edges: a mask whose pixels span columns c0..c1 and rows r0..r1 has box (c0, r0, c1+1, r1+1).
  This is pycocotools' `toBbox` [x, y, w, h] written as corners.
- A point (x, y) lies in pixel (floor(x), floor(y)); `mask_to_point` returns a pixel centre
  (c + 0.5, r + 0.5).
- Masks are boolean arrays of shape (H, W); RLE is COCO's compressed RLE
  `{"size": [H, W], "counts": str}`.
"""

from __future__ import annotations

from typing import Any, Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_utils

RLE = dict[str, Any]


def mask_to_rle(mask: np.ndarray) -> RLE:
    """Encode a (H, W) mask as COCO compressed RLE with `counts` as an ASCII string."""
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: RLE) -> np.ndarray:
    """Decode COCO RLE (compressed string/bytes or uncompressed list counts) to a (H, W) bool mask."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        coded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    else:
        coded = {"size": [h, w], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    return mask_utils.decode(coded).astype(bool)


def rle_area(rle: RLE) -> int:
    """Number of pixels in an RLE mask, without decoding it."""
    return int(mask_utils.area(_coded(rle)))


def rle_to_xyxy(rle: RLE) -> tuple[float, float, float, float] | None:
    """Tight XYXY box of an RLE mask (pycocotools' toBbox), None when the mask is empty."""
    if rle_area(rle) == 0:
        return None
    x, y, w, h = (float(v) for v in mask_utils.toBbox(_coded(rle)))
    return (x, y, x + w, y + h)


def _coded(rle: RLE) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):
        h, w = rle["size"]
        return mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def mask_to_xyxy(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tightest XYXY box (pixel edges) around a (H, W) mask, None when the mask is empty."""
    cols = np.flatnonzero(mask.any(axis=0))
    if cols.size == 0:
        return None
    rows = np.flatnonzero(mask.any(axis=1))
    return (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))


def xyxy_to_xywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) to COCO's (x, y, w, h)."""
    x0, y0, x1, y1 = box
    return (x0, y0, x1 - x0, y1 - y0)


def xywh_to_xyxy(box: Sequence[float]) -> tuple[float, float, float, float]:
    """COCO's (x, y, w, h) to (x0, y0, x1, y1)."""
    x, y, w, h = box
    return (x, y, x + w, y + h)


def mask_to_point(mask: np.ndarray) -> tuple[float, float] | None:
    """A pixel centre inside the mask, as far from its edge as possible; None when empty.

    The maximum of the Euclidean distance transform is the pixel version of the pole of
    inaccessibility: unlike a centroid it lies inside rings, crescents and multi-part masks (it
    picks the part with the largest inscribed circle). The image border counts as an edge.
    """
    box = mask_to_xyxy(mask)
    if box is None:
        return None
    x0, y0, x1, y1 = (int(v) for v in box)
    # Work on the crop with a one-pixel zero border, so the transform sees the image edge as edge.
    crop = np.zeros((y1 - y0 + 2, x1 - x0 + 2), dtype=np.uint8)
    crop[1:-1, 1:-1] = mask[y0:y1, x0:x1]
    dist = cv2.distanceTransform(crop, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return (float(x0 + c - 1) + 0.5, float(y0 + r - 1) + 0.5)


def point_in_mask(point: Sequence[float], mask: np.ndarray) -> bool:
    """Whether (x, y) lies in a pixel of the mask; points outside the image are not."""
    x, y = float(point[0]), float(point[1])
    if not (np.isfinite(x) and np.isfinite(y)):
        return False
    c, r = int(np.floor(x)), int(np.floor(y))
    h, w = mask.shape
    return 0 <= r < h and 0 <= c < w and bool(mask[r, c])


def mask_to_instances(mask: np.ndarray, min_area: int = 1) -> list[np.ndarray]:
    """Split a mask into its 8-connected components of at least `min_area` pixels, largest first."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    order = sorted(range(1, n), key=lambda i: -int(stats[i, cv2.CC_STAT_AREA]))
    return [labels == i for i in order if stats[i, cv2.CC_STAT_AREA] >= min_area]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every XYXY box in `a` (N, 4) with every box in `b` (M, 4): an (N, M) array."""
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
    if a.shape != b.shape:
        raise ValueError(f"mask shapes differ: {a.shape} vs {b.shape}")
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def mask_intersection_over_min(a: np.ndarray, b: np.ndarray) -> float:
    """|a & b| / min(|a|, |b|): 1.0 when one mask lies inside the other; 0.0 if either is empty."""
    smaller = min(np.count_nonzero(a), np.count_nonzero(b))
    return float(np.count_nonzero(a & b) / smaller) if smaller else 0.0
