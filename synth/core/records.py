"""The in-flight records every stage passes along, and the one list of reject reasons.

A run moves `ItemRecord`s through the stages, one record per input item. The teach stage fills
`candidates` (the k traces of that item); later stages work on the candidates that are still
alive. A candidate or an item that fails gets a `Reject` and stays in the record, so nothing
disappears: the write stage turns live candidates into rows and everything else into rejects.

Geometry convention (the same as `synth.core.geometry`): absolute pixel coordinates of the
original, upright image; x before y; boxes are XYXY with pixel edges, so a one-pixel mask at
column 3, row 5 has the box (3, 5, 4, 6); points are (x, y) floats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Every reason code a reject row may carry, by stage. Documented here and nowhere else.
REJECT_REASONS: dict[str, dict[str, str]] = {
    "read": {
        "image_missing": "the image file does not exist",
        "image_unreadable": "the image bytes cannot be decoded (truncated, zero bytes, not an image)",
        "image_too_large": "over read.max_pixels or read.max_bytes, or over read.max_side with oversize=reject",
        "path_outside_root": "the image path escapes the dataset root",
        "bad_item": "the item lacks a field or has a value of the wrong type",
    },
    "teach": {
        "teacher_error": "the teacher failed for this item after its retries",
        "teacher_timeout": "the teacher did not answer within the timeout",
        "answer_unparseable": "no final answer could be read from the trace",
        "answer_wrong": "the final answer does not match the gold answer",
        "truncated": "the trace hit max_tokens before it finished",
        "over_keep_limit": "a correct trace beyond the configured number to keep",
        "no_annotations": "the annotation teacher needs points, boxes or masks and found none",
    },
    "extract": {
        "no_objects": "no object phrase was found in the trace",
        "extract_unparseable": "the extractor's output could not be parsed",
    },
    "ground": {
        "no_proposals": "no proposal source gave a prompt for a phrase",
        "empty_mask": "the segmenter returned an empty mask",
        "mask_too_small": "a mask covers fewer pixels than ground.min_area",
        "mask_too_large": "a mask covers more of the image than ground.max_area_fraction",
        "count_mismatch": "the number of grounded instances differs from the answer",
        "relation_mismatch": "the grounded boxes do not satisfy the relation in the answer",
        "segmenter_error": "the segmenter failed on this image",
    },
    "annotate": {
        "render_failed": "the grounded trace could not be rendered",
    },
}

STAGES: tuple[str, ...] = tuple(REJECT_REASONS)


def check_reason(stage: str, reason: str) -> None:
    """Raise ValueError unless `reason` is a documented code of `stage`."""
    if stage not in REJECT_REASONS:
        raise ValueError(f"unknown stage {stage!r}; choices: {', '.join(STAGES)}")
    if reason not in REJECT_REASONS[stage]:
        choices = ", ".join(REJECT_REASONS[stage])
        raise ValueError(f"unknown reject reason {reason!r} for stage {stage!r}; choices: {choices}")


@dataclass
class Reject:
    """Why an item or a trace did not become a row."""

    stage: str
    reason: str
    detail: str = ""

    def __post_init__(self) -> None:
        check_reason(self.stage, self.reason)


@dataclass
class Item:
    """One image-question-answer input.

    `points` is (N, 2) float (x, y) and `boxes` is (N, 4) float XYXY, both absolute pixels of the
    original image; `masks` are COCO RLE dicts. They are the dataset's own annotations (PixMo-Count
    points, COCO boxes and masks) and may be empty.
    """

    item_id: str
    question: str
    answer: str
    task: str = "counting"
    image_path: str = ""
    image_bytes: bytes | None = None
    label: str | None = None
    points: list[list[float]] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)
    masks: list[dict[str, Any]] = field(default_factory=list)
    choices: list[str] = field(default_factory=list)
    source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The item as plain JSON (without image bytes), enough to retry it."""
        return {
            "item_id": self.item_id,
            "question": self.question,
            "answer": self.answer,
            "task": self.task,
            "image_path": self.image_path,
            "label": self.label,
            "points": self.points,
            "boxes": self.boxes,
            "masks": self.masks,
            "choices": self.choices,
            "source": self.source,
        }


@dataclass
class Instance:
    """One grounded instance of an object.

    `mask` is COCO RLE `{"size": [h, w], "counts": str}` of the original image; `box` is XYXY with
    pixel edges; `point` is (x, y) inside the mask; all absolute pixels of the original image.
    """

    mask: dict[str, Any]
    box: list[float]
    point: list[float]
    score: float = 0.0


@dataclass
class GroundedObject:
    """An object a trace relies on: a phrase, its character spans in the trace, its instances.

    `spans` are `(start, end)` character offsets into the trace, end exclusive, one per mention.
    """

    phrase: str
    spans: list[tuple[int, int]] = field(default_factory=list)
    expected_count: int | None = None
    instances: list[Instance] = field(default_factory=list)
    proposal_source: str = ""
    retries: int = 0
    score: float = 0.0


@dataclass
class Candidate:
    """One teacher trace of an item and everything later stages add to it."""

    sample_index: int
    text: str
    final_answer: str | None = None
    correct: bool = False
    finish_reason: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    objects: list[GroundedObject] = field(default_factory=list)
    grounded_trace: str = ""
    grounded_format: str = ""
    reject: Reject | None = None

    @property
    def alive(self) -> bool:
        return self.reject is None


@dataclass
class TeacherInfo:
    """What produced the candidates of an item; shared by all its candidates."""

    backend: str = ""
    model: str = ""
    prompt_sha256: str = ""
    sampling: dict[str, Any] = field(default_factory=dict)
    n_sampled: int = 0
    n_correct: int = 0


@dataclass
class ItemRecord:
    """An item on its way through the pipeline.

    `image` is the decoded upright RGB image, (H, W, 3) uint8, or None before read or after a
    read reject. `image_bytes` are the bytes stored in the row (the original file's bytes when
    they decode to the same upright image, otherwise a PNG of it).
    """

    item: Item
    image: np.ndarray | None = None
    image_bytes: bytes = b""
    image_format: str = ""
    width: int = 0
    height: int = 0
    image_sha256: str = ""
    teacher: TeacherInfo = field(default_factory=TeacherInfo)
    candidates: list[Candidate] = field(default_factory=list)
    reject: Reject | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def alive(self) -> bool:
        return self.reject is None

    def live_candidates(self) -> list[Candidate]:
        """Candidates not rejected so far (empty if the item itself was rejected)."""
        if not self.alive:
            return []
        return [c for c in self.candidates if c.alive]
