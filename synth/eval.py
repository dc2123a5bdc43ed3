"""Quality of a run against ground truth in COCO instances format.

Rows are matched to COCO images by image path (`image.path` of the row against `file_name`, then
by base name), and each grounded object to the COCO category its phrase names ("traffic lights"
-> "traffic light"; number and determiners do not matter). Per object, predicted instances are
matched one-to-one to the category's non-crowd truth instances, greedily by mask IoU (highest
first, at least `iou_threshold`). The figures, micro-averaged over all matched objects:

- precision: matched predictions / predictions; recall: matched truths / truths;
- point-in-mask rate: predicted points that lie inside some truth mask of the category;
- count accuracy: among objects with an expected count (the counted object of a counting trace),
  the share whose number of instances equals the number of truth instances.

Geometry throughout: absolute pixels of the original image; masks COCO RLE.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow.compute as pc
from pycocotools import mask as mask_utils

from synth.core.geometry import point_in_mask, rle_to_mask
from synth.core.shards import load_output
from synth.core.phrases import same_object
from synth.sources.base import SourceError
from synth.sources.coco import load_coco


@dataclass
class EvalReport:
    """Counts behind the figures, and the figures themselves (None when undefined)."""

    rows: int = 0
    rows_matched: int = 0
    objects: int = 0
    objects_matched: int = 0
    predictions: int = 0
    truths: int = 0
    true_positives: int = 0
    points: int = 0
    points_in_mask: int = 0
    counted_objects: int = 0
    counts_correct: int = 0
    iou_threshold: float = 0.5
    unmatched_images: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.predictions if self.predictions else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.truths if self.truths else None

    @property
    def point_in_mask_rate(self) -> float | None:
        return self.points_in_mask / self.points if self.points else None

    @property
    def count_accuracy(self) -> float | None:
        return self.counts_correct / self.counted_objects if self.counted_objects else None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["unmatched_images"] = self.unmatched_images[:20]
        for name in ("precision", "recall", "point_in_mask_rate", "count_accuracy"):
            out[name] = getattr(self, name)
        return out


class CocoTruth:
    """COCO instances truth, indexed by image path and category name."""

    def __init__(self, source: Path | dict[str, Any]) -> None:
        """`source`: a COCO instances file, or its content already loaded (the demo truth)."""
        if isinstance(source, dict):
            data = source
        else:
            try:
                data = load_coco(Path(source))
            except SourceError as err:
                raise ValueError(f"--truth: {err}") from err
        self.categories = {c["id"]: str(c["name"]) for c in data["categories"]}
        self.images = {i["id"]: i for i in data["images"]}
        self.by_path: dict[str, Any] = {}
        self.by_name: dict[str, list[Any]] = defaultdict(list)
        for image in data["images"]:
            self.by_path[str(image["file_name"])] = image["id"]
            self.by_name[PurePosixPath(str(image["file_name"])).name].append(image["id"])
        self.anns: dict[tuple[Any, Any], list[dict]] = defaultdict(list)
        for ann in data["annotations"]:
            if not ann.get("iscrowd"):
                self.anns[(ann["image_id"], ann["category_id"])].append(ann)

    def image_id(self, path: str) -> Any | None:
        """The COCO image of a row's image path: exact file_name, else a unique base-name match."""
        if path in self.by_path:
            return self.by_path[path]
        hits = self.by_name.get(PurePosixPath(path.replace("\\", "/")).name, [])
        return hits[0] if len(hits) == 1 else None

    def category(self, phrase: str) -> Any | None:
        """The category a phrase names, if exactly one does."""
        hits = [cid for cid, name in self.categories.items() if same_object(phrase, name)]
        return hits[0] if len(hits) == 1 else None

    def masks(self, image_id: Any, category_id: Any) -> list[np.ndarray]:
        """(H, W) bool truth masks of one category in one image."""
        image = self.images[image_id]
        h, w = int(image["height"]), int(image["width"])
        return [_ann_mask(a["segmentation"], h, w) for a in self.anns.get((image_id, category_id), [])]


def _ann_mask(segmentation: Any, h: int, w: int) -> np.ndarray:
    if isinstance(segmentation, list):  # polygons
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))).astype(bool)
    return rle_to_mask(segmentation)


def match_instances(pred: list[np.ndarray], truth: list[np.ndarray], iou_threshold: float) -> int:
    """Number of one-to-one matches at IoU >= threshold, matched greedily by IoU."""
    if not pred or not truth:
        return 0
    encode = lambda ms: [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in ms]  # noqa: E731
    ious = np.asarray(mask_utils.iou(encode(pred), encode(truth), [0] * len(truth))).reshape(len(pred), len(truth))
    matched, used_p, used_t = 0, set(), set()
    for flat in np.argsort(-ious, axis=None):
        p, t = divmod(int(flat), len(truth))
        if ious[p, t] < iou_threshold:
            break
        if p not in used_p and t not in used_t:
            used_p.add(p), used_t.add(t)
            matched += 1
    return matched


def evaluate(output: Path, truth_path: Path | None, iou_threshold: float = 0.5) -> EvalReport:
    """Score the rows of an output folder (or one rows shard) against a COCO truth file; with no
    truth file, a run of the demo source is scored against the demo's own masks."""
    loaded = load_output(output)
    truth = CocoTruth(truth_path if truth_path is not None else _demo_truth(loaded.manifest))
    table = loaded.rows
    report = EvalReport(rows=table.num_rows, iou_threshold=iou_threshold)
    paths = pc.struct_field(table["image"], "path").to_pylist() if table.num_rows else []
    for path, objects in zip(paths, table["objects"].to_pylist()):
        image_id = truth.image_id(path or "")
        if image_id is None:
            report.unmatched_images.append(path or "")
            continue
        report.rows_matched += 1
        for obj in objects:
            _score_object(report, truth, image_id, obj, iou_threshold)
    return report


def _demo_truth(manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The truth of a demo run, rebuilt from the demo options in its manifest's config."""
    from synth.sources.demo import DemoOptions, demo_truth

    source = ((manifest or {}).get("config") or {}).get("source") or {}
    if source.get("kind") != "demo":
        raise ValueError("--truth is needed: only a run of the demo source (an output folder) carries its own truth")
    return demo_truth(DemoOptions.model_validate(source.get("demo") or {}))


def _score_object(report: EvalReport, truth: CocoTruth, image_id: Any, obj: dict, iou_threshold: float) -> None:
    report.objects += 1
    category = truth.category(obj["phrase"])
    if category is None:
        return
    report.objects_matched += 1
    true_masks = truth.masks(image_id, category)
    pred_masks = [rle_to_mask(inst["mask"]) for inst in obj["instances"]]
    report.predictions += len(pred_masks)
    report.truths += len(true_masks)
    report.true_positives += match_instances(pred_masks, true_masks, iou_threshold)
    for inst in obj["instances"]:
        report.points += 1
        report.points_in_mask += any(point_in_mask(inst["point"], m) for m in true_masks)
    if obj.get("expected_count") is not None:
        report.counted_objects += 1
        report.counts_correct += len(pred_masks) == len(true_masks)
