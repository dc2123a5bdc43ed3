"""Matching predicted geometry to true instances: IoU tables, Hungarian matching, hit tables.

All coordinates are absolute pixels of the original image; boxes are XYXY pixel edges.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from synth.rewards.rle import points_in_rle

#: iVGR's validity rule: two predicted boxes overlapping more than this are duplicates.
DUPLICATE_IOU = 0.9


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), XYXY: an (N, M) array.

    Degenerate boxes (zero or negative extent) have zero area and IoU 0 with everything.
    """
    ax0, ay0, ax1, ay1 = (a[:, i, None] for i in range(4))
    bx0, by0, bx1, by1 = (b[None, :, i] for i in range(4))
    iw = np.minimum(ax1, bx1) - np.maximum(ax0, bx0)
    ih = np.minimum(ay1, by1) - np.maximum(ay0, by0)
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    area_a = np.maximum(ax1 - ax0, 0.0) * np.maximum(ay1 - ay0, 0.0)
    area_b = np.maximum(bx1 - bx0, 0.0) * np.maximum(by1 - by0, 0.0)
    union = area_a + area_b - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.nan_to_num(iou, nan=0.0, posinf=0.0, neginf=0.0)


def has_duplicates(boxes: np.ndarray, threshold: float = DUPLICATE_IOU) -> bool:
    """Whether two of the (P, 4) boxes overlap with IoU above `threshold`."""
    if boxes.shape[0] < 2:
        return False
    iou = iou_matrix(boxes, boxes)
    return bool((np.triu(iou, k=1) > threshold).any())


def best_match_recall_precision(iou: np.ndarray) -> tuple[float, float]:
    """iVGR's terms from a (P, G) IoU table: recall averages, over true boxes, the best IoU any
    predicted box reaches; precision averages, over predicted boxes, the best IoU with any true
    box. Both are 0 when either side is empty."""
    if iou.size == 0:
        return 0.0, 0.0
    return float(iou.max(axis=0).mean()), float(iou.max(axis=1).mean())


def hungarian_mean_iou(iou: np.ndarray) -> tuple[float, int]:
    """One-to-one matching maximizing total IoU; returns (sum of matched IoUs / max(P, G), matched
    pairs with IoU > 0). Unmatched boxes on either side count as IoU 0, so both extra and
    missing boxes lower the score."""
    if iou.size == 0:
        return 0.0, 0
    rows, cols = linear_sum_assignment(iou, maximize=True)
    matched = iou[rows, cols]
    return float(matched.sum() / max(iou.shape)), int((matched > 0).sum())


def point_hits(points: np.ndarray, boundaries: list, sizes: list, boxes: np.ndarray) -> np.ndarray:
    """A (P, N) bool table: predicted point p lies inside true instance n's mask.

    An instance without a mask (boundaries None) is hit by points inside its box.
    """
    hits = np.zeros((points.shape[0], len(boundaries)), dtype=bool)
    for n, bounds in enumerate(boundaries):
        if bounds is None:
            x0, y0, x1, y1 = boxes[n]
            hits[:, n] = (points[:, 0] >= x0) & (points[:, 0] < x1) & (points[:, 1] >= y0) & (points[:, 1] < y1)
        else:
            hits[:, n] = points_in_rle(points, bounds, sizes[n])
    return hits


def hungarian_hits(hits: np.ndarray) -> int:
    """Most (point, instance) pairs with a hit when each point and each instance is used once."""
    if hits.size == 0 or not hits.any():
        return 0
    if hits.shape[0] == 1 or hits.shape[1] == 1:
        return 1
    rows, cols = linear_sum_assignment(hits, maximize=True)
    return int(hits[rows, cols].sum())
