"""Point-in-mask lookups on compressed RLE agree with decoded masks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from synth.core.geometry import mask_to_rle
from synth.rewards.rle import points_in_rle, rle_boundaries, rle_string_to_counts
from tests.rewards.factory import disc_mask


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5000), min_size=1, max_size=40))
def test_decoding_compressed_counts_gives_back_the_run_lengths(runs):
    total = sum(runs) or 1
    h, w = 1, total
    runs = runs if sum(runs) else [1]
    coded = mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)
    assert rle_string_to_counts(coded["counts"].decode("ascii")) == runs


@settings(max_examples=60, deadline=None)
@given(arrays(np.bool_, st.tuples(st.integers(1, 12), st.integers(1, 12))), st.data())
def test_points_in_rle_match_the_decoded_mask(mask, data):
    h, w = mask.shape
    rle = mask_to_rle(mask)
    xs = data.draw(st.lists(st.floats(-2, w + 2, allow_nan=False), min_size=1, max_size=20))
    ys = data.draw(st.lists(st.floats(-2, h + 2, allow_nan=False), min_size=len(xs), max_size=len(xs)))
    points = np.array(list(zip(xs, ys)))
    got = points_in_rle(points, rle_boundaries(rle), rle["size"])
    want = [0 <= x < w and 0 <= y < h and bool(mask[int(np.floor(y)), int(np.floor(x))]) for x, y in points]
    assert got.tolist() == want


def test_disc_edge_pixels_are_told_apart():
    mask = disc_mask(48, 64, 12, 12, 5)  # pixel (16, 11) is inside, (17, 11) is not
    rle = mask_to_rle(mask)
    inside = points_in_rle(np.array([[16.9, 11.2], [17.1, 11.2], [12, 12], [np.nan, 3], [64, 0]]),
                           rle_boundaries(rle), rle["size"])
    assert inside.tolist() == [True, False, True, False, False]


def test_plain_list_counts_work_too():
    rle = {"size": [2, 2], "counts": [1, 2, 1]}  # column-major: (r0,c0)=0, (r1,c0)=1, (r0,c1)=1, (r1,c1)=0
    inside = points_in_rle(np.array([[0.5, 0.5], [0.5, 1.5], [1.5, 0.5], [1.5, 1.5]]), rle_boundaries(rle), [2, 2])
    assert inside.tolist() == [False, True, True, False]


def test_garbage_counts_raise_a_clear_error():
    with pytest.raises(ValueError, match="expected 48..111"):
        rle_string_to_counts("ab~~\x01")
