"""The offline demo set: deterministic, and every answer, mask, box and point agrees with what is drawn."""

from __future__ import annotations

import io
import itertools
import re

import cv2
import numpy as np
import pytest
from PIL import Image

from synth.core.geometry import mask_to_xyxy, point_in_mask, rle_to_mask
from synth.sources import photos, scenes
from synth.sources.demo import DemoOptions, iter_demo, kinds_in_order

N_ITEMS = 30


@pytest.fixture(scope="module")
def demo_items():
    return list(iter_demo(DemoOptions(items=N_ITEMS, seed=3)))


def _image(item) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(item.image_bytes)).convert("RGB"))


def _shape_of(component: np.ndarray) -> str:
    """An independent reading of a drawn shape: corners of its outline (3, 4, or round)."""
    contours, _ = cv2.findContours(component.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    outline = max(contours, key=cv2.contourArea)
    corners = len(cv2.approxPolyDP(outline, 0.04 * cv2.arcLength(outline, True), True))
    return {3: "triangle", 4: "square"}.get(corners, "disc" if corners >= 6 else "?")


def _components(image: np.ndarray, colour: str) -> list[np.ndarray]:
    same = (image == np.array(scenes.COLOURS[colour], dtype=np.uint8)).all(axis=2).astype(np.uint8)
    n, labels = cv2.connectedComponents(same, connectivity=8)
    return [labels == i for i in range(1, n)]


def test_the_set_is_deterministic(demo_items):
    again = list(iter_demo(DemoOptions(items=N_ITEMS, seed=3)))
    assert [i.to_json() for i in again] == [i.to_json() for i in demo_items]
    assert [i.image_bytes for i in again] == [i.image_bytes for i in demo_items]
    other = list(itertools.islice(iter_demo(DemoOptions(items=N_ITEMS, seed=4)), 3))
    assert [i.image_bytes for i in other] != [i.image_bytes for i in demo_items[:3]]


def test_the_mix_is_honoured(demo_items):
    kinds = [i.image_path.split("/")[1].split("-")[0] for i in demo_items]
    assert {k: kinds.count(k) for k in set(kinds)} == {"counting": 15, "spatial": 9, "coins": 6}
    assert kinds == kinds_in_order(DemoOptions(items=N_ITEMS, seed=3))
    assert len({i.item_id for i in demo_items}) == N_ITEMS


def test_counting_answers_equal_the_drawn_objects(demo_items):
    counting = [i for i in demo_items if i.image_path.startswith("demo/counting")]
    for item in counting:
        image = _image(item)
        colour, kind = item.label.split()
        assert kind in item.question and colour in item.question
        # Read the drawing back: components of the target colour whose outline has the target shape.
        drawn = [c for c in _components(image, colour) if _shape_of(c) == kind]
        assert item.answer == str(len(drawn)) == str(len(item.masks)), item.question
        masks = [rle_to_mask(m) for m in item.masks]
        for mask in masks:
            assert any((mask == c).all() for c in drawn), "each mask is exactly one drawn shape"


def test_masks_boxes_and_points_agree_and_shapes_never_touch(demo_items):
    for item in demo_items:
        image = _image(item)
        masks = [rle_to_mask(m) for m in item.masks]
        assert len(masks) == len(item.boxes) == len(item.points) > 0
        for mask, box, point in zip(masks, item.boxes, item.points):
            assert mask.shape == image.shape[:2]
            assert list(mask_to_xyxy(mask)) == box
            assert point_in_mask(point, mask)
        grown = [cv2.dilate(m.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) for m in masks]
        for a in range(len(masks)):
            for b in range(a + 1, len(masks)):
                assert not (grown[a] & masks[b]).any(), f"{item.item_id}: objects {a} and {b} touch"


def _relations(box_a, box_b) -> set[str]:
    """Relations of shape a to shape b that hold for the whole shapes (their boxes)."""
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = box_a, box_b
    holds = {"left": ax1 < bx0, "right": bx1 < ax0, "above": ay1 < by0, "below": by1 < ay0}
    return {r for r, ok in holds.items() if ok}


def test_spatial_answers_follow_the_boxes(demo_items):
    spatial = [i for i in demo_items if i.task == "spatial"]
    spatial += list(iter_demo(DemoOptions(items=15, seed=11, mix={"spatial": 1.0})))
    styles = set()
    for item in spatial:
        p, q = item.label.split("|")
        assert item.question.index(p) < item.question.index(q), "label, question and boxes share one order"
        relations = _relations(*item.boxes)
        assert len(relations) == 1, f"{item.question}: one clear relation, found {relations}"
        (truth,) = relations
        (ax, ay), (bx, by) = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in item.boxes]
        along, across = (abs(ax - bx), abs(ay - by)) if truth in ("left", "right") else (abs(ay - by), abs(ax - bx))
        assert along >= 2 * across, "the asked axis is the dominant one"
        asked = re.search(r"Is the .+ (to the (left|right) of|above|below) the", item.question)
        if item.choices:
            styles.add("choice")
            assert item.answer == truth and item.choices in (["left", "right"], ["above", "below"])
        elif item.answer in ("yes", "no"):
            styles.add("yes/no")
            word = asked.group(2) or asked.group(1)
            assert item.answer == ("yes" if word == truth else "no"), item.question
        else:
            styles.add("open")
            assert item.question.startswith("Where is") and item.answer == truth
        image = _image(item)
        for name in (p, q):
            colour, kind = name.split()
            assert sum(_shape_of(c) == kind for c in _components(image, colour)) == 1, f"{name} is unique"
    assert styles == {"choice", "yes/no", "open"}


def test_the_annotation_teacher_answers_every_demo_item(demo_items):
    """The demo is made for the annotation teacher: each of its traces must verify against the gold answer."""
    from synth.adapters.annotation_teacher import AnnotatedRequest, AnnotationTeacher
    from synth.core.answers import extract_final_answer, verify

    teacher = AnnotationTeacher(seed=0)
    requests = [AnnotatedRequest(request_id=i.item_id, system="", user=i.question, item=i, n=2) for i in demo_items]
    for item, response in zip(demo_items, teacher.generate(requests)):
        assert response.error is None, f"{item.question}: {response.error}"
        for completion in response.completions:
            predicted, _ = extract_final_answer(completion.text)
            assert verify(item.task, predicted, item.answer, item.choices), f"{item.question} -> {predicted}, gold {item.answer}"


def test_coins_are_24_and_crops_cut_no_coin(demo_items):
    rgb, masks = photos.coins()
    assert len(masks) == 24
    gray = rgb[:, :, 0].astype(float)
    union = np.any(masks, axis=0)
    assert gray[union].mean() > gray[~union].mean() + 60, "the masks lie on the bright coins"
    coins = [i for i in demo_items if i.label == "coin"]
    assert coins[0].answer == "24" and _image(coins[0]).shape == rgb.shape
    for item in coins:
        masks_here = [rle_to_mask(m) for m in item.masks]
        assert item.answer == str(len(masks_here))
        border = np.ones(masks_here[0].shape, dtype=bool)
        border[1:-1, 1:-1] = False
        assert not any((m & border).any() for m in masks_here), "no coin touches a crop's edge"


def test_scene_masks_follow_the_geometry():
    for kind, expected_area in (("disc", np.pi * (0.9 * 20) ** 2), ("square", 2 * 20**2), ("triangle", 3 * np.sqrt(3) / 4 * 20**2)):
        mask = scenes.shape_mask(kind, 50.0, 40.0, 20.0, 0.3, 100, 80)
        assert abs(mask.sum() - expected_area) < 0.08 * expected_area, kind
        assert mask[40, 50], f"the centre lies inside the {kind}"
        ys, xs = np.nonzero(mask)
        assert (np.hypot(xs + 0.5 - 50, ys + 0.5 - 40) <= 20.01).all(), f"the {kind} stays inside its circle"


def test_the_demo_truth_holds_every_items_masks_under_its_names(demo_items):
    from pycocotools.coco import COCO

    from synth.sources.demo import demo_truth

    truth = demo_truth(DemoOptions(items=N_ITEMS, seed=3))
    coco = COCO()
    coco.dataset = truth
    coco.createIndex()
    names = {c["id"]: c["name"] for c in truth["categories"]}
    assert len(truth["images"]) == len(demo_items)
    for image, item in zip(truth["images"], demo_items):
        assert image["file_name"] == item.image_path
        anns = coco.loadAnns(coco.getAnnIds(imgIds=image["id"]))
        assert [a["segmentation"] for a in anns] == item.masks
        # Every shape is filed under what the question calls it ("red squares" -> "red square").
        assert all(names[a["category_id"]].lower() in item.question.lower() for a in anns)
        assert len({names[a["category_id"]] for a in anns}) == (2 if item.task == "spatial" else 1)
        assert all(coco.annToMask(a).sum() == a["area"] > 0 for a in anns)
