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


def test_spatial_answers_follow_the_boxes(demo_items):
    spatial = [i for i in demo_items if i.task == "spatial"]
    assert spatial
    for item in spatial:
        (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = item.boxes
        first, second = re.findall(r"the ((?:\w+) (?:disc|square|triangle))", item.question)
        if item.answer in ("yes", "no"):
            relation = re.search(r"(left of|right of|above|below)", item.question).group(1)
            truth = {"left of": ax1 < bx0, "right of": bx1 < ax0, "above": ay1 < by0, "below": by1 < ay0}[relation]
            opposite = {"left of": bx1 < ax0, "right of": ax1 < bx0, "above": by1 < ay0, "below": ay1 < by0}[relation]
            assert truth != opposite, "the two shapes are clearly apart along the asked axis"
            assert item.answer == ("yes" if truth else "no"), item.question
            assert item.choices == ["yes", "no"]
        else:
            word = re.search(r"Which is (further left|further right|higher up|lower down)", item.question).group(1)
            first_wins = {"further left": ax1 < bx0, "further right": bx1 < ax0, "higher up": ay1 < by0, "lower down": by1 < ay0}[word]
            assert item.answer == (first if first_wins else second), item.question
            assert item.choices == [first, second]
        image = _image(item)
        for name in (first, second):
            colour, kind = name.split()
            assert sum(_shape_of(c) == kind for c in _components(image, colour)) == 1, f"{name} is unique"


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
