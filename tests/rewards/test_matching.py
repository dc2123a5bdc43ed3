"""Box and point matching against hand-checked tables and iVGR's published formula."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.rewards.matching import (
    SMALL,
    match_boxes,
    point_hits,
    point_hits_small,
    best_match_recall_precision,
    has_duplicates,
    hungarian_hits,
    hungarian_mean_iou,
    iou_matrix,
)

GT = np.array([[0, 0, 10, 10], [20, 0, 30, 10]], dtype=float)


def literal_iou(a, b):
    """IoU of two XYXY boxes, written out."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ivgr_published(pred, gt):
    """iVGR's box reward as the paper states it, term by term:
    R = 1/2 * (1/|G| sum_g max_p IoU(g, p) + 1/|P| sum_p max_g IoU(p, g)),
    and R = 0 if two predicted boxes have IoU > 0.9 (the validity rule)."""
    for i in range(len(pred)):
        for j in range(i + 1, len(pred)):
            if literal_iou(pred[i], pred[j]) > 0.9:
                return 0.0
    if not pred or not gt:
        return 0.0
    recall = sum(max(literal_iou(g, p) for p in pred) for g in gt) / len(gt)
    precision = sum(max(literal_iou(p, g) for g in gt) for p in pred) / len(pred)
    return 0.5 * (recall + precision)


def ours(pred, gt):
    pred, gt = np.asarray(pred, float).reshape(-1, 4), np.asarray(gt, float).reshape(-1, 4)
    if has_duplicates(pred) or not len(pred) or not len(gt):
        return 0.0
    recall, precision = best_match_recall_precision(iou_matrix(pred, gt))
    return 0.5 * (recall + precision)


@pytest.mark.parametrize(
    "pred, ivgr, hungarian",
    [
        ([[0, 0, 10, 10], [20, 0, 30, 10]], 1.0, 1.0),                     # both exact
        ([[0, 0, 10, 10]], 0.75, 0.5),                                     # recall 1/2, precision 1
        ([[0, 0, 10, 10], [0, 0, 10, 10]], 0.0, 0.5),                      # duplicate voids iVGR's
        ([[0, 0, 10, 20]], 0.375, 0.25),                                   # IoU 1/2 with the first
        ([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], 5 / 6, 2 / 3),  # one extra box
        ([[5, 0, 15, 10]], 0.25, 1 / 6),                                   # IoU 1/3 with the first
        ([[0, 0, 30, 10]], 1 / 3, 1 / 6),                                  # one box over both
        ([[40, 40, 50, 50]], 0.0, 0.0),                                    # misses everything
    ],
)
def test_hand_checked_box_scores(pred, ivgr, hungarian):
    assert ours(pred, GT) == pytest.approx(ivgr)
    assert ivgr_published(pred, GT.tolist()) == pytest.approx(ivgr)
    score, _ = hungarian_mean_iou(iou_matrix(np.array(pred, float), GT))
    assert score == pytest.approx(hungarian)


boxes = st.lists(
    st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(1, 30), st.integers(1, 30)).map(
        lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3]]
    ),
    min_size=0,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(boxes, boxes)
def test_matches_the_published_formula_on_random_boxes(pred, gt):
    assert ours(pred, gt) == pytest.approx(ivgr_published(pred, gt), abs=1e-12)


def test_iou_table_matches_the_written_out_iou():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [3, 3, 3, 9]], float)  # the last is degenerate
    table = iou_matrix(a, a)
    for i in range(3):
        for j in range(3):
            assert table[i, j] == pytest.approx(literal_iou(a[i], a[j]))
    assert table[0, 1] == pytest.approx(25 / 175)


def test_duplicates_need_iou_above_the_threshold():
    assert has_duplicates(np.array([[0, 0, 10, 10], [0, 0, 10, 10.5]], float))  # IoU 0.952
    assert not has_duplicates(np.array([[0, 0, 10, 10], [0, 0, 10, 12]], float))  # IoU 0.833


def test_hungarian_hits_use_each_point_and_instance_once():
    # Point 0 hits instances 0 and 1, point 1 only instance 0: the best matching uses both.
    hits = np.array([[True, True], [True, False]])
    assert hungarian_hits(hits) == 2
    assert hungarian_hits(np.array([[True, True], [True, True], [True, True]])) == 2
    assert hungarian_hits(np.zeros((3, 2), bool)) == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(boxes, min_size=1, max_size=4).map(lambda ls: [b for b in ls for b in b]), boxes)
def test_numpy_and_plain_python_paths_agree(pred, gt):
    if not pred or not gt:
        return
    p, g = np.array(pred, float), np.array(gt, float)
    small = match_boxes(p, g)
    many = match_boxes(np.concatenate([p] * 12), g)  # over SMALL cells: the numpy path
    assert small.duplicates == has_duplicates(p)
    assert 12 * len(p) * (12 * len(p) + len(g)) > SMALL
    assert many.recall == pytest.approx(small.recall)
    assert many.precision == pytest.approx(small.precision)
    assert many.duplicates  # twelve copies are duplicates of each other


def test_point_hit_tables_agree_between_paths():
    from synth.core.geometry import mask_to_rle
    from synth.rewards.rle import rle_boundaries
    from tests.rewards.factory import disc_mask

    masks = [disc_mask(48, 64, 12, 12, 5), disc_mask(48, 64, 40, 14, 5)]
    rles = [mask_to_rle(m) for m in masks]
    bounds = [rle_boundaries(r) for r in rles] + [None]
    sizes = [(48, 64)] * 3
    boxes = np.array([[7, 7, 17, 17], [35, 9, 45, 19], [0, 40, 10, 48]], float)
    points = np.random.default_rng(1).uniform(-5, 70, (50, 2))
    big = point_hits(points, bounds, sizes, boxes)
    small = point_hits_small(points.tolist(), [None if b is None else b.tolist() for b in bounds], sizes,
                             boxes.tolist())
    assert big.tolist() == small
    assert big.any()
