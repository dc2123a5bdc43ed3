"""Builders of tiny, exactly known records and outputs, shared by the shard and inspect tests.

An image is a grey background with N red discs on a grid; each disc's mask, tight box and interior
point come from `synth.core.geometry`, so every geometric fact in a row is known exactly.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy
from synth.core.records import (
    Candidate,
    GroundedObject,
    Instance,
    Item,
    ItemRecord,
    Reject,
    TeacherInfo,
)
from synth.core.rows import record_to_rows
from synth.core.shards import ShardWriter
from synth.stages.base import RunContext

CONFIG_SHA = "c" * 64
SEGMENTER = "box_painting_test_double"
CONTEXT = RunContext(config_sha256=CONFIG_SHA, synth_version="0.1.0")


def disc_masks(n: int, width: int = 64, height: int = 48, radius: int = 5) -> list[np.ndarray]:
    """`n` disjoint disc masks of shape (height, width) on a grid, left to right, top to bottom."""
    yy, xx = np.mgrid[0:height, 0:width]
    per_row = max(1, (width - 4) // (2 * radius + 4))
    masks = []
    for i in range(n):
        cx = 2 + radius + 1 + (i % per_row) * (2 * radius + 4)
        cy = 2 + radius + 1 + (i // per_row) * (2 * radius + 4)
        masks.append((xx - cx) ** 2 + (yy - cy) ** 2 <= radius**2)
    return masks


def disc_image(masks: list[np.ndarray], width: int = 64, height: int = 48) -> tuple[np.ndarray, bytes]:
    """The RGB image of the discs (H, W, 3) uint8 and its PNG bytes."""
    image = np.full((height, width, 3), 90, dtype=np.uint8)
    for mask in masks:
        image[mask] = (220, 40, 40)
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return image, buf.getvalue()


def disc_object(trace: str, phrase: str, masks: list[np.ndarray]) -> GroundedObject:
    """The object `phrase` of `trace` grounded with exact instances from `masks`."""
    start = trace.index(phrase)
    instances = [
        Instance(mask=mask_to_rle(m), box=list(mask_to_xyxy(m)), point=list(mask_to_point(m)), score=0.9)
        for m in masks
    ]
    return GroundedObject(phrase=phrase, spans=[(start, start + len(phrase))], expected_count=len(masks),
                          instances=instances, proposal_source="annotation", retries=0, score=0.9)


def disc_record(item_id: str, n: int = 3, width: int = 64, height: int = 48, k: int = 2,
                rejected: tuple[int, ...] = ()) -> ItemRecord:
    """An item with `n` discs and `k` traces; the sample indices in `rejected` fail at ground."""
    masks = disc_masks(n, width, height)
    image, png = disc_image(masks, width, height)
    item = Item(item_id=item_id, question="How many red discs?", answer=str(n),
                image_path=f"images/{item_id}.png", source="discs", points=[[1.5, 2.5]])
    record = ItemRecord(item=item, image=image, image_bytes=png, image_format="png", width=width,
                        height=height, image_sha256=hashlib.sha256(png).hexdigest())
    record.teacher = TeacherInfo(backend="annotation", model="disc-teacher", prompt_sha256="p" * 64,
                                 sampling={"temperature": 0.7, "n": k}, n_sampled=k, n_correct=k)
    for s in range(k):
        trace = f"I look at the image. I see {n} red discs in a grid. So the answer is {n}."
        cand = Candidate(sample_index=s, text=trace, final_answer=str(n), correct=True,
                         finish_reason="stop", prompt_tokens=20, completion_tokens=15)
        cand.objects = [disc_object(trace, "red discs", masks)]
        cand.grounded_trace = trace.replace("red discs", "red discs <points n=%d>" % n)
        cand.grounded_format = "tvg:pixel"
        if s in rejected:
            cand.reject = Reject("ground", "count_mismatch", "found 2, expected 3")
        record.candidates.append(cand)
    return record


def read_rejected_record(item_id: str) -> ItemRecord:
    """An item rejected whole by the read stage."""
    item = Item(item_id=item_id, question="How many?", answer="2", image_path=f"images/{item_id}.png")
    return ItemRecord(item=item, reject=Reject("read", "image_unreadable", "zero bytes"))


def write_disc_output(out: Path, n_items: int = 3, commits: int = 1,
                      mutate: Callable[[list[ItemRecord]], None] | None = None) -> ShardWriter:
    """An output folder of `n_items` disc items (one rejected whole), committed in `commits` batches.

    Item i has 1 + i % 4 discs and two traces; odd items lose trace 1 at ground. `mutate` may
    change the records (e.g. break a box) before they are written.
    """
    writer = ShardWriter.open(out, CONFIG_SHA, config={"name": "discs"})
    records = [disc_record(f"item-{i}", n=1 + i % 4, rejected=(1,) if i % 2 else ()) for i in range(n_items - 1)]
    records.append(read_rejected_record(f"item-{n_items - 1}"))
    if mutate is not None:
        mutate(records)
    per = -(-len(records) // commits)
    for c in range(commits):
        batch = records[c * per:(c + 1) * per]
        rows, rejects = [], []
        for record in batch:
            r, j = record_to_rows(record, CONTEXT, SEGMENTER)
            rows += r
            rejects += j
        writer.commit(rows, rejects, [r.item.item_id for r in batch])
    return writer
