"""The agent's loop: propose -> segment -> verify -> retry, with the bookkeeping a reader sees."""

import numpy as np

from synth.adapters.base import MaskResult
from synth.core.records import GroundedObject
from synth.grounding.agent import GroundingAgent
from synth.grounding.proposals import AnnotationProposer, PointingConfig, TeacherPointProposer
from synth.grounding.verify import VerifyConfig
from tests.grounding.scenes import LookupSegmenter, ScriptedTeacher, annotated_item, disc_scene, record_for

CENTRES = [(60, 60), (160, 120), (260, 60)]
TRACE = "I see three red discs: one at the left, one low in the middle, one at the right. <answer>3</answer>"


def _objects(record, phrase="red discs", expected=3):
    for c in record.candidates:
        start = c.text.index(phrase)
        c.objects = [GroundedObject(phrase=phrase, spans=[(start, start + len(phrase))], expected_count=expected)]


def _agent(segmenter, proposers=None, max_attempts=3, **verify):
    return GroundingAgent(segmenter, proposers or [AnnotationProposer()], VerifyConfig(**verify), max_attempts)


def test_counting_item_grounds_every_annotated_instance_with_one_decode_for_all_traces():
    image, masks = disc_scene(CENTRES)
    record = record_for(annotated_item(masks), image, [TRACE, TRACE])
    _objects(record)
    seg = LookupSegmenter(masks)
    _agent(seg).ground_record(record)
    for cand in record.candidates:
        assert cand.reject is None
        obj = cand.objects[0]
        assert len(obj.instances) == 3 and obj.proposal_source == "annotation" and obj.retries == 0
        assert obj.score == 0.9
        assert [i.box for i in obj.instances] == [list(map(float, b)) for b in record.item.boxes]
    assert seg.calls == 1, "the second trace re-used the first one's segmentation"


def test_wrong_count_is_retried_then_rejected_with_every_attempt_in_the_detail():
    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks, answer="4")  # the answer disagrees with the 3 annotated discs
    item.masks, item.boxes = [], []  # points only, like PixMo-Count
    record = record_for(item, image, [TRACE])
    _objects(record, expected=4)
    _agent(LookupSegmenter(masks)).ground_record(record)
    reject = record.candidates[0].reject
    assert (reject.stage, reject.reason) == ("ground", "count_mismatch")
    assert "annotation/points:" in reject.detail and "annotation/points+negatives:" in reject.detail


def test_next_source_rescues_a_bad_annotation_and_retries_are_recorded():
    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks)
    item.masks, item.boxes = [], []
    item.points[1] = [5.0, 5.0]  # an annotation on the background: SAM finds nothing there
    record = record_for(item, image, [TRACE])
    _objects(record)
    molmo = '<points x1="18.75" y1="25" x2="50" y2="50" x3="81.25" y3="25" alt="red discs">red discs</points>'
    teacher = ScriptedTeacher([molmo])
    pointer = TeacherPointProposer(teacher, "Point at every {phrase}.", PointingConfig(attempts=1))
    _agent(LookupSegmenter(masks), [AnnotationProposer(), pointer]).ground_record(record)
    obj = record.candidates[0].objects[0]
    assert record.candidates[0].reject is None
    assert obj.proposal_source == "teacher_points" and obj.retries == 2 and len(obj.instances) == 3
    assert teacher.requests[0].user == "Point at every red discs."
    assert teacher.requests[0].image_bytes, "the pointing request carries the image"


def test_bound_stops_before_later_sources():
    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks)
    item.masks, item.boxes = [], []
    item.points[1] = [5.0, 5.0]
    record = record_for(item, image, [TRACE])
    _objects(record)
    teacher = ScriptedTeacher(["unused"])
    pointer = TeacherPointProposer(teacher, "{phrase}", PointingConfig(attempts=1))
    _agent(LookupSegmenter(masks), [AnnotationProposer(), pointer], max_attempts=2).ground_record(record)
    assert record.candidates[0].reject.reason == "empty_mask"
    assert teacher.requests == [], "the teacher was asked although the bound was spent"


def _spatial(question, answer, left_first=True):
    image, masks = disc_scene([(60, 120), (260, 120)])
    named = masks if left_first else masks[::-1]
    item = annotated_item(named, label=None, question=question, answer=answer, task="spatial")
    item.label = None
    trace = "The red disc and the blue disc are both visible."
    record = record_for(item, image, [trace])
    record.candidates[0].objects = [
        GroundedObject("red disc", [(4, 12)]), GroundedObject("blue disc", [(21, 30)])
    ]
    return record, masks


def test_spatial_relation_that_holds_passes_and_each_object_gets_its_own_annotation():
    record, masks = _spatial("Is the red disc left of the blue disc?", "yes", left_first=True)
    _agent(LookupSegmenter(masks)).ground_record(record)
    red, blue = record.candidates[0].objects
    assert record.candidates[0].reject is None
    assert red.instances[0].box[0] < blue.instances[0].box[0]


def test_spatial_relation_contradicted_by_boxes_is_rejected():
    record, masks = _spatial("Is the red disc left of the blue disc?", "yes", left_first=False)
    _agent(LookupSegmenter(masks)).ground_record(record)
    reject = record.candidates[0].reject
    assert reject.reason == "relation_mismatch" and "'red disc' is left of 'blue disc'" in reject.detail


def test_relation_check_can_be_switched_off():
    record, masks = _spatial("Is the red disc left of the blue disc?", "yes", left_first=False)
    _agent(LookupSegmenter(masks), check_relation=False).ground_record(record)
    assert record.candidates[0].reject is None


def test_zero_count_with_nothing_to_prompt_is_grounded_empty():
    image, _ = disc_scene([])
    item = annotated_item([], answer="0")
    record = record_for(item, image, ["There are no red discs here. <answer>0</answer>"])
    _objects(record, expected=0)
    _agent(LookupSegmenter([])).ground_record(record)
    assert record.candidates[0].reject is None and record.candidates[0].objects[0].instances == []


def test_object_without_any_proposal_is_rejected_as_no_proposals():
    image, masks = disc_scene(CENTRES)
    record = record_for(annotated_item(masks), image, [TRACE + " Also a green square."])
    _objects(record)
    record.candidates[0].objects.append(GroundedObject("green square", [(len(TRACE) + 8, len(TRACE) + 20)]))
    _agent(LookupSegmenter(masks)).ground_record(record)
    reject = record.candidates[0].reject
    assert reject.reason == "no_proposals" and "green square" in reject.detail


class ExplodingSegmenter(LookupSegmenter):
    """Test double: fails the way a model does on a bad input."""

    def segment(self, image, prompts) -> list[MaskResult]:
        raise RuntimeError("CUDA error: device-side assert triggered")


def test_segmenter_failure_becomes_a_segmenter_error_reject():
    image, masks = disc_scene(CENTRES)
    record = record_for(annotated_item(masks), image, [TRACE])
    _objects(record)
    _agent(ExplodingSegmenter(masks)).ground_record(record)
    reject = record.candidates[0].reject
    assert reject.reason == "segmenter_error" and "device-side assert" in reject.detail


def test_rejected_candidates_are_left_alone():
    image, masks = disc_scene(CENTRES)
    record = record_for(annotated_item(masks), image, [TRACE])
    _objects(record)
    from synth.core.records import Reject

    record.candidates[0].reject = Reject("extract", "no_objects")
    seg = LookupSegmenter(masks)
    _agent(seg).ground_record(record)
    assert seg.calls == 0 and record.candidates[0].reject.stage == "extract"
    assert np.all([o.instances == [] for o in record.candidates[0].objects])


class FixedDetector:
    """Test double: the true boxes with given scores, whatever the phrase."""

    def __init__(self, boxes, scores):
        from synth.adapters.detector import Detections

        self.result = Detections("x", np.asarray(boxes, float), np.asarray(scores, float))
        self.calls = 0

    def setup(self):
        pass

    def detect(self, image, phrases, threshold):
        self.calls += 1
        return [self.result for _ in phrases]


class FixedTextSam:
    """Test double: the true masks as a text-promptable SAM would return them."""

    def __init__(self, masks):
        self.masks = masks

    def setup(self):
        pass

    def segment_text(self, image, phrases, threshold):
        return [[MaskResult(m, 0.7) for m in self.masks] for _ in phrases]


def test_detector_retry_lowers_the_threshold_to_find_a_faint_instance():
    from synth.core.geometry import mask_to_xyxy
    from synth.grounding.proposals import DetectorConfig, DetectorProposer

    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks)
    item.masks, item.boxes, item.points = [], [], []  # no annotations: the detector must do it
    record = record_for(item, image, [TRACE])
    _objects(record)
    detector = FixedDetector([mask_to_xyxy(m) for m in masks], [0.9, 0.2, 0.8])
    proposer = DetectorProposer(detector, DetectorConfig(model_path="x", threshold=0.3, retry_threshold=0.15))
    _agent(LookupSegmenter(masks), [AnnotationProposer(), proposer]).ground_record(record)
    obj = record.candidates[0].objects[0]
    assert record.candidates[0].reject is None and len(obj.instances) == 3
    assert obj.proposal_source == "detector" and obj.retries == 1 and detector.calls == 1


def test_text_sam_masks_are_used_directly_and_duplicates_removed():
    from synth.grounding.proposals import TextSamConfig, TextSamProposer

    image, masks = disc_scene(CENTRES)
    item = annotated_item(masks)
    item.masks, item.boxes, item.points = [], [], []
    record = record_for(item, image, [TRACE])
    _objects(record)
    seg = LookupSegmenter(masks)
    proposer = TextSamProposer(FixedTextSam(masks + [masks[0]]), TextSamConfig(model_path="x"))
    _agent(seg, [proposer]).ground_record(record)
    obj = record.candidates[0].objects[0]
    assert record.candidates[0].reject is None and len(obj.instances) == 3 and obj.proposal_source == "text_sam"
    assert seg.calls == 0, "masks from the text SAM need no segmenter"
