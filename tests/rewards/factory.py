"""Tiny shard rows with known geometry, for reward and export tests.

`make_row` builds a dict laid out as `schemas/v1.json`: rectangles or discs on a small image,
their COCO RLE masks, tight boxes and interior points, all absolute pixels.
"""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timezone
from typing import Any

import numpy as np
from PIL import Image

from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy


def rect_mask(height: int, width: int, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """A mask of the pixels with columns x0..x1-1 and rows y0..y1-1 (box (x0, y0, x1, y1))."""
    mask = np.zeros((height, width), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def disc_mask(height: int, width: int, cx: float, cy: float, r: float) -> np.ndarray:
    """A filled disc of radius r around (cx, cy), pixel centres inside."""
    rows, cols = np.mgrid[0:height, 0:width]
    return (cols + 0.5 - cx) ** 2 + (rows + 0.5 - cy) ** 2 <= r * r


def png_bytes(height: int, width: int, seed: int = 0) -> bytes:
    """A small random RGB PNG (seeded, so its sha256 is stable)."""
    pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def instance(mask: np.ndarray) -> dict[str, Any]:
    """An instance dict of the schema from a mask."""
    return {"mask": mask_to_rle(mask), "box": list(mask_to_xyxy(mask)), "point": list(mask_to_point(mask)), "score": 0.9}


def make_row(
    objects: list[tuple[str, list[np.ndarray]]],
    trace: str,
    answer: str,
    task: str = "counting",
    width: int = 64,
    height: int = 48,
    row_id: str = "row-1",
    item_id: str | None = None,
    source: str = "tests",
    seed: int = 0,
    question: str = "How many discs are there?",
    image: bytes | None = None,
) -> dict[str, Any]:
    """A rows-shard dict; each object's spans are every occurrence of its phrase in `trace`."""
    image = image if image is not None else png_bytes(height, width, seed)
    objs = []
    for phrase, masks in objects:
        spans, start = [], trace.find(phrase)
        while start >= 0:
            spans.append({"start": start, "end": start + len(phrase)})
            start = trace.find(phrase, start + 1)
        objs.append({
            "phrase": phrase, "spans": spans, "expected_count": len(masks), "proposal_source": "annotation",
            "retries": 0, "score": 0.9, "instances": [instance(m) for m in masks],
        })
    return {
        "id": row_id,
        "item_id": item_id or row_id,
        "task": task,
        "question": question,
        "answer": answer,
        "image": {"bytes": image, "path": f"{row_id}.png"},
        "image_width": width,
        "image_height": height,
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "trace": trace,
        "final_answer": answer,
        "objects": objs,
        "grounded_trace": trace,
        "grounded_format": "tvg:norm1000",
        "teacher": {"backend": "annotation", "model": "", "prompt_sha256": "", "sampling": "{}", "sample_index": 0,
                    "n_sampled": 1, "n_correct": 1, "finish_reason": "stop", "prompt_tokens": 0,
                    "completion_tokens": 0},
        "provenance": {"synth_version": "0", "config_sha256": "c" * 64, "segmenter": "test", "source": source,
                       "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc)},
    }


def three_discs_row(row_id: str = "discs", **kwargs: Any) -> dict[str, Any]:
    """Three discs of radius 5 on a 64x48 image; the answer is 3."""
    h, w = 48, 64
    masks = [disc_mask(h, w, 12, 12, 5), disc_mask(h, w, 40, 14, 5), disc_mask(h, w, 30, 34, 5)]
    trace = "I look at the red discs in the image. Counting the red discs gives 3."
    return make_row([("red discs", masks)], trace, "3", row_id=row_id, **kwargs)


def two_boxes_row(row_id: str = "boxes", **kwargs: Any) -> dict[str, Any]:
    """A 100x80 image with rectangles (0,0,10,10) and (20,0,30,10): a spatial row."""
    h, w = 80, 100
    masks = [rect_mask(h, w, 0, 0, 10, 10), rect_mask(h, w, 20, 0, 30, 10)]
    trace = "The cup is left of the plate, so the answer is left."
    return make_row([("cup", masks[:1]), ("plate", masks[1:])], trace, "left", task="spatial",
                    width=w, height=h, row_id=row_id, question="Where is the cup relative to the plate?", **kwargs)
