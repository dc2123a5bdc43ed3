"""Trace formats: render -> parse round trips in every format and frame, repair, fuzzing, stripping."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.core.formats import (
    FORMATS,
    FRAME_DECIMALS,
    FRAME_KINDS,
    PARSE_REASONS,
    Frame,
    Grounding,
    format_name,
    parse_format_name,
    parse_groundings,
    parse_json_lenient,
    qwen_resized_frame,
    qwen_smart_resize,
    render_trace,
    strip_groundings,
)
from synth.core.formats.scan import scan
from synth.core.records import GroundedObject, Instance

NOUNS = ["apples", "red cups", "dog", "blue car", "plate", "small birds", "tree", "chairs"]
FILLER = ["I", "count", "the", "there", "are", "on", "left", "of", "and", "then", "we", "see", "some"]


def _frame(kind: str, width: int, height: int) -> Frame:
    if kind == "resized":
        return qwen_resized_frame(width, height)
    return Frame(kind, width, height)  # type: ignore[arg-type]


@st.composite
def scenes(draw):
    """(trace, objects, frame) with instances inside the image and spans on the phrases."""
    width, height = draw(st.integers(1, 4000)), draw(st.integers(1, 4000))
    if max(width, height) / min(width, height) > 150:
        height = width
    frame = _frame(draw(st.sampled_from(FRAME_KINDS)), width, height)
    phrases = draw(st.lists(st.sampled_from(NOUNS), min_size=1, max_size=4, unique=True))
    words, objects = [], []
    for phrase in phrases:
        words += draw(st.lists(st.sampled_from(FILLER), min_size=0, max_size=4))
        start = len(" ".join(words + [""])) if words else 0
        words.append(phrase)
        objects.append(GroundedObject(phrase, [(start, start + len(phrase))], instances=draw(instances(width, height))))
    tail = draw(st.sampled_from(["", ".", " on it.", ", then more", "?"]))
    trace = " ".join(words) + tail
    for obj in objects:
        assert trace[slice(*obj.spans[0])] == obj.phrase
    return trace, objects, frame


def instances(width: int, height: int):
    @st.composite
    def one(draw):
        x0, y0 = draw(st.integers(0, width - 1)), draw(st.integers(0, height - 1))
        x1, y1 = draw(st.integers(x0 + 1, width)), draw(st.integers(y0 + 1, height))
        point = [draw(st.integers(0, width - 1)) + 0.5, draw(st.integers(0, height - 1)) + 0.5]
        return Instance({}, [float(x0), float(y0), float(x1), float(y1)], point)

    return st.lists(one(), min_size=1, max_size=4)


def _tolerance(frame: Frame) -> np.ndarray:
    """Half a rendered unit, in pixels, per axis."""
    unit = 10.0 ** -FRAME_DECIMALS[frame.kind]
    ex, ey = frame.extent
    return np.array([0.5 * unit * frame.width / ex, 0.5 * unit * frame.height / ey]) + 1e-6


# --- Round trips ----------------------------------------------------------------------------


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.sampled_from(FORMATS), st.sampled_from(["point", "box"]))
def test_render_then_parse_gives_back_the_geometry(scene, fmt, geometry):
    trace, objects, frame = scene
    text = render_trace(trace, objects, fmt, frame, geometry, answer="3")
    groundings, reason = parse_groundings(text, fmt, frame)
    assert reason is None, text
    kind = {"ivgr": "box", "molmo": "point"}.get(fmt, geometry)
    assert [g.kind for g in groundings] == [kind] * len(objects)
    tol = _tolerance(frame)
    for obj, found in zip(objects, groundings):
        truth = np.array([inst.point if kind == "point" else inst.box for inst in obj.instances])
        got = np.array(found.coords)
        assert got.shape == truth.shape
        assert (np.abs(got - truth) <= np.resize(tol, truth.shape[1])).all(), (text, got, truth)
        if fmt in ("molmo", "qwen"):
            assert found.phrase == obj.phrase
        assert text[found.start : found.end].strip()  # the span covers the markup


@settings(max_examples=300)
@given(scenes(), st.sampled_from(FORMATS), st.sampled_from(["point", "box"]))
def test_strip_of_a_rendering_is_the_plain_trace(scene, fmt, geometry):
    trace, objects, frame = scene
    text = render_trace(trace, objects, fmt, frame, geometry, answer="3")
    expected = f"<think>{trace}</think><answer>3</answer>" if fmt == "ivgr" else trace
    assert strip_groundings(text, fmt) == expected


@pytest.mark.parametrize("kind", FRAME_KINDS)
def test_pixel_centre_points_land_in_their_pixel_in_pixel_like_frames(kind):
    frame = _frame(kind, 640, 480)
    obj = GroundedObject("dot", [(4, 7)], instances=[Instance({}, [3, 5, 4, 6], [3.5, 5.5])])
    text = render_trace("the dot here", [obj], "tvg", frame, "point")
    (found,), _ = parse_groundings(text, "tvg", frame)
    if kind == "pixel":
        assert text == "the dot <point>[[3,5]]</point> here"
        assert found.coords == [(3.5, 5.5)]  # exact: the integer names the pixel
    x, y = found.coords[0]
    assert abs(x - 3.5) <= _tolerance(frame)[0] and abs(y - 5.5) <= _tolerance(frame)[1]


def test_documented_renderings():
    boxes = [Instance({}, [50, 80, 120, 150], [85.5, 115.5]), Instance({}, [0, 0, 10, 10], [5.5, 5.5])]
    ball = GroundedObject("ball", [(4, 8)], instances=boxes)
    trace = "the ball is red"
    pixel = Frame("pixel", 640, 480)
    assert render_trace(trace, [ball], "tvg", pixel, "box") == (
        "the ball <box>[[50,80,120,150],[0,0,10,10]]</box> is red"
    )
    assert render_trace(trace, [ball], "ivgr", pixel, "point", answer="Blue") == (
        "<think>the ball <box>[50,80,120,150]</box><box>[0,0,10,10]</box> is red</think><answer>Blue</answer>"
    )
    assert render_trace(trace, [ball], "molmo", Frame("norm100", 200, 200), "box") == (
        'the <points x1="42.8" y1="57.8" x2="2.8" y2="2.8" alt="ball">ball</points> is red'
    )
    assert render_trace(trace, [ball], "qwen", Frame("norm1000", 1000, 500), "box") == (
        'the ball [{"bbox_2d": [50, 160, 120, 300], "label": "ball"}, {"bbox_2d": [0, 0, 10, 20], "label": "ball"}]'
        " is red"
    )
    single = GroundedObject('the "big" ball', [(0, 8)], instances=boxes[:1])
    assert render_trace(trace, [single], "molmo", Frame("norm1", 100, 200), "point") == (
        '<point x="0.855" y="0.578" alt="the &quot;big&quot; ball">the ball</point> is red'
    )


# --- Rendering edge cases -------------------------------------------------------------------


def test_render_anchors_by_phrase_skips_empty_objects_and_keeps_order_at_one_anchor():
    inst = [Instance({}, [1, 2, 3, 4], [1.5, 2.5])]
    objects = [
        GroundedObject("cat", [], instances=inst),  # no span: its first whole-word occurrence
        GroundedObject("ghost", [(0, 3)], instances=[]),  # nothing to ground
        GroundedObject("cats", [(14, 18)], instances=inst),
        GroundedObject("two cats", [(10, 18)], instances=inst),  # same end as "cats"
    ]
    text = render_trace("a cat and two cats sit", objects, "tvg", Frame("pixel", 10, 10), "point")
    tag = "<point>[[1,2]]</point>"
    assert text == f"a cat {tag} and two cats {tag} {tag} sit"
    assert strip_groundings(text, "tvg") == "a cat and two cats sit"
    with pytest.raises(ValueError, match="no span"):
        render_trace("two cats", objects[:1], "tvg", Frame("pixel", 10, 10), "point")


def test_molmo_moves_an_overlapping_object_to_its_next_span():
    inst = [Instance({}, [1, 2, 3, 4], [1.5, 2.5])]
    objects = [
        GroundedObject("red ball", [(0, 8)], instances=inst),
        GroundedObject("ball", [(4, 8), (13, 17)], instances=inst),
    ]
    text = render_trace("red ball and ball", objects, "molmo", Frame("pixel", 10, 10), "point")
    assert text.count("<point ") == 2 and text.endswith('alt="ball">ball</point>')
    assert strip_groundings(text, "molmo") == "red ball and ball"


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (GroundedObject("cat", [(5, 50)], instances=[Instance({}, [0, 0, 1, 1], [0.5, 0.5])]), "outside the trace"),
        (GroundedObject("dog", [], instances=[Instance({}, [0, 0, 1, 1], [0.5, 0.5])]), "no span"),
        (GroundedObject("cat", [(0, 3)], instances=[Instance({}, [0, 0, 1, 1], [math.nan, 0.5])]), "non-finite"),
        (GroundedObject("cat", [(0, 3)], instances=[Instance({}, [0, 0, 1], [0.5, 0.5])]), "not 4 numbers"),
    ],
)
def test_render_errors_name_the_object_and_the_problem(obj, message):
    geometry = "box" if "4 numbers" in message else "point"
    with pytest.raises(ValueError, match=message):
        render_trace("cat sat", [obj], "tvg", Frame("pixel", 10, 10), geometry)


def test_unknown_names_list_the_choices():
    with pytest.raises(ValueError, match="choices: tvg, ivgr, molmo, qwen"):
        render_trace("x", [], "kosmos", Frame("pixel", 1, 1), "box")
    with pytest.raises(ValueError, match="choices: tvg, ivgr, molmo, qwen"):
        parse_groundings("x", "kosmos", Frame("pixel", 1, 1))
    with pytest.raises(ValueError, match="choices: point, box"):
        render_trace("x", [], "tvg", Frame("pixel", 1, 1), "mask")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="choices: pixel, norm1"):
        Frame("norm10", 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resized_width"):
        Frame("resized", 10, 10)
    with pytest.raises(ValueError, match="positive"):
        Frame("pixel", 0, 10)


# --- Frames and names -----------------------------------------------------------------------


@given(
    st.sampled_from(FRAME_KINDS),
    st.integers(1, 5000),
    st.integers(1, 5000),
    st.lists(st.floats(-1e4, 1e4), min_size=4, max_size=4),
)
def test_frame_conversions_are_inverse(kind, width, height, xy):
    frame = Frame(kind, width, height, 2 * width, height // 2 + 1)  # type: ignore[arg-type]
    np.testing.assert_allclose(frame.from_frame(frame.to_frame(xy)), xy, rtol=1e-9, atol=1e-9)


def test_frame_table():
    np.testing.assert_allclose(Frame("norm1000", 640, 480).to_frame([640, 240]), [1000.0, 500.0])
    np.testing.assert_allclose(Frame("norm1", 200, 100).to_frame([[50, 50, 100, 100]]), [[0.25, 0.5, 0.5, 1.0]])
    np.testing.assert_allclose(Frame("resized", 640, 480, 320, 240).from_frame([10, 20]), [20.0, 40.0])
    assert Frame("norm100", 640, 480).extent == (100.0, 100.0)
    with pytest.raises(ValueError, match="pairs"):
        Frame("pixel", 1, 1).to_frame([1, 2, 3])


def test_format_names():
    assert format_name("tvg", "norm1000") == "tvg:norm1000"
    assert parse_format_name("qwen:resized") == ("qwen", "resized")
    with pytest.raises(ValueError, match="frame kind"):
        format_name("tvg", "norm10")


@pytest.mark.parametrize(
    ("hw", "resized"),
    [
        ((480, 640), (476, 644)),
        ((1080, 1920), (728, 1316)),  # above max_pixels: scaled down, floored to 28
        ((20, 20), (56, 56)),  # below min_pixels: scaled up, ceiled to 28
        ((28, 28), (56, 56)),
        ((1000, 1000), (980, 980)),  # 1008 x 1008 would exceed max_pixels
    ],
)
def test_qwen_smart_resize_table(hw, resized):
    assert qwen_smart_resize(*hw) == resized


@given(st.integers(1, 6000), st.integers(1, 6000))
def test_qwen_smart_resize_invariants(height, width):
    if max(height, width) / min(height, width) > 200:
        with pytest.raises(ValueError, match="aspect ratio"):
            qwen_smart_resize(height, width)
        return
    h, w = qwen_smart_resize(height, width)
    assert h % 28 == 0 and w % 28 == 0 and h >= 28 and w >= 28
    assert h * w <= 14 * 14 * 4 * 1280 or min(h, w) == 28


@pytest.mark.models
def test_qwen_smart_resize_matches_transformers():
    reference = pytest.importorskip("transformers.models.qwen2_vl.image_processing_qwen2_vl").smart_resize
    limits = st.sampled_from([(56 * 56, 14 * 14 * 4 * 1280), (3136, 200704)])

    @settings(max_examples=500, deadline=None)
    @given(st.integers(28, 5000), st.integers(28, 5000), limits)
    def agrees(height, width, limits):
        if max(height, width) / min(height, width) <= 200:
            expected = tuple(reference(height, width, min_pixels=limits[0], max_pixels=limits[1]))
            assert qwen_smart_resize(height, width, min_pixels=limits[0], max_pixels=limits[1]) == expected

    agrees()


# --- Parsing model text ---------------------------------------------------------------------

PIXEL = Frame("pixel", 640, 480)


@pytest.mark.parametrize(
    ("text", "fmt", "expected", "reason"),
    [
        ('```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "cat"}]\n```', "qwen", [("cat", "box", [(1, 2, 3, 4)])], None),
        ('<think>hm</think>\n```json\n[\n {"point_2d": [10, 20], "label": "dog"},\n]\n```', "qwen",
         [("dog", "point", [(10.5, 20.5)])], None),  # trailing comma repaired
        ("[{'point_2d': [10, 20], 'label': 'dog'}]", "qwen", [("dog", "point", [(10.5, 20.5)])], None),
        ('{"label": "cat", "bbox_2d": [1, 2, 3, 4]}', "qwen", [("cat", "box", [(1, 2, 3, 4)])], None),
        ('see [{"bbox_2d": [1, 2, 3, 4], "label": "cat"}, {"bbox_2d": [5, 6', "qwen",
         [("cat", "box", [(1, 2, 3, 4)])], "truncated"),
        ('[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}]', "qwen",
         [("a", "box", [(1, 2, 3, 4)]), ("b", "box", [(5, 6, 7, 8)])], None),
        ('The answer is {"answer": 3}.', "qwen", [], "no_groundings"),
        ('<think>maybe [{"point_2d": [1, 1], "label": "dog"}]</think>[{"point_2d": [10, 20], "label": "dog"}]', "qwen",
         [("dog", "point", [(10.5, 20.5)])], None),  # the draft in the think block is left out
        ('<think>a dog [{"point_2d": [1, 1], "label": "dog"}]</think>One.', "qwen",
         [("dog", "point", [(1.5, 1.5)])], None),  # a grounded trace: its groundings are in the think block
        ("the apples <point>[[10,20],[30,", "tvg", [("apples", "point", [(10.5, 20.5)])], "truncated"),
        ("two cars <box>[1,2,3,4]</box> here", "tvg", [("cars", "box", [(1, 2, 3, 4)])], None),
        ("a cat <point>[[1,2,3]]</point>", "tvg", [], "malformed"),
        ("a cat <point>[[NaN, 2]]</point>", "tvg", [], "malformed"),
        ("a cat <point>[[1" + "0" * 400 + ", 2], [1e999, 2]]</point>", "tvg", [], "malformed"),  # beyond float
        ("a cat <point>[[1,2]] sits", "tvg", [("cat", "point", [(1.5, 2.5)])], "malformed"),
        ("no tags at all", "tvg", [], "no_groundings"),
        ("<think>the ball <box>[50,80,120,150]</box> is red</think><answer>Blue</answer>", "ivgr",
         [("ball", "box", [(50, 80, 120, 150)])], None),
        ("the mugs <box>[1,2,3,4]</box><box>[5,6,7,8]</box>", "ivgr",
         [("mugs", "box", [(1, 2, 3, 4), (5, 6, 7, 8)])], None),  # back-to-back tags: one grounding
        ("<point x='1' y='2' alt='cup'>cup</point>", "molmo", [("cup", "point", [(1.5, 2.5)])], None),
        ('<points x1="3" y1="4" x2="5" alt="cups">cups</points>', "molmo", [("cups", "point", [(3.5, 4.5)])],
         "malformed"),
        ('I see <points x1="3" y1="4" x2="5', "molmo", [("", "point", [(3.5, 4.5)])], "truncated"),
        ('I see <points x1="3" y1="4"> and <point x="1" y="2">', "molmo",
         [("", "point", [(3.5, 4.5)]), ("", "point", [(1.5, 2.5)])], "malformed"),
    ],
)
def test_parse_model_text_table(text, fmt, expected, reason):
    groundings, why = parse_groundings(text, fmt, PIXEL)
    assert why == reason
    assert [(g.phrase, g.kind, g.coords) for g in groundings] == [
        (p, k, [tuple(float(v) for v in c) for c in cs]) for p, k, cs in expected
    ]


def test_molmo_norm100_and_out_of_frame():
    frame = Frame("norm100", 200, 100)
    text = '<points x1="10.0" y1="20.0" x2="30.5" y2="40.5" alt="cars">cars</points>'
    (found,), why = parse_groundings(text, "molmo", frame)
    assert why is None and found.coords == [(20.0, 20.0), (61.0, 40.5)]
    (found,), why = parse_groundings("a cup <box>[[0,0,1200,10]]</box>", "tvg", Frame("norm1000", 100, 100))
    assert why == "out_of_frame" and found.coords == [(0.0, 0.0, 120.0, 1.0)]
    (found,), why = parse_groundings("a cup <point>[[1,2],[1e308,2]]</point>", "tvg", Frame("norm1", 1000, 10))
    assert why == "out_of_frame" and found.coords == [(1000.0, 20.0)]  # the overflowing point is dropped


def test_parse_spans_point_at_the_markup():
    text = "see the cat <box>[[1,2,3,4]]</box>."
    (found,), _ = parse_groundings(text, "tvg", PIXEL)
    assert text[found.start : found.end] == "<box>[[1,2,3,4]]</box>"
    assert isinstance(found, Grounding)


@pytest.mark.parametrize(
    ("text", "value", "reason"),
    [
        ("[1, 2]", [1, 2], None),
        ("[1, 2,]", [1, 2], "repaired"),
        ("{'a': 'b'}", {"a": "b"}, "repaired"),
        ('[{"a": [1, 2]}, {"a": [3', [{"a": [1, 2]}, {"a": [3]}], "truncated"),
        ('[{"a": "tex', [{"a": "tex"}], "truncated"),
        ("```json\n[1]\n```", [1], None),
        ("[1 2]", None, "malformed"),
        ("", None, "malformed"),
        ("[" * 5000, None, "malformed"),
    ],
)
def test_parse_json_lenient_table(text, value, reason):
    assert parse_json_lenient(text) == (value, reason)


# --- Never raising ----------------------------------------------------------------------------

FRAGMENTS = [
    "<point>", "</point>", "<box>", "</box>", "<points", "<point ", 'x="', 'x1="', 'y1="', 'alt="', '">', "</points>",
    "[", "]", "[[", "]]", "{", "}", '"bbox_2d"', "'point_2d'", ": ", ", ", '"label": "', '"', "'", "```json\n",
    "```", "<think>", "</think>", "<answer>", "NaN", "-", "1e9", "9" * 400, "1e999", "12", "3.5", " ", "\n",
    "cat", ".", "\\",
]


def _strip_by_the_rule(text: str, fmt: str) -> str:
    """strip_groundings' rule written plainly (cut each markup from the last to the first, then
    mend the spacing at the cut); quadratic, so only for checking the linear one.

    `untouched` is how much of the original text is still in place at the front: a mend may strip
    spaces that ended the markup before it, which that markup's cut then no longer removes."""
    untouched = len(text)
    for markup in sorted(scan(text, fmt), key=lambda m: m.start, reverse=True):
        assert markup.start <= untouched, "a markup starting with a space: the bookkeeping needs rethinking"
        text = text[: markup.start] + markup.keep + text[min(markup.end, untouched) :]
        untouched = markup.start
        if markup.keep:
            continue
        left, right = text[: markup.start].rstrip(" \t"), text[markup.start :].lstrip(" \t")
        untouched = len(left)
        had_space = len(left) + len(right) < len(text)
        before, after = left[-1:], right[:1]
        glue = after in ".,;:!?)]}\n<" or before in "([{\n" or not (after and before)
        text = left + (" " if not glue and (had_space or (before.isalnum() and after.isalnum())) else "") + right
    return text


def _markup(fmt: str, kind: str) -> str:
    """One grounding of the phrase "cat", rendered in `fmt` (without ivgr's think wrapper)."""
    inst = [Instance({}, [1, 2, 3, 4], [1.5, 2.5])]
    text = render_trace("cat", [GroundedObject("cat", [(0, 3)], instances=inst)], fmt, Frame("pixel", 10, 10), kind)
    return text.removeprefix("<think>").removesuffix("</think>").removeprefix("cat")


@st.composite
def marked_up_texts(draw):
    """(fmt, text): words, spacing, punctuation and well-formed and broken markup of `fmt`, mixed."""
    fmt = draw(st.sampled_from(FORMATS))
    pieces = [_markup(fmt, "point"), _markup(fmt, "box"), "cat", "dog", " ", "  ", "\t", " \t ", "\n", "(", ")",
              ".", ",", "<think>", "</think>"]
    return fmt, "".join(draw(st.lists(st.sampled_from([*pieces, *FRAGMENTS]), max_size=40)))


@settings(max_examples=1000)
@given(marked_up_texts())
def test_stripping_follows_its_rule(fmt_text):
    fmt, text = fmt_text
    assert strip_groundings(text, fmt) == _strip_by_the_rule(text, fmt)


@settings(max_examples=500)
@given(
    st.one_of(st.text(), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)),
    st.sampled_from(FORMATS),
    st.sampled_from(FRAME_KINDS),
)
def test_parsers_never_raise_on_arbitrary_text(text, fmt, kind):
    frame = _frame(kind, 640, 480)
    groundings, reason = parse_groundings(text, fmt, frame)
    assert reason is None or reason in PARSE_REASONS
    for g in groundings:
        assert g.kind in ("point", "box") and g.coords
        assert all(len(c) == (2 if g.kind == "point" else 4) and all(map(math.isfinite, c)) for c in g.coords)
        assert 0 <= g.start < g.end <= len(text)
    assert isinstance(strip_groundings(text, fmt), str)
    assert parse_json_lenient(text)[1] in (None, "repaired", "truncated", "malformed")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(scenes(), st.sampled_from(FORMATS), st.data())
def test_parsers_never_raise_on_mangled_renderings(scene, fmt, data):
    trace, objects, frame = scene
    text = render_trace(trace, objects, fmt, frame, "box")
    i = data.draw(st.integers(0, len(text)))
    j = data.draw(st.integers(i, len(text)))
    junk = data.draw(st.sampled_from(["", "<", ">", "[", "]", '"', "'", ",", "}", "</box>", "<point>", "x1="]))
    mangled = data.draw(st.sampled_from([text[:i], text[:i] + text[j:], text[:i] + junk + text[i:]]))
    groundings, reason = parse_groundings(mangled, fmt, frame)
    assert reason is None or reason in PARSE_REASONS
    if mangled == text:
        assert reason is None
    assert isinstance(strip_groundings(mangled, fmt), str)


# --- Stripping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fmt", "plain"),
    [
        ("the ball <box>[[1,2,3,4]]</box>, and the cup <box>[[1,2,3,4]]</box>.", "tvg", "the ball, and the cup."),
        ("<point>[[1,2]]</point> Three apples", "tvg", "Three apples"),
        ("ball<box>[1,2,3,4]</box>is here", "tvg", "ball is here"),
        ("(the cat <point>[[1,2]]</point>) sits", "tvg", "(the cat) sits"),
        ("I see\n```json\n[{\"bbox_2d\": [1, 2, 3, 4], \"label\": \"cat\"}]\n```\nSo 1.", "qwen", "I see\n\nSo 1."),
        ('The <point x="1" y="2" alt="cup">cup</point> is red', "molmo", "The cup is red"),
        ("two  spaces stay when no markup is near", "tvg", "two  spaces stay when no markup is near"),
    ],
)
def test_strip_groundings_table(text, fmt, plain):
    assert strip_groundings(text, fmt) == plain


@pytest.mark.parametrize(
    "chunk",
    [
        "<point>[[1,2]",
        "the cat <box>[[1,2,3,4]]</box> ",
        '{"bbox_2d": [1,2 ',
        '<points x1="1" y1="2" ',
        "{[",
        '```json\n[{"a',
        '"' + "'",
    ],
)
def test_parsing_long_degenerate_text_stays_linear(chunk):
    text = chunk * 3000  # a quadratic scan of this takes minutes; a linear one well under a second
    started = time.perf_counter()
    for fmt in FORMATS:
        parse_groundings(text, fmt, PIXEL)
        strip_groundings(text, fmt)
    assert time.perf_counter() - started < 10.0
