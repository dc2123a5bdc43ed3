"""Checks on one grounding attempt: mask area, near-duplicates, the expected count.

Near-duplicates. Two prompts can land on one object (a detector's double box, two annotation
points on one coin); counting both would be wrong. SAM 3 Agent drops the lower-scoring of two
masks whose intersection-over-minimum exceeds 0.3; that also deletes genuinely overlapping
objects (two coins overlapping by 40% of the smaller one). The rule here keeps those:

    duplicates  <=>  IoU >= dedupe_iou
                     or (IoM >= dedupe_iom and each prompt's anchor point lies in the other mask)

A duplicate covers nearly the same pixels (high IoU). Overlapping distinct objects have a modest
IoU; and even when one nearly contains the other (high IoM), their prompts point at different
places, which the second clause uses as evidence of two objects. Of two duplicates the one with
the higher score is kept. Masks are (H, W) bool in the original image's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from synth.config.base import Strict
from synth.core.geometry import mask_intersection_over_min, mask_iou, mask_to_xyxy, point_in_mask


class VerifyConfig(Strict):
    """Thresholds of the per-attempt checks."""

    # 16 px is a 4x4 blob: smaller masks are speckle from a missed prompt, not an object.
    min_area: int = Field(16, ge=0, description="masks with fewer pixels are dropped (ground/mask_too_small)")
    # An object filling 90% of the frame is almost always SAM grabbing the background.
    max_area_fraction: float = Field(
        0.9, gt=0, le=1, description="masks covering more of the image are dropped (ground/mask_too_large)"
    )
    # Two masks of one object from two prompts overlap at IoU ~0.9; distinct touching objects < 0.5.
    dedupe_iou: float = Field(0.7, gt=0, le=1, description="mask IoU at or above which two instances are one")
    # High IoM alone (nesting) is not enough; the anchors must agree too (see module docstring).
    dedupe_iom: float = Field(
        0.8, gt=0, le=1, description="intersection-over-minimum at or above which mutually anchored instances are one"
    )
    check_count: bool = Field(True, description="require as many instances as the object's expected count")
    check_relation: bool = Field(True, description="require the answer's spatial relation to hold between boxes")


@dataclass
class Segment:
    """One instance an attempt produced.

    `mask` is (H, W) bool; `anchor` is the (x, y) positive point of its prompt (absolute pixels),
    None for box-only or prompt-free proposals.
    """

    mask: np.ndarray
    score: float
    anchor: tuple[float, float] | None = None
    area: int = -1
    box: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        if self.area < 0:
            self.area = int(np.count_nonzero(self.mask))
        if self.box is None and self.area:
            self.box = mask_to_xyxy(self.mask)


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed: a ground reason code of `REJECT_REASONS` and a readable detail."""

    reason: str
    detail: str


def are_duplicates(a: Segment, b: Segment, iou_threshold: float, iom_threshold: float) -> bool:
    """Whether two instances are one object (rule in the module docstring)."""
    if a.box is None or b.box is None:
        return False
    x0, y0 = int(max(a.box[0], b.box[0])), int(max(a.box[1], b.box[1]))
    x1, y1 = int(min(a.box[2], b.box[2])), int(min(a.box[3], b.box[3]))
    if x0 >= x1 or y0 >= y1:
        return False  # disjoint boxes: no shared pixel, so neither clause can hold
    # Both measures only need the pixels inside the union box; cropping keeps this cheap.
    u0, v0 = int(min(a.box[0], b.box[0])), int(min(a.box[1], b.box[1]))
    u1, v1 = int(max(a.box[2], b.box[2])), int(max(a.box[3], b.box[3]))
    ma, mb = a.mask[v0:v1, u0:u1], b.mask[v0:v1, u0:u1]
    if mask_iou(ma, mb) >= iou_threshold:
        return True
    if a.anchor is None or b.anchor is None:
        return False
    if mask_intersection_over_min(ma, mb) < iom_threshold:
        return False
    return point_in_mask(a.anchor, b.mask) and point_in_mask(b.anchor, a.mask)


def dedupe(segments: list[Segment], iou_threshold: float, iom_threshold: float) -> list[Segment]:
    """Keep the highest-scoring instance of each group of duplicates; order by score, then position."""
    order = sorted(range(len(segments)), key=lambda i: (-segments[i].score, i))
    kept: list[int] = []
    for i in order:
        if not any(are_duplicates(segments[i], segments[k], iou_threshold, iom_threshold) for k in kept):
            kept.append(i)
    # Back to prompt order: it follows the proposal (e.g. annotation order), which readers expect.
    return [segments[i] for i in sorted(kept)]


def check_attempt(
    segments: list[Segment], expected: int | None, cfg: VerifyConfig, image_area: int
) -> tuple[list[Segment], Failure | None]:
    """The instances an attempt keeps and, if the attempt fails, why.

    Empty, too small and too large masks are dropped, then near-duplicates. The attempt fails if
    the count differs from `expected` (when counting is checked) or, with no expected count, if
    nothing is left.
    """
    empty = [s for s in segments if s.area == 0]
    small = [s for s in segments if 0 < s.area < cfg.min_area]
    large = [s for s in segments if s.area > cfg.max_area_fraction * image_area]
    valid = [s for s in segments if s.area >= max(cfg.min_area, 1) and s.area <= cfg.max_area_fraction * image_area]
    kept = dedupe(valid, cfg.dedupe_iou, cfg.dedupe_iom)
    dropped = _dropped_note(len(empty), len(small), len(large), len(valid) - len(kept))
    if expected is not None and cfg.check_count and len(kept) != expected:
        reason = _area_reason(empty, small, large) or "count_mismatch"
        return kept, Failure(reason, f"{len(kept)} instances, expected {expected}{dropped}")
    if expected is None and not kept:
        reason = _area_reason(empty, small, large) or "empty_mask"
        return kept, Failure(reason, f"no usable instance of {len(segments)}{dropped}")
    return kept, None


def _area_reason(empty: list[Segment], small: list[Segment], large: list[Segment]) -> str | None:
    """The area problem that best explains a failed attempt, if any mask was dropped for area."""
    if large:
        return "mask_too_large"
    if small:
        return "mask_too_small"
    if empty:
        return "empty_mask"
    return None


def _dropped_note(empty: int, small: int, large: int, duplicates: int) -> str:
    parts = [f"{n} {what}" for n, what in ((empty, "empty"), (small, "too small"), (large, "too large"),
                                           (duplicates, "duplicate")) if n]
    return f" (dropped {', '.join(parts)})" if parts else ""
