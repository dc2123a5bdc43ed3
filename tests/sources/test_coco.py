"""COCO instances become counting questions with exact answers, masks as RLE and boxes as XYXY."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.core.geometry import mask_to_rle, point_in_mask, rle_to_mask
from synth.sources.base import BadItem, SourceError
from synth.sources.coco import CocoOptions, image_base, iter_coco, pluralize

H, W = 40, 60


def _block(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _uncompressed(mask: np.ndarray) -> dict:
    """COCO's uncompressed RLE (column-major run lengths, starting with zeros), as crowd annotations use."""
    flat = mask.flatten(order="F").astype(np.uint8)
    counts, value, run = [], 0, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    return {"size": [H, W], "counts": counts}


@pytest.fixture
def coco_file(tmp_path):
    light_a, light_b = _block(40, 5, 45, 20), _block(50, 5, 55, 20)
    anns = [
        # Two dogs as polygons (a square and a triangle), COCO xywh boxes.
        {"id": 1, "image_id": 7, "category_id": 1, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "bbox": [2, 2, 10, 10], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "segmentation": [[20, 30, 30, 30, 25, 20]], "bbox": [20, 20, 10, 10], "iscrowd": 0},
        # Two traffic lights: compressed RLE and uncompressed RLE.
        {"id": 3, "image_id": 7, "category_id": 2, "segmentation": mask_to_rle(light_a), "bbox": [40, 5, 5, 15], "iscrowd": 0},
        {"id": 4, "image_id": 7, "category_id": 2, "segmentation": _uncompressed(light_b), "bbox": [50, 5, 5, 15], "iscrowd": 0},
        # One person and a crowd of people: the count is not exact.
        {"id": 5, "image_id": 7, "category_id": 3, "segmentation": [[1, 25, 8, 25, 8, 38, 1, 38]], "bbox": [1, 25, 7, 13], "iscrowd": 0},
        {"id": 6, "image_id": 7, "category_id": 3, "segmentation": _uncompressed(_block(10, 30, 20, 39)), "bbox": [10, 30, 10, 9], "iscrowd": 1},
        # A second image with a broken polygon.
        {"id": 7, "image_id": 8, "category_id": 1, "segmentation": [[1, 1, 5]], "bbox": [1, 1, 4, 4], "iscrowd": 0},
    ]
    data = {
        "images": [{"id": 8, "file_name": "b.jpg", "height": H, "width": W}, {"id": 7, "file_name": "a.jpg", "height": H, "width": W}],
        "annotations": anns,
        "categories": [{"id": 1, "name": "dog"}, {"id": 2, "name": "traffic light"}, {"id": 3, "name": "person"}],
    }
    path = tmp_path / "annotations" / "instances.json"
    path.parent.mkdir()
    path.write_text(json.dumps(data))
    return path


def test_categories_become_exact_counting_questions(coco_file):
    items = list(iter_coco(coco_file, CocoOptions()))
    good = [i for i in items if not isinstance(i, BadItem)]
    assert [(i.label, i.answer) for i in good] == [("dog", "2"), ("traffic light", "2")]
    assert [i.question for i in good] == ["How many dogs are in the image?", "How many traffic lights are in the image?"]
    assert all(i.task == "counting" and i.image_path == "a.jpg" and i.source == "coco:instances.json" for i in good)
    dogs, lights = good
    assert dogs.boxes == [[2.0, 2.0, 12.0, 12.0], [20.0, 20.0, 30.0, 30.0]]
    assert lights.boxes == [[40.0, 5.0, 45.0, 20.0], [50.0, 5.0, 55.0, 20.0]]
    # Polygons and both RLE kinds become compressed RLE of the image's size, with the right pixels.
    for item in good:
        assert all(isinstance(m["counts"], str) and m["size"] == [H, W] for m in item.masks)
    np.testing.assert_array_equal(rle_to_mask(lights.masks[1]), _block(50, 5, 55, 20))
    assert abs(int(rle_to_mask(dogs.masks[0]).sum()) - 100) <= 25  # the 10x10 polygon, rasterised
    for item in good:
        assert len(item.points) == len(item.masks)
        assert all(point_in_mask(p, rle_to_mask(m)) for p, m in zip(item.points, item.masks))


def test_a_broken_annotation_is_a_bad_item(coco_file):
    (bad,) = [i for i in iter_coco(coco_file, CocoOptions()) if isinstance(i, BadItem)]
    assert bad.image_path == "b.jpg" and "annotation 7" in bad.problem and "polygons" in bad.problem


def test_crowds_are_skipped_or_left_out(coco_file):
    labels = [i.label for i in iter_coco(coco_file, CocoOptions())]
    assert "person" not in labels
    people = [i for i in iter_coco(coco_file, CocoOptions(skip_crowd=False)) if i.label == "person"]
    assert [(p.answer, len(p.masks)) for p in people] == [("1", 1)]


def test_category_selection_and_instance_bounds(coco_file):
    assert [i.label for i in iter_coco(coco_file, CocoOptions(categories=["traffic light"]))] == ["traffic light"]
    at_most_one = [(i.image_path, i.label) for i in iter_coco(coco_file, CocoOptions(max_instances=1, skip_crowd=False))]
    assert at_most_one == [("a.jpg", "person"), ("b.jpg", "dog")]  # images in id order: 7 (a.jpg), then 8
    zero = [i for i in iter_coco(coco_file, CocoOptions(min_instances=0, categories=["traffic light"]))]
    assert sorted(i.answer for i in zero) == ["0", "2"]
    with pytest.raises(SourceError, match="not categories"):
        list(iter_coco(coco_file, CocoOptions(categories=["unicorn"])))


def test_ids_are_stable(coco_file):
    ids = [i.item_id for i in iter_coco(coco_file, CocoOptions())]
    assert ids == [i.item_id for i in iter_coco(coco_file, CocoOptions())] and len(set(ids)) == len(ids)


def test_image_dir_is_relative_to_the_json(coco_file):
    assert image_base(coco_file, CocoOptions()) == coco_file.parent
    assert image_base(coco_file, CocoOptions(image_dir="../val2017")) == coco_file.parent / "../val2017"


def test_unreadable_file_raises(tmp_path):
    (tmp_path / "x.json").write_text('{"images": []}')
    with pytest.raises(SourceError, match="annotations, categories"):
        list(iter_coco(tmp_path / "x.json", CocoOptions()))
    (tmp_path / "y.json").write_text("{not json")
    with pytest.raises(SourceError, match="as JSON"):
        list(iter_coco(tmp_path / "y.json", CocoOptions()))


@pytest.mark.parametrize(
    "name, plural",
    [("dog", "dogs"), ("bus", "buses"), ("person", "people"), ("traffic light", "traffic lights"), ("teddy bear", "teddy bears"),
     ("wine glass", "wine glasses"), ("knife", "knives"), ("sheep", "sheep"), ("skis", "skis"), ("toothbrush", "toothbrushes"),
     ("baseball bat", "baseball bats"), ("butterfly", "butterflies"), ("monkey", "monkeys")],
)
def test_pluralize(name, plural):
    assert pluralize(name) == plural
