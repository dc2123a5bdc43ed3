"""The annotate stage: masks become aligned geometry, and the grounded trace is rendered.

Each instance gets, from its mask alone (`synth.core.geometry`): the mask as COCO RLE, its tight
XYXY box, and an interior point (the pixel centre farthest from the mask's edge, which lies inside
rings and crescents, unlike a centroid). Then the trace is rendered in the configured format and
frame with `synth.core.formats.render_trace`: points for counting, boxes for everything else by
default, each grounding right after the first mention of its object.
"""

from __future__ import annotations

import logging
from typing import Literal

from pydantic import Field

from synth.config.base import Resources, Strict
from synth.core.formats import Frame, format_name, qwen_resized_frame, render_trace
from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy, rle_to_mask
from synth.core.records import Candidate, GroundedObject, ItemRecord, Reject
from synth.stages.base import RunContext

log = logging.getLogger(__name__)


class AnnotateConfig(Strict):
    """How instances are described and the grounded trace rendered."""

    # TVG-style tags are the target format of the grounded-reasoning work this data is for.
    format: Literal["tvg", "ivgr", "molmo", "qwen"] = Field("tvg", description="trace format of the rendering")
    # 0-1000 integers: resolution-free and what most grounding VLMs read.
    frame: Literal["pixel", "norm1", "norm100", "norm1000", "resized"] = Field(
        "norm1000", description="coordinate frame of the rendered numbers"
    )
    # Points suit counting (one per instance), boxes suit relations (extent matters).
    geometry: Literal["auto", "point", "box"] = Field(
        "auto", description="auto: points for counting items, boxes otherwise"
    )
    # Qwen2.5-VL's defaults: sides are multiples of 28, at most 1280*28*28 pixels.
    resize_factor: int = Field(28, ge=1, description="frame=resized: sides rounded to multiples of this")
    resize_max_pixels: int = Field(1280 * 28 * 28, ge=1, description="frame=resized: pixel budget of the resized image")
    resize_min_pixels: int = Field(56 * 56, ge=1, description="frame=resized: smallest pixel count")
    resources: Resources = Field(default_factory=Resources, description="how the stage runs on Ray")


def complete_instances(obj: GroundedObject) -> None:
    """Give every instance of `obj` its RLE, tight box and interior point; drop empty masks."""
    kept = []
    for inst in obj.instances:
        mask = rle_to_mask(inst.mask)
        box, point = mask_to_xyxy(mask), mask_to_point(mask)
        if box is None or point is None:
            log.warning("dropping an empty instance mask of %r", obj.phrase)
            continue
        inst.mask, inst.box, inst.point = mask_to_rle(mask), list(box), list(point)
        kept.append(inst)
    obj.instances = kept


class AnnotateStage:
    """Completes instance geometry and renders `candidate.grounded_trace` for every live trace."""

    name = "annotate"

    def __init__(self, config: AnnotateConfig, context: RunContext) -> None:
        self.config, self.context = config, context

    def setup(self) -> None:
        """Nothing to load."""

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]:
        """Annotate every live candidate in place; one output per input, same order."""
        for record in batch:
            for candidate in record.live_candidates():
                for obj in candidate.objects:
                    complete_instances(obj)
                self._render(record, candidate)
        return batch

    def geometry_for(self, task: str) -> Literal["point", "box"]:
        """The geometry rendered for a task."""
        if self.config.geometry != "auto":
            return self.config.geometry
        return "point" if task == "counting" else "box"

    def frame_for(self, record: ItemRecord) -> Frame:
        """The coordinate frame of the rendering for this image."""
        cfg = self.config
        if cfg.frame != "resized":
            return Frame(kind=cfg.frame, width=record.width, height=record.height)
        return qwen_resized_frame(
            record.width, record.height,
            factor=cfg.resize_factor, min_pixels=cfg.resize_min_pixels, max_pixels=cfg.resize_max_pixels,
        )

    def _render(self, record: ItemRecord, candidate: Candidate) -> None:
        cfg = self.config
        answer = candidate.final_answer or record.item.answer
        try:
            candidate.grounded_trace = render_trace(
                candidate.text, candidate.objects, cfg.format, self.frame_for(record),
                self.geometry_for(record.item.task), answer=answer,
            )
        except (ValueError, KeyError, IndexError, TypeError) as err:
            candidate.reject = Reject("annotate", "render_failed", f"{type(err).__name__}: {err}")
            return
        candidate.grounded_format = format_name(cfg.format, cfg.frame)
