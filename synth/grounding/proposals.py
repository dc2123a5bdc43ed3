"""Where segmentation prompts come from. Each source yields attempts, tried in order.

Sources, in the default order of preference:
- `annotation`: the dataset's own instances (Item.masks, Item.boxes, Item.points; PixMo-Count
  points, COCO boxes). They belong to the object the item counts: the object whose phrase names
  `Item.label`, or the only object of the trace. Attempts: mask-derived box+point prompts, then
  boxes, then points, then points with every other point as a negative click (a re-prompt that
  separates touching objects).
- `teacher_points`: the teacher points at every instance of the phrase (prompts/pointing.txt),
  parsed with the trace-format parser; every attempt is a fresh request with a new seed.
- `detector`: an open-vocabulary detector's boxes for the phrase; the retry lowers the threshold.
- `text_sam`: a text-promptable SAM (SAM 3) returns instance masks for the phrase directly.

All geometry is in absolute pixels of the original image (boxes XYXY, points (x, y)).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import Field

from synth.adapters.base import MaskResult, Prompt, Teacher, TeacherRequest
from synth.config.base import Strict
from synth.core.formats import Frame, parse_groundings
from synth.core.geometry import mask_to_point, mask_to_xyxy, rle_to_mask
from synth.core.records import Candidate, GroundedObject, ItemRecord
from synth.core.phrases import label_names, same_object
from synth.grounding.prompts import fill_template
from synth.grounding.relations import question_objects

log = logging.getLogger(__name__)

SourceName = Literal["annotation", "teacher_points", "detector", "text_sam"]


@dataclass
class Proposal:
    """One attempt's prompts (or, from a text-promptable SAM, its masks already made)."""

    source: str
    prompts: list[Prompt] = field(default_factory=list)
    results: list[MaskResult] | None = None
    note: str = ""


@dataclass
class ProposalContext:
    """What a source may look at to propose instances of one object of one trace."""

    record: ItemRecord
    candidate: Candidate
    obj: GroundedObject

    def annotation_indices(self) -> list[int]:
        """Which of the item's annotations are instances of this object.

        All of them when the object is the counted one: its phrase names a counting item's
        `label`, or it is the trace's only object. Otherwise, when the label (or else the
        question) names as many objects as there are annotations, in annotation order (a spatial
        item: "cup|laptop" with two boxes), the one at this object's position. Else none.
        """
        item = self.record.item
        n = max(len(item.masks), len(item.boxes), len(item.points))
        names = label_names(item.label, item.task)
        counted = item.task == "counting" and names and same_object(self.obj.phrase, names[0])
        if counted or len(self.candidate.objects) == 1 and (item.task == "counting" or n == 1):
            return list(range(n))
        for named in (names, question_objects(item.question)):
            hits = [i for i, phrase in enumerate(named) if same_object(self.obj.phrase, phrase)]
            if len(named) == n and len(hits) == 1:
                return hits
        return []


class Proposer(Protocol):
    """A proposal source: `attempts` yields successive proposals for one object, lazily."""

    source: str

    def setup(self) -> None: ...

    def attempts(self, ctx: ProposalContext) -> Iterator[Proposal]: ...


def _point_prompt(xy: Any, source: str) -> Prompt:
    return Prompt(points=np.asarray([xy], dtype=np.float64).reshape(1, 2), labels=np.ones(1, np.int32), source=source)


def _box_prompt(box: Any, source: str) -> Prompt:
    return Prompt(box=np.asarray(box, dtype=np.float64).reshape(4), source=source)


class AnnotationProposer:
    """Prompts from the dataset's annotations of the counted object."""

    source = "annotation"

    def setup(self) -> None:
        """Nothing to load."""

    def attempts(self, ctx: ProposalContext) -> Iterator[Proposal]:
        item = ctx.record.item
        mine = ctx.annotation_indices()
        if not mine:
            return
        masks = [item.masks[i] for i in mine if i < len(item.masks)]
        boxes = [item.boxes[i] for i in mine if i < len(item.boxes)]
        points = [item.points[i] for i in mine if i < len(item.points)]
        if masks:
            yield Proposal(self.source, [self._mask_prompt(m) for m in masks], note="masks")
        if boxes:
            yield Proposal(self.source, [_box_prompt(b, self.source) for b in boxes], note="boxes")
        if points:
            yield Proposal(self.source, [_point_prompt(p, self.source) for p in points], note="points")
        if len(item.points) > 1 and len(points) == len(mine):
            # Every other annotated point is a negative click: it keeps SAM off the neighbours.
            yield Proposal(self.source, self._with_negatives(item.points, mine), note="points+negatives")

    def _mask_prompt(self, rle: dict[str, Any]) -> Prompt:
        mask = rle_to_mask(rle)
        box, point = mask_to_xyxy(mask), mask_to_point(mask)
        if box is None or point is None:
            raise ValueError("an annotation mask is empty; the read stage should have rejected the item")
        return Prompt(points=np.array([point]), labels=np.ones(1, np.int32), box=np.array(box), source=self.source)

    def _with_negatives(self, points: list[list[float]], mine: list[int]) -> list[Prompt]:
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        prompts = []
        for i in mine:
            order = [i] + [j for j in range(len(pts)) if j != i]
            labels = np.array([1] + [0] * (len(pts) - 1), np.int32)
            prompts.append(Prompt(points=pts[order], labels=labels, source=self.source))
        return prompts


class PointingConfig(Strict):
    """How the teacher is asked to point at every instance of a phrase."""

    prompt_file: str = Field("pointing.txt", description="template in the prompts folder; placeholders {phrase}, {question}")
    # Molmo-style points in 0-100 are what pointing VLMs are trained to emit.
    format: Literal["tvg", "ivgr", "molmo", "qwen"] = Field("molmo", description="trace format the answer is parsed in")
    frame: Literal["pixel", "norm1", "norm100", "norm1000", "resized"] = Field(
        "norm100", description="coordinate frame of the teacher's numbers"
    )
    attempts: int = Field(2, ge=1, description="requests per object (each a re-prompt with a new seed)")
    # A little temperature so that a re-prompt can differ from the first answer.
    temperature: float = Field(0.3, ge=0, description="sampling temperature of a pointing request")
    max_tokens: int = Field(512, ge=16, description="token budget of a pointing answer")


class TeacherPointProposer:
    """Points (or boxes) the teacher gives for every instance of the phrase."""

    source = "teacher_points"

    def __init__(self, teacher: Teacher, template: str, cfg: PointingConfig) -> None:
        self.teacher, self.template, self.cfg = teacher, template, cfg

    def setup(self) -> None:
        self.teacher.setup()

    def attempts(self, ctx: ProposalContext) -> Iterator[Proposal]:
        record = ctx.record
        frame = Frame(kind=self.cfg.frame, width=record.width, height=record.height)
        user = fill_template(self.template, phrase=ctx.obj.phrase, question=record.item.question)
        for attempt in range(self.cfg.attempts):
            request = TeacherRequest(
                request_id=f"{record.item.item_id}/{ctx.candidate.sample_index}/point/{attempt}",
                system="",
                user=user,
                image_bytes=record.image_bytes or image_png(record.image),
                sampling={"temperature": self.cfg.temperature, "max_tokens": self.cfg.max_tokens, "seed": attempt},
            )
            response = self.teacher.generate([request])[0]
            if response.error or not response.completions:
                log.debug("pointing request %s failed: %s", request.request_id, response.error)
                continue
            groundings, reason = parse_groundings(response.completions[0].text, self.cfg.format, frame)
            if reason is not None:
                log.debug("pointing answer %s unparseable: %s", request.request_id, reason)
            prompts = [
                _point_prompt(xy, self.source) if g.kind == "point" else _box_prompt(xy, self.source)
                for g in groundings
                for xy in g.coords
            ]
            yield Proposal(self.source, prompts, note=f"request {attempt}")


class DetectorConfig(Strict):
    """An open-vocabulary detector (transformers), loaded from a path or hub id."""

    backend: Literal["owlv2", "grounding_dino"] = Field("owlv2", description="detector architecture")
    model_path: str | None = Field(None, description="local folder or hub id; required when the detector is used")
    device: str = Field("cpu", description="torch device")
    # 0.3 is OWLv2's usual operating point for open-vocabulary queries.
    threshold: float = Field(0.3, ge=0, le=1, description="score threshold of the first attempt")
    # A second look at a lower bar recovers faint instances when the count came out short.
    retry_threshold: float | None = Field(0.15, ge=0, le=1, description="threshold of the retry; None: no retry")


class DetectorProposer:
    """Boxes an open-vocabulary detector finds for the phrase."""

    source = "detector"

    def __init__(self, detector: Any, cfg: DetectorConfig) -> None:
        self.detector, self.cfg = detector, cfg

    def setup(self) -> None:
        self.detector.setup()

    def attempts(self, ctx: ProposalContext) -> Iterator[Proposal]:
        thresholds = [self.cfg.threshold] + ([self.cfg.retry_threshold] if self.cfg.retry_threshold is not None else [])
        detections = self.detector.detect(ctx.record.image, [ctx.obj.phrase], min(thresholds))[0]
        for threshold in thresholds:
            boxes = detections.boxes[detections.scores >= threshold]
            yield Proposal(self.source, [_box_prompt(b, self.source) for b in boxes], note=f"threshold {threshold}")


class TextSamConfig(Strict):
    """A text-promptable SAM (transformers Sam3Model), loaded from a path or hub id."""

    model_path: str | None = Field(None, description="local folder or hub id; required when text_sam is used")
    device: str = Field("cpu", description="torch device")
    # SAM 3's post-processing default.
    threshold: float = Field(0.5, ge=0, le=1, description="instance score threshold")


class TextSamProposer:
    """Instance masks a text-promptable SAM returns for the phrase."""

    source = "text_sam"

    def __init__(self, model: Any, cfg: TextSamConfig) -> None:
        self.model, self.cfg = model, cfg

    def setup(self) -> None:
        self.model.setup()

    def attempts(self, ctx: ProposalContext) -> Iterator[Proposal]:
        results = self.model.segment_text(ctx.record.image, [ctx.obj.phrase], self.cfg.threshold)[0]
        yield Proposal(self.source, results=results, note=f"threshold {self.cfg.threshold}")


def image_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W, 3) uint8 image, for a teacher request when the record has none."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
