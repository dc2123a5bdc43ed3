"""The reward and format fast paths give exactly what the general code they short-cut gives.

Each property runs a fast path and its reference on the same generated input: merged mask runs
(`run_table` + `distinct_hits`) against per-point mask lookups (`point_hits` + `hungarian_hits`),
the backwards qwen key search against the `_QWEN_START` regex, the one-regex tag pairing against
the general pairing, plain number lists against the JSON reader, and plain-Python box tables
against numpy's.
"""

from __future__ import annotations

import math
import re
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from synth.core.formats import scan
from synth.core.formats.lenient_json import parse_json_lenient
from synth.core.geometry import mask_to_rle, rle_to_mask
from synth.rewards.matching import (
    SMALL,
    _match_boxes_numpy,
    distinct_hits,
    hungarian_hits,
    match_boxes,
    point_hits,
    run_table,
)
from synth.rewards.rle import rle_boundaries

FAST = settings(max_examples=200, deadline=None)

# ---------------------------------------------------------------------------------------------
# Point hits: merged runs vs per-point mask lookups


@st.composite
def mask_sets(draw):
    """(height, width, masks): disjoint masks cut from a label image, or independent masks that
    may overlap; some are empty (a label no pixel carries)."""
    h, w = draw(st.integers(1, 10)), draw(st.integers(1, 10))
    n = draw(st.integers(1, 5))
    if draw(st.booleans()):
        labels = np.array(draw(st.lists(st.integers(0, n), min_size=h * w, max_size=h * w))).reshape(h, w)
        masks = [labels == k + 1 for k in range(n)]
    else:
        cells = st.lists(st.booleans(), min_size=h * w, max_size=h * w)
        masks = [np.array(draw(cells)).reshape(h, w) for _ in range(n)]
    return h, w, masks


def _points(h: int, w: int):
    """Points inside, on the edges of and outside an h x w image, and a few non-finite ones."""
    coord = lambda top: st.one_of(  # noqa: E731
        st.floats(-2, top + 2, allow_nan=False),
        st.integers(-1, top + 1).map(float),  # pixel edges: x == w is outside
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, -1e-12]),
    )
    return st.lists(st.tuples(coord(w), coord(h)), max_size=12)


def _reference_hits(points, bounds, h, w) -> int:
    table = point_hits(np.array(points, dtype=np.float64).reshape(-1, 2),
                       [np.asarray(b, dtype=np.int64) for b in bounds], [(h, w)] * len(bounds),
                       np.zeros((len(bounds), 4)))
    return hungarian_hits(table)


@FAST
@given(st.data())
def test_merged_runs_count_the_instances_per_point_lookups_match(data):
    h, w, masks = data.draw(mask_sets())
    bounds = [rle_boundaries(mask_to_rle(m)).tolist() for m in masks]
    points = data.draw(_points(h, w))
    table = run_table(bounds, [(h, w)] * len(bounds))
    stacked = np.stack(masks)
    overlap = bool((stacked.sum(axis=0) > 1).any())
    # The fast path is taken exactly when the masks are disjoint, and then counts the same.
    assert (table is None) == overlap
    if table is not None:
        assert distinct_hits(points, table) == _reference_hits(points, bounds, h, w)


@FAST
@given(st.data())
def test_merged_runs_read_malformed_boundaries_as_the_bisecting_path_does(data):
    # Run ends that are not valid RLE (short of h*w, past it, odd in number, unsorted).
    h, w = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 8))
    ends = st.lists(st.integers(-1, h * w + 3), max_size=7)
    bounds = data.draw(st.lists(st.one_of(ends, ends.map(sorted)), min_size=1, max_size=4))
    points = data.draw(_points(h, w))
    table = run_table(bounds, [(h, w)] * len(bounds))
    if table is not None:
        assert distinct_hits(points, table) == _reference_hits(points, bounds, h, w)


def test_merged_runs_refuse_missing_masks_and_mixed_sizes():
    one = rle_boundaries(mask_to_rle(np.eye(4, dtype=bool))).tolist()
    assert run_table([one, None], [(4, 4), (4, 4)]) is None
    assert run_table([one, one[:1]], [(4, 4), (4, 5)]) is None
    assert run_table([], []) is None


# ---------------------------------------------------------------------------------------------
# Qwen: backwards key search vs the forward regex

_QWEN_TOKENS = ["{", "}", "[", "]", " ", "\n", "\t", "\x1c", "\x85", "\u00a0", "\u2028", "\u200b", '"', "'",
                ":", ",", "bbox_2d", "point_2d", "bbox_2", "label", "x", "1"]
_QWEN_PADDING = st.integers(190, 205).map(lambda n: "a" * n)  # around the regex's 200-character reach
_SPACES = "  \n\t\x1c\x85\u00a0\u2028\u200b"  # str.isspace and regex \s, and one that is neither
# The start of an object naming a key, maybe opening a list: what the regex looks for.
_QWEN_HEADS = st.tuples(
    st.sampled_from(["", "[", "[["]), st.text(_SPACES, max_size=3), st.just("{"),
    st.one_of(st.sampled_from(["", '"label": "cat", ', "x}"]), _QWEN_PADDING),
    st.sampled_from(['"', "'", ""]), st.sampled_from(["bbox_2d", "point_2d"]), st.sampled_from(['"', "'", ""]),
    st.sampled_from([":", " :", "\n:", ""]),
).map("".join)
qwen_texts = st.lists(st.one_of(st.sampled_from(_QWEN_TOKENS), _QWEN_PADDING, _QWEN_HEADS), max_size=30).map("".join)


@FAST
@given(qwen_texts)
def test_qwen_starts_are_where_the_regex_matches(text):
    assert scan._qwen_starts(text) == [m.start() for m in scan._QWEN_START.finditer(text)]


@FAST
@given(st.integers(0, 2), st.integers(195, 205), st.sampled_from(['"', "'", ""]),
       st.sampled_from(["", "[", "[ ", "[\n\t"]), st.sampled_from(["bbox_2d", "point_2d"]))
def test_qwen_starts_at_the_reach_limit(lead, gap, quote, opener, key):
    text = "x" * lead + opener + "{" + "a" * gap + quote + key + quote + ": [1, 2]}"
    assert scan._qwen_starts(text) == [m.start() for m in scan._QWEN_START.finditer(text)]


# ---------------------------------------------------------------------------------------------
# tvg/ivgr tags: one-regex pairing vs the general pairing

_NEVER_WHOLE = re.compile(r"(x)?(x)?(x)?")  # first match has no kind: `_tag_spans` takes the general path


def _general_tag_spans(text: str):
    with mock.patch.object(scan, "_WHOLE_TAG", _NEVER_WHOLE):
        return scan._tag_spans(text)


_BODIES = ["[1,2]", "[10,20,30,40]", "[[1,2],[3,4]]", " [1, 2] ", "", "[1,", "{}", "cat", "[", "]"]
_TAG_TOKENS = ["<point>", "<box>", "</point>", "</box>", "<POINT>", "</Box >", "</point\n>", "< point>",
               "<points>", "<", ">", "/", " ", "\n", "the dog", ".", *_BODIES]


@st.composite
def well_formed_tag_texts(draw):
    parts = []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["point", "box", "POINT", "Box"]))
        close = draw(st.sampled_from([kind, kind.lower(), kind.upper()]))
        space = draw(st.sampled_from(["", " ", "\n"]))
        parts.append(draw(st.sampled_from(["", "a cat ", "two dogs. "])))
        parts.append(f"<{kind}>{draw(st.sampled_from(_BODIES))}</{close}{space}>")
    return "".join(parts)


mangled_tag_texts = st.lists(st.sampled_from(_TAG_TOKENS), max_size=25).map("".join)


@FAST
@given(st.one_of(well_formed_tag_texts(), mangled_tag_texts))
def test_tag_spans_pair_tags_as_the_general_pairing_does(text):
    assert scan._tag_spans(text) == _general_tag_spans(text)


@FAST
@given(well_formed_tag_texts(), st.booleans())
def test_scanned_tags_are_the_same_whichever_pairing_ran(text, merge):
    fast = scan._scan_tags(text, merge_adjacent=merge)
    with mock.patch.object(scan, "_WHOLE_TAG", _NEVER_WHOLE):
        general = scan._scan_tags(text, merge_adjacent=merge)
    assert fast == general


# ---------------------------------------------------------------------------------------------
# Number lists: plain split vs the JSON reader

_NUMBERS = st.one_of(
    st.integers(0, 10**12).map(str),
    st.integers(-10**6, -1).map(str),
    st.floats(0, 1e12, allow_nan=False).map(repr),  # repr may write exponents ("1e-05", "1e+16")
    st.floats(-1e6, 0, allow_nan=False).map(repr),
    st.tuples(st.integers(0, 10**9), st.text("0123456789", min_size=1, max_size=25)).map(lambda t: f"{t[0]}.{t[1]}"),
    st.text("0123456789", min_size=1, max_size=4).map(lambda s: "0" + s),  # leading zeros
    st.sampled_from(["0", "0.0", "1e3", "1E3", "2e-3", "-0", "00", ".5", "5.", "1_000", " 7", "7 "]),
)


@st.composite
def number_bodies(draw):
    row = st.lists(_NUMBERS, min_size=1, max_size=5)
    sep = draw(st.sampled_from([",", ", ", " ,"]))
    if draw(st.booleans()):
        return "[" + sep.join(draw(row)) + "]"
    rows = draw(st.lists(row, min_size=1, max_size=4))
    return "[" + sep.join("[" + sep.join(r) + "]" for r in rows) + "]"


@FAST
@given(number_bodies(), st.sampled_from([2, 4]))
def test_plain_numbers_read_as_the_json_reader_does(body, arity):
    fast = scan._plain_numbers(body, arity)
    if fast is not None:
        assert fast == scan._coords(parse_json_lenient(body)[0], arity)
        assert all(type(v) is float for row in fast[0] for v in row)


@FAST
@given(st.lists(st.lists(st.integers(0, 999_999_999), min_size=1, max_size=5), min_size=1, max_size=4),
       st.sampled_from([2, 4]), st.booleans())
def test_plain_numbers_take_the_form_render_trace_writes(rows, arity, flat):
    # The fast path must actually run on what the renderer writes, or it saves nothing.
    text = lambda r: "[" + ",".join(map(str, r)) + "]"  # noqa: E731
    body = text(rows[0]) if flat else "[" + ",".join(map(text, rows)) + "]"
    fast = scan._plain_numbers(body, arity)
    assert fast is not None
    assert fast == scan._coords(parse_json_lenient(body)[0], arity)


# ---------------------------------------------------------------------------------------------
# Box tables: plain-Python IoUs vs numpy's

_COORD = st.one_of(
    st.floats(-50, 150, allow_nan=False),
    st.integers(0, 100).map(float),  # shared edges make ties and exact duplicates
    st.floats(allow_nan=False, allow_infinity=False),  # huge and subnormal: areas overflow or vanish
)
_BOX = st.one_of(
    st.tuples(_COORD, _COORD, _COORD, _COORD).map(list),
    st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 40), st.integers(1, 40)).map(
        lambda b: [float(b[0]), float(b[1]), float(b[0] + b[2]), float(b[1] + b[3])]),
)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's reference overflows on huge boxes, by design
@FAST
@given(st.lists(_BOX, min_size=6, max_size=14), st.lists(_BOX, min_size=1, max_size=14),
       st.sampled_from([0.9, 0.5, 0.0]), st.booleans())
def test_large_box_tables_score_exactly_as_numpy(pred, true, duplicate_iou, as_array):
    assume(len(pred) * (len(pred) + len(true)) > SMALL)
    reference = _match_boxes_numpy(np.array(pred), np.array(true), duplicate_iou)
    args = (np.array(pred), np.array(true)) if as_array else (pred, true)
    assert match_boxes(*args, duplicate_iou=duplicate_iou) == reference


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@FAST
@given(st.lists(_BOX, min_size=1, max_size=4), st.lists(_BOX, min_size=1, max_size=6))
def test_small_box_tables_score_as_numpy(pred, true):
    assume(len(pred) * (len(pred) + len(true)) <= SMALL)
    fast = match_boxes(pred, true)
    reference = _match_boxes_numpy(np.array(pred), np.array(true), 0.9)
    assert (fast.duplicates, fast.matched) == (reference.duplicates, reference.matched)
    # Python's sums and numpy's may differ in the last bit; nothing a reward notices.
    for got, want in [(fast.recall, reference.recall), (fast.precision, reference.precision),
                      (fast.hungarian, reference.hungarian)]:
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
