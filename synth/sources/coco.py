"""COCO instance annotations turned into counting questions with exact answers.

For every image and every selected category with between `min_instances` and `max_instances`
individual instances, one item asks "How many {category, plural} are in the image?" and its answer
is that number. The item keeps each instance's mask (polygons and uncompressed RLE become
compressed COCO RLE), its box (COCO's [x, y, w, h] as XYXY) and an interior point of its mask, all
in absolute pixels of the image as COCO gives them (the upright frame). A crowd annotation covers
an unknown number of instances, so an image-category pair with one is skipped by default
(`skip_crowd`); with `skip_crowd: false` crowd regions are left out and the answer counts the
individual instances only.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

from pycocotools import mask as mask_utils
from pydantic import Field

from synth.config.base import Strict
from synth.core.geometry import mask_to_point, rle_to_mask, xywh_to_xyxy
from synth.core.records import Item
from synth.sources.base import BadItem, SourceError, source_name, stable_item_id
from synth.sources.rows import FieldProblem, as_rle, is_number

log = logging.getLogger(__name__)

_IRREGULAR = {"person": "people", "mouse": "mice", "sheep": "sheep", "knife": "knives", "skis": "skis", "scissors": "scissors"}


class CocoOptions(Strict):
    """Which COCO annotations become counting items."""

    # COCO ships images beside the annotations folder (val2017/), so the json's folder is a guess
    # that needs overriding; a relative path is taken from the json's folder.
    image_dir: Optional[Path] = Field(None, description="folder of the images; None: the json's folder")
    categories: list[str] = Field(default_factory=list, description="category names to ask about; empty: all")
    # 1: a question about an absent category teaches little about grounding (0 asks for nothing to point at).
    min_instances: int = Field(1, ge=0, description="fewest instances for a question")
    # 20: counting benchmarks (CountBenchQA, PixMo-Count) stop around there; beyond, masks get tiny.
    max_instances: int = Field(20, ge=1, description="most instances for a question")
    skip_crowd: bool = Field(True, description="skip image-category pairs with a crowd annotation (inexact count)")
    question: str = Field("How many {plural} are in the image?", description="question template; {plural} and {name}")
    # Counting traces point at objects; an interior point per mask saves every consumer the work.
    points: bool = Field(True, description="derive an interior point of each mask as the item's points")


def pluralize(name: str) -> str:
    """English plural of a category name ("traffic light" -> "traffic lights", "bus" -> "buses")."""
    head, _, last = name.rpartition(" ")
    if last in _IRREGULAR:
        plural = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        plural = last + "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        plural = last[:-1] + "ies"
    else:
        plural = last + "s"
    return f"{head} {plural}" if head else plural


def image_base(path: Path, options: CocoOptions) -> Path:
    """The folder COCO `file_name`s are relative to."""
    if options.image_dir is None:
        return path.parent
    return options.image_dir if options.image_dir.is_absolute() else path.parent / options.image_dir


def load_coco(path: Path) -> dict[str, Any]:
    """The annotation file as a dict; raises SourceError when it is not a COCO instances file."""
    if not path.is_file():
        raise SourceError(f"COCO annotation file {path} does not exist or is not a file")
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise SourceError(f"cannot read COCO annotation file {path} as JSON: {exc}") from exc
    missing = [k for k in ("images", "annotations", "categories") if not isinstance(data, dict) or not isinstance(data.get(k), list)]
    if missing:
        raise SourceError(f"COCO annotation file {path} lacks the list(s) {', '.join(missing)}")
    return data


def iter_coco(path: Path, options: CocoOptions) -> Iterator[Item]:
    """Counting items of a COCO instances file, by image id then category id."""
    data = load_coco(path)
    categories = _select_categories(data["categories"], options.categories, path)
    by_image: dict[Any, list[dict]] = defaultdict(list)
    for ann in data["annotations"]:
        if isinstance(ann, dict):
            by_image[ann.get("image_id")].append(ann)
    source = source_name("coco", path)
    for image in sorted((i for i in data["images"] if isinstance(i, dict)), key=lambda i: _id_key(i.get("id"))):
        by_category: dict[Any, list[dict]] = defaultdict(list)
        for ann in by_image.get(image.get("id"), []):
            by_category[ann.get("category_id")].append(ann)
        for cat_id, name in categories:
            anns = by_category.get(cat_id, [])
            if options.skip_crowd and any(a.get("iscrowd") for a in anns):
                continue
            anns = [a for a in anns if not a.get("iscrowd")]
            if options.min_instances <= len(anns) <= options.max_instances:
                yield _item(source, image, cat_id, name, anns, options)


def _id_key(value: Any) -> tuple[int, Any]:
    """Integer ids in numeric order (COCO's are integers), anything else after them as text."""
    return (0, value) if isinstance(value, int) else (1, str(value))


def _select_categories(cats: list[Any], wanted: list[str], path: Path) -> list[tuple[Any, str]]:
    pairs = sorted(((c["id"], str(c["name"])) for c in cats if isinstance(c, dict) and "id" in c and "name" in c), key=lambda p: _id_key(p[0]))
    if not wanted:
        return pairs
    names = {name for _, name in pairs}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        raise SourceError(f"source.coco.categories: {unknown} are not categories of {path}; choices: {', '.join(sorted(names))}")
    return [p for p in pairs if p[1] in wanted]


def _item(source: str, image: dict, cat_id: Any, name: str, anns: list[dict], options: CocoOptions) -> Item:
    file_name = image.get("file_name")
    key = f"{image.get('id')}:{cat_id}"
    fields = dict(
        item_id=stable_item_id(source, key, str(file_name)),
        question=options.question.format(plural=pluralize(name), name=name),
        answer=str(len(anns)), task="counting", image_path=str(file_name or ""), label=name, source=source,
    )
    try:
        if not isinstance(file_name, str) or not file_name:
            raise FieldProblem(f"image {image.get('id')!r} has no file_name")
        h, w = image.get("height"), image.get("width")
        if not (isinstance(h, int) and isinstance(w, int) and h > 0 and w > 0):
            raise FieldProblem(f"image {image.get('id')!r} needs positive integer height and width")
        masks = [_annotation_rle(a, h, w) for a in anns]
        boxes = [_annotation_box(a) for a in anns]
    except FieldProblem as exc:
        return BadItem(**fields, problem=f"{source} image {image.get('id')!r} category {name!r}: {exc}")
    points = [list(mask_to_point(rle_to_mask(m)) or ()) for m in masks] if options.points else []
    if any(not p for p in points):
        # An empty mask has no interior point; the instance keeps its box and mask, not a fake point.
        points = []
    return Item(**fields, masks=masks, boxes=boxes, points=points)


def _annotation_box(ann: dict) -> list[float]:
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(map(is_number, bbox)) and bbox[2] >= 0 and bbox[3] >= 0):
        raise FieldProblem(f"annotation {ann.get('id')!r} bbox must be [x, y, w, h] with w, h >= 0, found {bbox!r}")
    return [float(v) for v in xywh_to_xyxy(bbox)]


def _annotation_rle(ann: dict, h: int, w: int) -> dict[str, Any]:
    seg = ann.get("segmentation")
    where = f"annotation {ann.get('id')!r} segmentation"
    if isinstance(seg, list):
        polygons = [p for p in seg if isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 and all(map(is_number, p))]
        if not polygons or len(polygons) != len(seg):
            raise FieldProblem(f"{where} must be polygons of at least 3 (x, y) pairs")
        coded = mask_utils.merge(mask_utils.frPyObjects([[float(v) for v in p] for p in polygons], h, w))
        return {"size": [h, w], "counts": coded["counts"].decode("ascii")}
    rle = as_rle(seg, where)
    if rle["size"] != [h, w]:
        raise FieldProblem(f"{where} size {rle['size']} differs from the image's [height, width] [{h}, {w}]")
    return rle
