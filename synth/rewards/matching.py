"""Matching predicted geometry to true instances: IoU tables, Hungarian matching, hit tables.

All coordinates are absolute pixels of the original image; boxes are XYXY pixel edges.

Rewards run inside RL loops on a handful of boxes per text, where a numpy call costs more than
the arithmetic: IoUs are computed in plain Python, and so are the means and the matching of
tables of up to SMALL cells; larger tables take numpy's. Both paths give the same numbers (a test
checks it). Points are looked up in the merged runs of a row's masks (`RunTable`) when the masks
are disjoint, one binary search per point.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from itertools import chain
from typing import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from synth.rewards.rle import points_in_rle

#: iVGR's validity rule: two predicted boxes overlapping more than this are duplicates.
DUPLICATE_IOU = 0.9
#: Box tables with at most this many cells are reduced in plain Python; larger ones with numpy.
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


def _areas(boxes: Sequence[Box]) -> list[float]:
    """Area of each XYXY box, 0 for a box of zero or negative extent."""
    out = []
    for box in boxes:
        w, h = box[2] - box[0], box[3] - box[1]
        out.append(w * h if w > 0 and h > 0 else 0.0)
    return out


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
    # mean() is add.reduce over the count; the ufuncs direct skip its Python wrapper.
    recall = float(np.add.reduce(np.maximum.reduce(iou, axis=0))) / iou.shape[1]
    return recall, float(np.add.reduce(np.maximum.reduce(iou, axis=1))) / iou.shape[0]


def hungarian_mean_iou(iou: np.ndarray) -> tuple[float, int]:
    """One-to-one matching maximizing total IoU; returns (sum of matched IoUs / max(P, G), matched
    pairs with IoU > 0). Unmatched boxes on either side count as IoU 0, so both extra and
    missing boxes lower the score."""
    if iou.size == 0:
        return 0.0, 0
    rows, cols = linear_sum_assignment(iou, maximize=True)
    matched = iou[rows, cols]
    return float(np.add.reduce(matched)) / max(iou.shape), int(np.count_nonzero(matched > 0))


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
    p = pred.tolist() if isinstance(pred, np.ndarray) else list(pred)
    t = true.tolist() if isinstance(true, np.ndarray) else list(true)
    small = n_pred * (n_pred + n_true) <= SMALL
    if not small and not (_finite_floats(p) and _finite_floats(t)):
        return _match_boxes_numpy(np.asarray(p, dtype=np.float64), np.asarray(t, dtype=np.float64), duplicate_iou)
    area_p, area_t = _areas(p), _areas(t)
    duplicates = False
    for i in range(n_pred - 1):
        if max(_ious(p[i], area_p[i], p[i + 1 :], area_p[i + 1 :])) > duplicate_iou:
            duplicates = True
            break
    iou = [_ious(a, sa, t, area_t) for a, sa in zip(p, area_p)]
    if not small:
        # The same IoUs as `iou_matrix` gives for finite floats, but the means and the matching
        # stay numpy's: their summation order decides the last bit, which must not depend on speed.
        table = np.array(iou)
        recall, precision = best_match_recall_precision(table)
        hungarian, matched = hungarian_mean_iou(table)
        return BoxMatch(duplicates, recall, precision, hungarian, matched)
    best_true, best_pred = list(map(max, zip(*iou))), list(map(max, iou))
    recall, precision = sum(best_true) / n_true, sum(best_pred) / n_pred
    hungarian, matched = _hungarian_small(iou, best_pred, best_true)
    return BoxMatch(duplicates, recall, precision, hungarian, matched)


def _match_boxes_numpy(pred: np.ndarray, true: np.ndarray, duplicate_iou: float) -> BoxMatch:
    """`match_boxes` of (P, 4) and (G, 4) float arrays, all in numpy (large tables of other than
    finite Python floats, whose plain-Python IoUs could differ from numpy's)."""
    n_pred = len(pred)
    table = iou_matrix(pred, np.concatenate([pred, true]))
    duplicates = bool((np.triu(table[:, :n_pred], k=1) > duplicate_iou).any())
    iou = table[:, n_pred:]
    recall, precision = best_match_recall_precision(iou)
    hungarian, matched = hungarian_mean_iou(iou)
    return BoxMatch(duplicates, recall, precision, hungarian, matched)


def _finite_floats(boxes: list) -> bool:
    """Whether every coordinate is a finite Python float (then plain IoUs equal numpy's)."""
    if not _FLOAT.issuperset(map(type, chain.from_iterable(boxes))):
        return False
    return math.isfinite(sum(map(sum, boxes)))  # an overflowing sum only sends finite input to numpy


_FLOAT = frozenset((float,))


def _ious(a: Box, area_a: float, boxes: Sequence[Box], areas: Sequence[float]) -> list[float]:
    """IoU of XYXY box `a` with each of `boxes`, their areas given (plain Python, for small tables).

    One call per row of a table rather than per cell: at a handful of boxes the calls cost more
    than the arithmetic.
    """
    ax0, ay0, ax1, ay1 = a[0], a[1], a[2], a[3]
    inf, out = _INF, []
    for b, area_b in zip(boxes, areas):
        bx0, by0, bx1, by1 = b[0], b[1], b[2], b[3]
        iw = (ax1 if ax1 < bx1 else bx1) - (ax0 if ax0 > bx0 else bx0)
        ih = (ay1 if ay1 < by1 else by1) - (ay0 if ay0 > by0 else by0)
        if iw <= 0 or ih <= 0:
            out.append(0.0)
            continue
        inter = iw * ih
        union = area_a + area_b - inter
        out.append(inter / union if 0 < union < inf else 0.0)
    return out


_INF = float("inf")


def _hungarian_small(iou: list[list[float]], best_pred: list[float], best_true: list[float]) -> tuple[float, int]:
    """`hungarian_mean_iou` of a small table, skipping the solver when the answer is plain.

    `best_pred` and `best_true` are the table's row and column maxima. When the best partners of
    the shorter side are all distinct, giving each its best partner reaches the sum of those
    maxima, an upper bound of every matching: it is the optimum.
    """
    n_pred, n_true = len(best_pred), len(best_true)
    lines, values = (iou, best_pred) if n_pred <= n_true else (list(zip(*iou)), best_true)
    best = [line.index(v) for line, v in zip(lines, values)]  # the first best partner, as argmax
    if len(set(best)) == len(best):
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


@dataclass(frozen=True)
class RunTable:
    """The foreground runs of every instance mask of a row, merged into one sorted table.

    Built only for disjoint masks of one (height, width): a pixel then lies in at most one run.
    Pixel index = column * height + row, as in COCO RLE; run j covers [starts[j], ends[j]) of
    instance owners[j].
    """

    starts: list[int]
    ends: list[int]
    owners: list[int]
    height: int
    width: int


def run_table(boundaries: list, sizes: list) -> RunTable | None:
    """The `RunTable` of the instances' RLE `boundaries` (lists); None when a mask is missing,
    the masks differ in size, or two of them overlap (then `point_hits` is needed)."""
    if not boundaries or any(b is None for b in boundaries) or len(set(sizes)) != 1:
        return None
    h, w = sizes[0]
    runs = []
    for n, bounds in enumerate(boundaries):
        if any(b1 < b0 for b0, b1 in zip(bounds, bounds[1:])) or (bounds and bounds[0] < 0):
            return None  # not valid RLE: leave it to the bisecting path, which reads it as given
        edges = [0, *bounds]
        if len(bounds) % 2 and bounds[-1] < h * w:
            edges.append(h * w)  # bisecting reads pixels past the runs' end as in the last run
        runs += [(s, e, n) for s, e in zip(edges[1::2], edges[2::2]) if e > s]
    runs.sort()
    if any(s1 < e0 for (_, e0, _), (s1, _, _) in zip(runs, runs[1:])):
        return None
    return RunTable([r[0] for r in runs], [r[1] for r in runs], [r[2] for r in runs], int(h), int(w))


def distinct_hits(points: list[Sequence[float]], table: RunTable) -> int:
    """How many instances the points hit, each counted once.

    Equal to `hungarian_hits` of the hit table: with disjoint masks a point lies in at most one
    mask, so the best one-to-one matching pairs every instance hit with one of its points.
    """
    h, w, starts, ends, owners = table.height, table.width, table.starts, table.ends, table.owners
    hit = set()
    for x, y in points:
        if 0 <= x < w and 0 <= y < h:  # False for NaN too
            i = int(x) * h + int(y)
            j = bisect_right(starts, i) - 1
            if j >= 0 and i < ends[j]:
                hit.add(owners[j])
    return len(hit)


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
