"""Matching predicted geometry to true instances: IoU tables, Hungarian matching, hit tables.

All coordinates are absolute pixels of the original image; boxes are XYXY pixel edges.

Rewards run inside RL loops on a handful of boxes per text, where a numpy call costs more than
the arithmetic: tables of up to SMALL cells are computed in plain Python, larger ones with numpy.
Both paths give the same numbers (a test checks it).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from synth.rewards.rle import points_in_rle

#: iVGR's validity rule: two predicted boxes overlapping more than this are duplicates.
DUPLICATE_IOU = 0.9
#: Tables with at most this many cells take the plain-Python path (measured faster below ~100).
SMALL = 64

Box = Sequence[float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` (N, 4) with every box in `b` (M, 4), XYXY: an (N, M) array.

    Degenerate boxes (zero or negative extent) have zero area and IoU 0 with everything.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    wh = (np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])).clip(0)
    inter = wh[..., 0] * wh[..., 1]
    size_a, size_b = (a[:, 2:] - a[:, :2]).clip(0), (b[:, 2:] - b[:, :2]).clip(0)
    union = (size_a[:, 0] * size_a[:, 1])[:, None] + (size_b[:, 0] * size_b[:, 1])[None, :] - inter
    with np.errstate(invalid="ignore", over="ignore"):
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return np.where(np.isfinite(iou), iou, 0.0)


def _iou(a: Box, b: Box, area_a: float, area_b: float) -> float:
    """IoU of two XYXY boxes whose areas are given (plain Python, for small tables)."""
    iw = (a[2] if a[2] < b[2] else b[2]) - (a[0] if a[0] > b[0] else b[0])
    if iw <= 0:
        return 0.0
    ih = (a[3] if a[3] < b[3] else b[3]) - (a[1] if a[1] > b[1] else b[1])
    if ih <= 0:
        return 0.0
    union = area_a + area_b - iw * ih
    return iw * ih / union if 0 < union < float("inf") else 0.0


def _area(box: Box) -> float:
    w, h = box[2] - box[0], box[3] - box[1]
    return w * h if w > 0 and h > 0 else 0.0


def has_duplicates(boxes: np.ndarray, threshold: float = DUPLICATE_IOU) -> bool:
    """Whether two of the (P, 4) boxes overlap with IoU above `threshold`."""
    if len(boxes) < 2:
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


@dataclass(frozen=True)
class BoxMatch:
    """Everything the box rewards need from one (predicted, true) pair of box lists."""

    duplicates: bool
    recall: float
    precision: float
    hungarian: float
    matched: int


def match_boxes(pred: Sequence[Box] | np.ndarray, true: Sequence[Box] | np.ndarray,
                duplicate_iou: float = DUPLICATE_IOU) -> BoxMatch:
    """Duplicate check, iVGR's best-match recall and precision, and the Hungarian mean IoU.

    `pred` (P, 4) and `true` (G, 4), arrays or sequences of boxes, must both be non-empty.
    """
    n_pred, n_true = len(pred), len(true)
    if n_pred * (n_pred + n_true) > SMALL:
        pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
        table = iou_matrix(pred, np.concatenate([pred, true]))
        duplicates = bool((np.triu(table[:, :n_pred], k=1) > duplicate_iou).any())
        iou = table[:, n_pred:]
        recall, precision = best_match_recall_precision(iou)
        hungarian, matched = hungarian_mean_iou(iou)
        return BoxMatch(duplicates, recall, precision, hungarian, matched)
    p = pred.tolist() if isinstance(pred, np.ndarray) else list(pred)
    t = true.tolist() if isinstance(true, np.ndarray) else list(true)
    area_p, area_t = [_area(b) for b in p], [_area(b) for b in t]
    duplicates = any(
        _iou(p[i], p[j], area_p[i], area_p[j]) > duplicate_iou for i in range(n_pred) for j in range(i + 1, n_pred)
    )
    iou = [[_iou(a, b, sa, sb) for b, sb in zip(t, area_t)] for a, sa in zip(p, area_p)]
    recall = sum(map(max, zip(*iou))) / n_true
    precision = sum(map(max, iou)) / n_pred
    hungarian, matched = _hungarian_small(iou, n_pred, n_true)
    return BoxMatch(duplicates, recall, precision, hungarian, matched)


def _hungarian_small(iou: list[list[float]], n_pred: int, n_true: int) -> tuple[float, int]:
    """`hungarian_mean_iou` of a small table, skipping the solver when the answer is plain.

    When the best partners of the shorter side are all distinct, giving each its best partner
    reaches the sum of those maxima, an upper bound of every matching: it is the optimum.
    """
    lines = iou if n_pred <= n_true else [list(col) for col in zip(*iou)]
    best = [max(range(len(line)), key=line.__getitem__) for line in lines]
    if len(set(best)) == len(best):
        values = [line[j] for line, j in zip(lines, best)]
        return sum(values) / max(n_pred, n_true), sum(v > 0 for v in values)
    return hungarian_mean_iou(np.array(iou))


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


def point_hits_small(points: list[Sequence[float]], boundaries: list, sizes: list, boxes: list) -> list[list[bool]]:
    """`point_hits` in plain Python (boundaries as lists), for small tables."""
    table = []
    for x, y in points:
        row = []
        for bounds, (h, w), box in zip(boundaries, sizes, boxes):
            if bounds is None:
                row.append(box[0] <= x < box[2] and box[1] <= y < box[3])
            elif 0 <= x < w and 0 <= y < h:  # False for NaN too
                row.append(bisect_right(bounds, int(x) * h + int(y)) % 2 == 1)
            else:
                row.append(False)
        table.append(row)
    return table


def hungarian_hits(hits: np.ndarray | list[list[bool]]) -> int:
    """Most (point, instance) pairs with a hit when each point and each instance is used once."""
    if isinstance(hits, list):
        if not any(any(row) for row in hits):
            return 0
        if len(hits) == 1 or len(hits[0]) == 1:
            return 1
        if all(sum(row) <= 1 for row in hits):
            # Each point lies in at most one instance (disjoint masks, the usual case): the best
            # matching takes one point per instance hit.
            return len({row.index(True) for row in hits if True in row})
        hits = np.array(hits, dtype=bool)
    if hits.size == 0 or not hits.any():
        return 0
    if hits.shape[0] == 1 or hits.shape[1] == 1:
        return 1
    rows, cols = linear_sum_assignment(hits, maximize=True)
    return int(hits[rows, cols].sum())
