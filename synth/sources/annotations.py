"""A dataset's own annotations (points, boxes, masks) checked against the decoded image, and scaled with it.

Annotations are taken to be in the upright frame of the image (see `synth.sources.images`). An
item whose masks are not of the image's size, or whose points or boxes lie more than one pixel
outside it, is in another frame (a rotated photo annotated before its EXIF turn, a resized copy)
and is refused as `bad_item` rather than carried along wrong. When the read stage downscales an
image, points and boxes are multiplied by the per-axis factors and masks are resampled (area
average, kept where at least half covered), so the geometry stays that of the stored image.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from synth.core.geometry import mask_to_rle, rle_to_mask
from synth.core.records import Item
from synth.sources.images import DecodedImage, ReadFailure

#: How far (pixels) a point or box may stick out of the image: COCO boxes overshoot by float rounding.
OUTSIDE_TOLERANCE = 1.0


def fit_annotations(item: Item, decoded: DecodedImage) -> Item:
    """`item` with its annotations checked against `decoded` and scaled to it; raises ReadFailure."""
    width, height = decoded.source_size
    check_frame(item, width, height)
    if decoded.scale == (1.0, 1.0) or not (item.points or item.boxes or item.masks):
        return item
    sx, sy = decoded.scale
    new_h, new_w = decoded.array.shape[:2]
    return replace(
        item,
        points=[[x * sx, y * sy] for x, y in item.points],
        boxes=[[x0 * sx, y0 * sy, x1 * sx, y1 * sy] for x0, y0, x1, y1 in item.boxes],
        masks=[resize_rle(m, new_w, new_h) for m in item.masks],
    )


def check_frame(item: Item, width: int, height: int) -> None:
    """Raise ReadFailure("bad_item") unless every annotation fits a `width` x `height` image."""
    for k, rle in enumerate(item.masks):
        if [int(v) for v in rle["size"]] != [height, width]:
            raise ReadFailure(
                "bad_item",
                f"mask {k} has size {list(rle['size'])} but the upright image is [height, width] "
                f"[{height}, {width}]; annotations must be in the upright frame",
            )
    t = OUTSIDE_TOLERANCE
    for k, (x, y) in enumerate(item.points):
        if not (-t <= x <= width + t and -t <= y <= height + t):
            raise ReadFailure("bad_item", f"point {k} ({x}, {y}) lies outside the {width}x{height} upright image")
    for k, (x0, y0, x1, y1) in enumerate(item.boxes):
        if not (-t <= x0 and -t <= y0 and x1 <= width + t and y1 <= height + t):
            raise ReadFailure("bad_item", f"box {k} {[x0, y0, x1, y1]} leaves the {width}x{height} upright image")


def resize_rle(rle: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """A mask resampled to `width` x `height`: a pixel is in if at least half of its area was."""
    mask = rle_to_mask(rle).astype(np.float32)
    small = cv2.resize(mask, (width, height), interpolation=cv2.INTER_AREA)
    return mask_to_rle(small >= 0.5)
