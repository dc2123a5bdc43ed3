"""The annotate stage: aligned geometry from masks, and the grounded trace in the configured format."""

import numpy as np
import pytest

from synth.core.formats import Frame, parse_groundings
from synth.core.geometry import mask_to_rle, point_in_mask, rle_to_mask
from synth.core.records import Candidate, GroundedObject, Instance, Item, ItemRecord
from synth.stages.annotate import AnnotateConfig, AnnotateStage
from synth.stages.base import RunContext
from tests.grounding.scenes import disc_mask, rect_mask

W, H = 200, 100


def _ring():
    return disc_mask(50, 50, 30, W, H) & ~disc_mask(50, 50, 18, W, H)


def _record(task="counting", text="I count the red rings and the blue square here. <answer>1</answer>"):
    ring, square = _ring(), rect_mask(120, 20, 160, 60, W, H)
    objects = [
        GroundedObject("red rings", [(12, 21)], instances=[Instance(mask_to_rle(ring), [], [], 0.9)]),
        GroundedObject("blue square", [(30, 41)], instances=[Instance(mask_to_rle(square), [], [], 0.8)]),
    ]
    item = Item("i", "How many red rings are there?", "1", task=task)
    cand = Candidate(0, text, final_answer="1", correct=True, objects=objects)
    return ItemRecord(item=item, width=W, height=H, candidates=[cand]), ring, square


def test_every_instance_gets_tight_box_and_a_point_inside_even_for_a_ring():
    record, ring, square = _record()
    AnnotateStage(AnnotateConfig(), RunContext())([record])
    ring_inst, square_inst = (o.instances[0] for o in record.candidates[0].objects)
    assert ring_inst.box == [20.0, 20.0, 80.0, 80.0]
    assert point_in_mask(ring_inst.point, ring), "the point must lie on the ring, not in its hole"
    assert not point_in_mask((50, 50), ring)  # where a centroid would be
    assert square_inst.box == [120.0, 20.0, 160.0, 60.0] and point_in_mask(square_inst.point, square)
    assert np.array_equal(rle_to_mask(ring_inst.mask), ring)


def test_counting_renders_points_and_spatial_renders_boxes_by_default():
    record, _, _ = _record("counting")
    AnnotateStage(AnnotateConfig(), RunContext())([record])
    cand = record.candidates[0]
    assert cand.grounded_format == "tvg:norm1000"
    groundings, reason = parse_groundings(cand.grounded_trace, "tvg", Frame("norm1000", W, H))
    assert reason is None and [g.kind for g in groundings] == ["point", "point"]
    assert cand.grounded_trace.index("<point>") > cand.grounded_trace.index("red rings")

    record, _, _ = _record("spatial")
    AnnotateStage(AnnotateConfig(frame="pixel"), RunContext())([record])
    groundings, _ = parse_groundings(record.candidates[0].grounded_trace, "tvg", Frame("pixel", W, H))
    assert [g.coords[0] for g in groundings] == [(20.0, 20.0, 80.0, 80.0), (120.0, 20.0, 160.0, 60.0)]


def test_ivgr_wraps_think_and_answer_in_resized_pixels():
    record, _, _ = _record("spatial")
    AnnotateStage(AnnotateConfig(format="ivgr", frame="resized"), RunContext())([record])
    cand = record.candidates[0]
    assert cand.grounded_format == "ivgr:resized"
    assert cand.grounded_trace.startswith("<think>") and cand.grounded_trace.endswith("<answer>1</answer>")
    frame = AnnotateStage(AnnotateConfig(frame="resized"), RunContext()).frame_for(record)
    assert (frame.resized_width, frame.resized_height) == (196, 112)  # multiples of 28, Qwen2.5-VL's rule
    groundings, _ = parse_groundings(cand.grounded_trace, "ivgr", frame)
    assert groundings[0].coords[0] == pytest.approx((20, 20, 80, 80), abs=1.0)


def test_geometry_can_be_forced():
    record, _, _ = _record("counting")
    stage = AnnotateStage(AnnotateConfig(geometry="box"), RunContext())
    assert stage.geometry_for("counting") == "box"
    stage([record])
    assert "<box>" in record.candidates[0].grounded_trace


def test_unrenderable_trace_becomes_an_annotate_reject():
    record, _, _ = _record()
    record.candidates[0].objects[0].spans = [(500, 509)]  # beyond the end of the trace
    AnnotateStage(AnnotateConfig(), RunContext())([record])
    reject = record.candidates[0].reject
    assert (reject.stage, reject.reason) == ("annotate", "render_failed") and "outside the trace" in reject.detail


def test_config_refuses_unknown_format():
    with pytest.raises(ValueError, match="format"):
        AnnotateConfig(format="llava")
