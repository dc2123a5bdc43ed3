"""Geometry: RLE round trips, tight boxes, interior points, components, IoU tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pycocotools import mask as mask_utils
from scipy import ndimage

from synth.core.geometry import (
    box_iou,
    mask_intersection_over_min,
    mask_iou,
    mask_to_instances,
    mask_to_point,
    mask_to_rle,
    mask_to_rle_box_point,
    mask_to_xyxy,
    point_in_mask,
    rle_area,
    rle_to_mask,
    rle_to_xyxy,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def _disc(h: int, w: int, cx: float, cy: float, r: float, ry: float | None = None) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    ry = r if ry is None else ry
    return ((xx + 0.5 - cx) / r) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1.0


@st.composite
def shaped_masks(draw) -> np.ndarray:
    """Discs, rings, crescents, several parts, single pixels, border-touching shapes, noise."""
    h, w = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    kind = draw(st.sampled_from(["disc", "ring", "crescent", "parts", "pixel", "border", "noise"]))
    coord = st.floats(-5, 53, allow_nan=False)
    radius = st.floats(0.5, 25)
    if kind == "pixel":
        mask = np.zeros((h, w), dtype=bool)
        mask[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return mask
    if kind == "noise":
        return draw(hnp.arrays(bool, (h, w)))
    if kind == "border":  # a disc centred on a corner or an edge, cut by the image border
        cx, cy = draw(st.sampled_from([0.0, w / 2, float(w)])), draw(st.sampled_from([0.0, float(h)]))
        return _disc(h, w, cx, cy, draw(radius))
    cx, cy, r = draw(coord), draw(coord), draw(radius)
    mask = _disc(h, w, cx, cy, r, draw(radius))
    if kind == "ring":
        mask &= ~_disc(h, w, cx, cy, r * draw(st.floats(0.3, 0.9)))
    elif kind == "crescent":
        mask &= ~_disc(h, w, cx + r * draw(st.floats(0.2, 0.8)), cy, r)
    elif kind == "parts":
        for _ in range(draw(st.integers(1, 3))):
            mask |= _disc(h, w, draw(coord), draw(coord), draw(radius))
    return mask


any_masks = st.one_of(shaped_masks(), hnp.arrays(bool, hnp.array_shapes(min_dims=2, max_dims=2, max_side=20)))


def _coco(mask: np.ndarray) -> dict:
    return mask_utils.encode(np.asfortranarray(mask, dtype=np.uint8))


# --- RLE ------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(any_masks)
def test_rle_round_trips_and_matches_pycocotools(mask):
    rle = mask_to_rle(mask)
    assert rle["size"] == list(mask.shape)
    assert isinstance(rle["counts"], str)
    assert rle["counts"] == _coco(mask)["counts"].decode("ascii")
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == np.count_nonzero(mask)


def test_rle_decodes_uncompressed_counts_and_bytes():
    mask = np.zeros((3, 4), dtype=bool)
    mask[1, 2] = True  # column-major: 2 columns of 3 zeros, then 1 zero, the pixel, 1 zero, ...
    uncompressed = {"size": [3, 4], "counts": [7, 1, 4]}
    np.testing.assert_array_equal(rle_to_mask(uncompressed), mask)
    as_bytes = {"size": [3, 4], "counts": mask_to_rle(mask)["counts"].encode("ascii")}
    np.testing.assert_array_equal(rle_to_mask(as_bytes), mask)
    assert rle_to_xyxy(uncompressed) == (2.0, 1.0, 3.0, 2.0)


@pytest.mark.parametrize("shape", [(0, 5), (5, 0), (1, 1), (3, 7)])
def test_rle_of_empty_and_degenerate_masks(shape):
    mask = np.zeros(shape, dtype=bool)
    rle = mask_to_rle(mask)
    assert rle["size"] == list(shape)
    assert rle_area(rle) == 0
    assert rle_to_mask(rle).shape == shape
    assert rle_to_xyxy(rle) is None


def test_nonbool_masks_count_every_nonzero_value():
    mask = np.zeros((4, 4), dtype=np.float32)
    mask[1, 1], mask[2, 3] = 0.4, 255.0
    assert mask_to_xyxy(mask) == (1.0, 1.0, 4.0, 3.0)
    assert rle_area(mask_to_rle(mask)) == 2
    assert mask_to_point(mask.astype(np.uint8) * 0) is None


def test_strided_views_give_the_same_geometry_as_copies():
    mask = _disc(40, 30, 12, 20, 9) | _disc(40, 30, 25, 5, 3)
    for view in (mask[::2, ::3], mask.T, mask[::-1]):
        copy = np.ascontiguousarray(view)
        assert mask_to_rle_box_point(view) == mask_to_rle_box_point(copy)
        assert [p.sum() for p in mask_to_instances(view)] == [p.sum() for p in mask_to_instances(copy)]


def test_wrong_rank_is_a_clear_error():
    with pytest.raises(ValueError, match=r"2-D \(H, W\).*\(1, 4, 4\)"):
        mask_to_xyxy(np.ones((1, 4, 4), dtype=bool))


# --- Tight boxes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pixels", "shape", "box"),
    [
        ([(5, 3)], (10, 10), (3.0, 5.0, 4.0, 6.0)),  # the brief's example: column 3, row 5
        ([(0, 0)], (1, 1), (0.0, 0.0, 1.0, 1.0)),
        ([(0, 0), (9, 9)], (10, 10), (0.0, 0.0, 10.0, 10.0)),  # two corners: the whole frame
        ([(2, 7), (4, 1)], (8, 8), (1.0, 2.0, 8.0, 5.0)),  # touches the right border
        ([], (6, 6), None),
    ],
)
def test_mask_to_xyxy_table(pixels, shape, box):
    mask = np.zeros(shape, dtype=bool)
    for r, c in pixels:
        mask[r, c] = True
    assert mask_to_xyxy(mask) == box


@settings(max_examples=300)
@given(any_masks)
def test_mask_to_xyxy_is_the_tightest_box_and_agrees_with_coco(mask):
    box = mask_to_xyxy(mask)
    if not mask.any():
        assert box is None
        return
    x0, y0, x1, y1 = (int(v) for v in box)
    assert all(float(v).is_integer() for v in box)
    assert np.count_nonzero(mask[y0:y1, x0:x1]) == np.count_nonzero(mask)  # encloses the mask
    # ...and each side touches it, so no smaller box does.
    assert mask[y0, x0:x1].any() and mask[y1 - 1, x0:x1].any()
    assert mask[y0:y1, x0].any() and mask[y0:y1, x1 - 1].any()
    assert box == xywh_to_xyxy(tuple(float(v) for v in mask_utils.toBbox(_coco(mask))))
    assert rle_to_xyxy(mask_to_rle(mask)) == box


def test_xyxy_xywh_round_trip():
    assert xyxy_to_xywh((3, 5, 4, 6)) == (3, 5, 1, 1)
    assert xywh_to_xyxy(xyxy_to_xywh((1.5, 2.0, 10.0, 4.5))) == (1.5, 2.0, 10.0, 4.5)


# --- Interior points ------------------------------------------------------------------------


def _max_depth(mask: np.ndarray) -> np.ndarray:
    """Distance to the nearest background pixel, the image border counting as background."""
    return ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]


@settings(max_examples=300)
@given(any_masks)
def test_mask_to_point_lies_inside_as_deep_as_possible(mask):
    point = mask_to_point(mask)
    if not mask.any():
        assert point is None
        return
    x, y = point
    assert (x % 1, y % 1) == (0.5, 0.5)  # a pixel centre
    assert point_in_mask(point, mask)
    depth = _max_depth(mask)
    assert depth[int(y), int(x)] == pytest.approx(depth.max(), abs=1e-4)


def test_point_of_a_ring_is_on_the_ring_not_in_the_hole():
    ring = _disc(41, 41, 20.5, 20.5, 18) & ~_disc(41, 41, 20.5, 20.5, 10)
    x, y = mask_to_point(ring)
    assert ring[int(y), int(x)]
    assert 10 <= math.hypot(x - 20.5, y - 20.5) <= 18


def test_point_of_a_crescent_is_inside_although_its_centroid_is_not():
    crescent = _disc(40, 40, 20, 20, 15) & ~_disc(40, 40, 24, 20, 14)
    rows, cols = np.nonzero(crescent)
    assert not crescent[int(rows.mean()), int(cols.mean())]  # the centroid falls outside
    assert point_in_mask(mask_to_point(crescent), crescent)


def test_point_of_several_parts_lies_in_the_largest():
    mask = _disc(30, 60, 10, 15, 4) | _disc(30, 60, 40, 15, 9)
    x, y = mask_to_point(mask)
    assert (x, y) == (39.5, 14.5) or math.hypot(x - 40, y - 15) <= 1.0


@pytest.mark.parametrize(
    ("shape", "region", "point"),
    [
        ((5, 5), np.s_[2, 3], (3.5, 2.5)),  # one pixel
        ((5, 5), np.s_[0, 0], (0.5, 0.5)),  # one pixel in the corner
        ((3, 41), np.s_[1, :], (20.5, 1.5)),  # a bar: its middle, not an end
        ((6, 6), np.s_[:, :], (2.5, 2.5)),  # the whole frame: the border is an edge
    ],
)
def test_mask_to_point_table(shape, region, point):
    mask = np.zeros(shape, dtype=bool)
    mask[region] = True
    assert mask_to_point(mask) == point


@settings(max_examples=200)
@given(shaped_masks())
def test_rle_box_point_matches_the_separate_functions(mask):
    both = mask_to_rle_box_point(mask)
    if not mask.any():
        assert both is None
        return
    assert both == (mask_to_rle(mask), mask_to_xyxy(mask), mask_to_point(mask))


# --- Components -----------------------------------------------------------------------------


@settings(max_examples=200)
@given(any_masks)
def test_mask_to_instances_splits_8_connected_components(mask):
    parts = mask_to_instances(mask)
    _, n = ndimage.label(mask, structure=np.ones((3, 3)))
    assert len(parts) == n
    areas = [int(p.sum()) for p in parts]
    assert areas == sorted(areas, reverse=True)
    total = np.zeros_like(mask, dtype=int)
    for part in parts:
        assert part.shape == mask.shape and part.dtype == bool
        assert ndimage.label(part, structure=np.ones((3, 3)))[1] == 1
        total += part
    np.testing.assert_array_equal(total, mask.astype(int))  # disjoint, and they cover the mask


def test_mask_to_instances_drops_small_parts_and_joins_diagonals():
    mask = np.zeros((10, 10), dtype=bool)
    mask[0, 0] = mask[1, 1] = True  # diagonal neighbours: one component
    mask[5:8, 5:8] = True
    mask[9, 0] = True
    parts = mask_to_instances(mask, min_area=2)
    assert [int(p.sum()) for p in parts] == [9, 2]
    assert mask_to_instances(np.zeros((4, 4), dtype=bool)) == []


# --- IoU and point tables -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10), 1.0),
        ((0, 0, 10, 10), (5, 0, 15, 10), 50 / 150),
        ((0, 0, 10, 10), (10, 0, 20, 10), 0.0),  # touching edges share no area
        ((0, 0, 10, 10), (2, 2, 4, 4), 4 / 100),
        ((0, 0, 0, 0), (0, 0, 0, 0), 0.0),  # degenerate boxes: 0, not NaN
        ((5, 5, 1, 1), (0, 0, 10, 10), 0.0),  # inverted box has no area
    ],
)
def test_box_iou_table(a, b, iou):
    assert box_iou(np.array([a]), np.array([b]))[0, 0] == pytest.approx(iou)


def test_box_iou_is_pairwise():
    a = np.array([[0, 0, 10, 10], [20, 20, 30, 30]])
    b = np.array([[0, 0, 10, 10], [0, 0, 5, 10], [100, 100, 101, 101]])
    np.testing.assert_allclose(box_iou(a, b), [[1.0, 0.5, 0.0], [0.0, 0.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_mask_iou_table():
    a = np.zeros((4, 4), dtype=bool)
    b = np.zeros((4, 4), dtype=bool)
    assert mask_iou(a, b) == 0.0
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(a, a) == 1.0
    assert mask_intersection_over_min(a[:1].repeat(4, 0) & a, a) == 1.0
    assert mask_intersection_over_min(a, np.zeros_like(a)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        mask_iou(a, a[:3])


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((3.5, 5.5), True),
        ((3.0, 5.0), True),  # the pixel's top-left corner belongs to it
        ((4.0, 5.5), False),  # its right edge belongs to the next pixel
        ((3.99, 5.99), True),
        ((-0.5, 5.5), False),
        ((3.5, 1e9), False),
        ((float("nan"), 5.5), False),
        ((float("inf"), 5.5), False),
    ],
)
def test_point_in_mask_table(point, inside):
    mask = np.zeros((8, 8), dtype=bool)
    mask[5, 3] = True
    assert point_in_mask(point, mask) is inside


def _deepest_reference(mask: np.ndarray) -> tuple[float, float]:
    """Exact reference: SciPy's float64 transform, ties broken the documented way."""
    squared = np.rint(ndimage.distance_transform_edt(np.pad(mask, 1)) ** 2)[1:-1, 1:-1]
    rows, cols = np.nonzero(squared == squared.max())
    best = np.argmin((rows - rows.mean()) ** 2 + (cols - cols.mean()) ** 2)
    return (cols[best] + 0.5, rows[best] + 0.5)


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=60, deadline=None)
def test_point_is_the_exact_deepest_pixel_so_every_process_agrees(seed):
    # OpenCV's float32 distances of equal depth can differ in their last bits between processes;
    # the point must not depend on them, so it must equal an exact float64 reference.
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :80]
    cx, cy, rx, ry = rng.uniform(10, 70), rng.uniform(10, 54), rng.uniform(3, 30), rng.uniform(3, 30)
    mask = (xx - cx) ** 2 / rx**2 + (yy - cy) ** 2 / ry**2 < 1
    if not mask.any():
        return
    assert mask_to_point(mask) == _deepest_reference(mask)
