"""The annotation teacher: traces written from points/boxes/masks that verify against the gold."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from synth.adapters.annotation_teacher import AnnotatedRequest, AnnotationTeacher, plural, region, singular
from synth.adapters.base import Teacher
from synth.core.answers import extract_final_answer, verify
from synth.core.records import Item


def ask(item: Item, n=1, seed=0, width=300, height=300, **kw):
    teacher = AnnotationTeacher(seed=seed)
    [response] = teacher.generate([AnnotatedRequest(item.item_id, "", "", n=n, item=item,
                                                    width=width, height=height, **kw)])
    return response


def counting_item(**kw):
    return Item("c1", "How many coins are in the picture?", kw.pop("answer", "3"), label="coin", **kw)


def test_is_a_teacher():
    assert isinstance(AnnotationTeacher(), Teacher)


@pytest.mark.parametrize("field,values", [
    ("points", [[20, 20], [150, 150], [280, 40]]),
    ("boxes", [[0, 0, 40, 40], [130, 130, 170, 170], [260, 20, 300, 60]]),
])
def test_counting_trace_names_each_object_and_its_place(field, values):
    response = ask(counting_item(**{field: values}))
    [completion] = response.completions
    text = completion.text
    assert "coin near the top left" in text and "coin in the center" in text and "coin near the top right" in text
    answer, _ = extract_final_answer(text)
    assert answer == "3" and verify("counting", answer, "3")
    assert completion.finish_reason == "stop"


def test_counting_from_masks_uses_the_mask_size():
    masks = []
    for x0, y0 in [(2, 2), (30, 30)]:
        grid = np.zeros((40, 40), dtype=np.uint8, order="F")
        grid[y0:y0 + 6, x0:x0 + 6] = 1
        rle = mask_utils.encode(grid)
        masks.append({"size": rle["size"], "counts": rle["counts"].decode()})
    response = ask(counting_item(masks=masks, answer="2"), width=0, height=0)
    text = response.completions[0].text
    assert "near the top left" in text and "near the bottom right" in text
    assert verify("counting", extract_final_answer(text)[0], "2")


def test_size_from_image_bytes_when_not_given():
    buffer = io.BytesIO()
    Image.new("RGB", (90, 30)).save(buffer, format="PNG")
    response = ask(counting_item(points=[[80, 15]], answer="1"), width=0, height=0, image_bytes=buffer.getvalue())
    assert "coin on the right" in response.completions[0].text


def test_samples_differ_and_repeat_with_the_seed():
    item = counting_item(points=[[20, 20], [150, 150], [280, 40], [40, 280]], answer="4")
    first = [c.text for c in ask(item, n=6).completions]
    again = [c.text for c in ask(item, n=6).completions]
    other = [c.text for c in ask(item, n=6, seed=1).completions]
    assert first == again and first != other and len(set(first)) >= 3
    assert all(verify("counting", extract_final_answer(t)[0], "4") for t in first)


def test_many_objects_are_told_by_region():
    points = [[10 + 3 * i, 10 + 2 * i] for i in range(20)]
    text = ask(counting_item(points=points, answer="20")).completions[0].text
    assert "coins near the top left" in text and text.endswith("<answer>20</answer>")


def test_annotations_that_disagree_with_gold_make_a_wrong_trace():
    text = ask(counting_item(points=[[1, 1], [2, 2]], answer="3")).completions[0].text
    assert not verify("counting", extract_final_answer(text)[0], "3")


@pytest.mark.parametrize("label", ["coin", "coins", "box", "boxes", "strawberry", "person"])
def test_label_phrase_appears_verbatim(label):
    item = Item("c", "How many?", "2", label=label, points=[[10, 10], [200, 200]])
    for completion in ask(item, n=5).completions:
        assert label in completion.text


def test_no_annotations_is_a_per_request_error():
    response = ask(Item("bare", "How many coins?", "3", label="coin"))
    assert response.error_kind == "no_annotations" and response.completions == []
    plain = AnnotationTeacher().generate([AnnotatedRequest("p", "", "")])  # a request without an item
    assert plain[0].error_kind == "no_annotations"


SPATIAL_BOXES = [[200, 100, 260, 160], [20, 120, 80, 180]]  # laptop on the right, cup on the left


@pytest.mark.parametrize("question,choices,gold", [
    ("Is the cup to the left of the laptop?", [], "yes"),
    ("Is the cup to the right of the laptop?", [], "no"),
    ("Is the laptop to the left of the cup?", [], "no"),
    ("Where is the cup relative to the laptop?", [], "left"),
    ("Where is the laptop relative to the cup?", [], "right"),
    ("Where is the cup relative to the laptop?", ["A. left", "B. right"], "A"),
    ("Where is the cup relative to the laptop?", ["left", "right"], "left"),
    ("Is the cup to the left of the laptop?", ["yes", "no"], "yes"),
    ("Is the laptop to the left of the cup?", ["A. yes", "B. no"], "B"),
    ("Is the cup to the left or to the right of the laptop?", ["left", "right"], "left"),
    ("Is the laptop above or below the cup?", ["above", "below"], "above"),
    ("Which is further left, the cup or the laptop?", [], "cup"),
    ("Which object is on the right, the laptop or the cup?", [], "laptop"),
    ("Which one is higher, the cup or the laptop?", [], "laptop"),
])
def test_spatial_trace_states_the_relation_and_answers_the_question(question, choices, gold):
    item = Item("s", question, gold, task="spatial", label="laptop|cup", boxes=SPATIAL_BOXES, choices=choices)
    text = ask(item).completions[0].text
    assert "cup" in text and "laptop" in text
    answer, _ = extract_final_answer(text)
    assert verify("spatial", answer, gold, choices), text


def test_spatial_depth_or_bad_labels_are_errors():
    depth = Item("s", "Is the cup in front of the laptop?", "yes", task="spatial", label="laptop|cup",
                 boxes=SPATIAL_BOXES)
    assert "boxes cannot decide" in ask(depth).error
    one_label = Item("s", "Is the cup left?", "yes", task="spatial", label="cup", boxes=SPATIAL_BOXES)
    assert ask(one_label).error_kind == "error"


@pytest.mark.parametrize("x,y,place", [(10, 10, "near the top left"), (150, 150, "in the center"),
                                       (290, 150, "on the right"), (150, 290, "near the bottom"),
                                       (300, 300, "near the bottom right")])
def test_region_words(x, y, place):
    assert region(x, y, 300, 300) == place


def test_singular_and_plural():
    assert [singular(w) for w in ["coins", "boxes", "strawberries", "glass"]] == ["coin", "box", "strawberry", "glass"]
    assert [plural(w) for w in ["coin", "box", "strawberry", "person"]] == ["coins", "boxes", "strawberries", "people"]
