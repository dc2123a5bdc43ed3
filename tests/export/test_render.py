"""Rendering at export time: every format and frame parses back to the row's geometry."""

import numpy as np
import pytest

from synth.core.formats import FORMATS, FRAME_DECIMALS, parse_groundings
from synth.export.render import RenderOptions, render_row
from synth.rewards import FRAME_NAMES
from tests.rewards.factory import disc_mask, make_row, three_discs_row, two_boxes_row


def tolerance_px(frame, axis_scale):
    """Half a unit of the rendered precision, in pixels (points read back as cell centres)."""
    unit = 10.0 ** -FRAME_DECIMALS[frame.kind]
    return 0.5 * unit / axis_scale + 1e-9


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("frame", FRAME_NAMES)
@pytest.mark.parametrize("geometry", ["point", "box"])
@pytest.mark.parametrize("build", [three_discs_row, two_boxes_row])
def test_rendered_text_parses_back_to_the_canonical_geometry(fmt, frame, geometry, build):
    row = build()
    rendered = render_row(row, RenderOptions(fmt, frame, geometry))
    groundings, reason = parse_groundings(rendered.grounded, fmt, rendered.frame)
    assert reason is None
    kind = {"ivgr": "box", "molmo": "point"}.get(fmt, geometry)
    want = sorted(tuple(i[kind]) for o in row["objects"] for i in o["instances"])
    got = sorted(c for g in groundings for c in g.coords)
    assert len(got) == len(want)
    ex, ey = rendered.frame.extent
    tol = np.resize([tolerance_px(rendered.frame, ex / row["image_width"]),
                     tolerance_px(rendered.frame, ey / row["image_height"])], len(want[0]))
    assert (np.abs(np.array(got) - np.array(want)) <= tol).all()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("frame", FRAME_NAMES)
def test_coordinates_are_the_exact_numbers_at_their_tags(fmt, frame):
    row = three_discs_row()
    rendered = render_row(row, RenderOptions(fmt, frame, "point"))
    kind = {"ivgr": "box"}.get(fmt, "point")
    want = [tuple(i[kind]) for i in row["objects"][0]["instances"]]
    coords = rendered.coordinates
    assert sorted(tuple(c.values_px) for c in coords) == sorted(want)  # exact, not rounded
    for c in coords:
        tag = rendered.grounded[c.start:c.end]
        assert tag and tag[0] in "<[{"  # the span is the markup itself
        assert np.allclose(rendered.frame.from_frame(np.array(c.values)), c.values_px)


@pytest.mark.parametrize("fmt", FORMATS)
def test_text_only_twin_keeps_the_reasoning_and_drops_the_markup(fmt):
    row = three_discs_row()
    rendered = render_row(row, RenderOptions(fmt, "norm1000", "point"))
    assert parse_groundings(rendered.text_only, fmt, rendered.frame)[1] == "no_groundings"
    assert "I look at the red discs in the image. Counting the red discs gives 3." in rendered.text_only


def test_think_wraps_free_formats_and_ivgr_wraps_itself():
    row = three_discs_row()
    assert render_row(row, RenderOptions("tvg", "pixel", "point", think=True)).grounded.endswith(
        "</think><answer>3</answer>")
    assert not render_row(row, RenderOptions("tvg", "pixel", "point")).grounded.startswith("<think>")
    ivgr = render_row(row, RenderOptions("ivgr", "qwen-resized", "box")).grounded
    assert ivgr.startswith("<think>") and ivgr.endswith("<answer>3</answer>") and ivgr.count("<think>") == 1


def test_auto_geometry_points_for_counting_boxes_otherwise_unless_the_format_has_one_kind():
    assert render_row(three_discs_row(), RenderOptions("tvg", "pixel")).geometry == "point"
    assert render_row(two_boxes_row(), RenderOptions("tvg", "pixel")).geometry == "box"
    assert render_row(three_discs_row(), RenderOptions("ivgr", "pixel")).geometry == "box"
    assert render_row(two_boxes_row(), RenderOptions("molmo", "pixel", "box")).geometry == "point"


def test_qwen_resized_frame_uses_the_smart_resize_size():
    row = make_row([("coin", [disc_mask(480, 640, 100, 100, 30)])], "One coin here.", "1", width=640, height=480)
    rendered = render_row(row, RenderOptions("qwen", "qwen-resized", "box"))
    # 480x640 rounds to multiples of 28: 476x644, within Qwen2-VL's pixel budget.
    assert (rendered.frame.resized_width, rendered.frame.resized_height) == (644, 476)
    assert rendered.grounded_format == "qwen:resized"


@pytest.mark.parametrize("fmt, think", [("ivgr", False), ("tvg", True), ("qwen", True)])
def test_a_trace_with_its_own_think_and_answer_tags_is_wrapped_once(fmt, think):
    from synth.rewards import format_reward

    trace = "<think>\nI look at the red discs here.</think>\n<answer>3</answer>"
    masks = [disc_mask(48, 64, 12, 12, 5), disc_mask(48, 64, 40, 14, 5), disc_mask(48, 64, 30, 34, 5)]
    row = make_row([("red discs", masks)], trace, "3")
    rendered = render_row(row, RenderOptions(fmt, "norm1000", "box", think=think))
    text = rendered.grounded
    assert text.count("<think>") == text.count("</think>") == text.count("<answer>") == 1
    assert text.startswith("<think>I look at the red discs ") and text.endswith("here.</think><answer>3</answer>")
    assert format_reward(text, row, fmt, "norm1000", structure="think_answer").score == 1.0


def test_unwrapping_never_cuts_a_span():
    from synth.core.records import GroundedObject
    from synth.export.render import unwrap_trace

    trace = "Count them.\n<answer>3 red discs</answer>"
    start = trace.index("red discs")
    objects = [GroundedObject("red discs", [(start, start + 9)])]
    assert unwrap_trace(trace, objects) == (trace, objects)
