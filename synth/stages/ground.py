"""The ground stage: each object of each kept trace becomes instance masks (the grounding agent).

Per trace, per object: proposals from the configured sources, SAM-family segmentation (the image
is encoded once and every prompt decoded against it), the checks of `synth.grounding.verify`,
and retries within `max_attempts` (see `synth.grounding.agent`). Instances leave this stage with
their mask (COCO RLE), tight box and score; the annotate stage adds interior points and renders.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from synth.adapters.base import Segmenter, Teacher
from synth.config.base import Resources, Strict
from synth.core.records import ItemRecord, Reject
from synth.grounding.agent import GroundingAgent
from synth.grounding.proposals import (
    AnnotationProposer,
    DetectorConfig,
    DetectorProposer,
    PointingConfig,
    Proposer,
    SourceName,
    TeacherPointProposer,
    TextSamConfig,
    TextSamProposer,
)
from synth.grounding.prompts import run_teacher, template_problems
from synth.grounding.segmenters import SegmenterConfig, build_segmenter, describe_segmenter
from synth.grounding.verify import VerifyConfig
from synth.stages.base import RunContext

log = logging.getLogger(__name__)


class GroundConfig(Strict):
    """How traces are grounded: segmenter, proposal sources in order, checks, retry bound."""

    segmenter: SegmenterConfig = Field(default_factory=SegmenterConfig, description="the SAM-family model")
    # Annotations are free and exact where the dataset has them; models come after, by config.
    sources: list[SourceName] = Field(
        default_factory=lambda: ["annotation"],
        description="proposal sources in order of preference: annotation, teacher_points, detector, text_sam",
    )
    # 3 attempts: e.g. boxes, points, points with negatives; or one per source of a three-source chain.
    max_attempts: int = Field(3, ge=1, description="attempts per object, the first included")
    verify: VerifyConfig = Field(default_factory=VerifyConfig, description="area, duplicate, count, relation checks")
    pointing: PointingConfig = Field(default_factory=PointingConfig, description="teacher_points source")
    detector: DetectorConfig = Field(default_factory=DetectorConfig, description="detector source")
    text_sam: TextSamConfig = Field(default_factory=TextSamConfig, description="text_sam source")
    resources: Resources = Field(default_factory=Resources, description="how the stage runs on Ray")

    @field_validator("sources")
    @classmethod
    def _sources_unique(cls, sources: list[str]) -> list[str]:
        if not sources:
            raise ValueError("ground.sources: expected at least one of annotation, teacher_points, detector, text_sam")
        if len(set(sources)) != len(sources):
            raise ValueError(f"ground.sources: each source at most once, found {sources}")
        return sources

    @model_validator(mode="after")
    def _models_configured(self) -> GroundConfig:
        if "detector" in self.sources and not self.detector.model_path:
            raise ValueError("ground.detector.model_path: the detector source needs a model folder or hub id")
        if "text_sam" in self.sources and not self.text_sam.model_path:
            raise ValueError("ground.text_sam.model_path: the text_sam source needs a SAM 3 folder or hub id")
        return self


class GroundStage:
    """Grounds every live trace; a trace that cannot be grounded becomes a ground reject.

    Models can be passed in (tests, or a runner sharing one teacher); otherwise `setup()` builds
    them from the config.
    """

    name = "ground"

    def __init__(
        self,
        config: GroundConfig,
        context: RunContext,
        *,
        segmenter: Segmenter | None = None,
        teacher: Teacher | None = None,
        detector: Any = None,
        text_sam: Any = None,
    ) -> None:
        self.config, self.context = config, context
        self._segmenter_given = segmenter is not None
        self.segmenter = segmenter or build_segmenter(config.segmenter)
        self.teacher, self.detector, self.text_sam = teacher, detector, text_sam
        self._agent: GroundingAgent | None = None

    def describe(self) -> str:
        """The segmenter backend and weights, for each row's provenance."""
        if self._segmenter_given:
            return getattr(self.segmenter, "name", type(self.segmenter).__name__)
        return describe_segmenter(self.config.segmenter)

    def setup(self) -> None:
        """Load the segmenter and the proposal models once per worker."""
        self._ready_agent()

    def _ready_agent(self) -> GroundingAgent:
        if self._agent is None:
            self.segmenter.setup()
            proposers = [self._proposer(source) for source in self.config.sources]
            for proposer in proposers:
                proposer.setup()
            self._agent = GroundingAgent(self.segmenter, proposers, self.config.verify, self.config.max_attempts)
        return self._agent

    def _proposer(self, source: str) -> Proposer:
        cfg = self.config
        if source == "annotation":
            return AnnotationProposer()
        if source == "teacher_points":
            template = (self.context.prompts_dir / cfg.pointing.prompt_file).read_text()
            teacher = self.teacher or run_teacher(self.context, "ground.sources: teacher_points")
            return TeacherPointProposer(teacher, template, cfg.pointing)
        if source == "detector":
            from synth.adapters.detector import build_detector

            detector = self.detector or build_detector(cfg.detector.backend, str(cfg.detector.model_path), cfg.detector.device)
            return DetectorProposer(detector, cfg.detector)
        from synth.adapters.hf_sam import HFSam3TextSegmenter

        model = self.text_sam or HFSam3TextSegmenter(str(cfg.text_sam.model_path), cfg.text_sam.device)
        return TextSamProposer(model, cfg.text_sam)

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]:
        """Ground each record's live candidates in place; one output per input, same order."""
        agent = self._ready_agent()
        for record in batch:
            if not record.live_candidates():
                continue
            if record.image is None:
                for candidate in record.live_candidates():
                    candidate.reject = Reject("ground", "segmenter_error", "the record carries no decoded image")
                continue
            agent.ground_record(record)
        return batch


def validate_prompts(config: GroundConfig, prompts_dir: Path) -> list[str]:
    """Problems with the pointing template when the teacher_points source is configured."""
    if "teacher_points" not in config.sources:
        return []
    path = prompts_dir / config.pointing.prompt_file
    return template_problems(path, required={"phrase"}, allowed={"phrase", "question"})
