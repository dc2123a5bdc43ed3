"""The extract stage: the objects each kept trace relies on, as phrases with all their spans.

Backends (see `synth.grounding.extraction`):
- `parser`: deterministic; the item's label, its "how many X" and the sides of a spatial question,
  looked up in the trace. No model; what the offline demo uses.
- `teacher`: the teacher answers prompts/extract_objects.txt in JSON constrained by a JSON schema
  (vLLM structured outputs, sent through `TeacherRequest.json_schema`); one request per trace,
  all traces of a batch in one `generate` call.
A trace with no usable object becomes `Reject("extract", "no_objects" | "extract_unparseable")`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from pydantic import Field

from synth.adapters.base import Teacher, TeacherRequest
from synth.config.base import Resources, Strict
from synth.core.records import Candidate, ItemRecord, Reject
from synth.grounding.extraction import extract_schema, objects_from_json, parse_objects
from synth.grounding.prompts import fill_template, run_teacher, template_problems
from synth.stages.base import RunContext

log = logging.getLogger(__name__)

PLACEHOLDERS = {"question", "answer", "trace"}


class ExtractConfig(Strict):
    """How the objects of a trace are found."""

    # The parser needs no model and is exact for traces that name the item's label.
    backend: Literal["parser", "teacher"] = Field(
        "parser", description="parser: label/question phrases looked up in the trace; teacher: JSON from the teacher"
    )
    prompt_file: str = Field(
        "extract_objects.txt", description="teacher backend: template in the prompts folder ({question}, {answer}, {trace})"
    )
    # Grounding cost grows with objects; traces about counting or one relation need one or two.
    max_objects: int = Field(8, ge=1, description="objects kept per trace, in order of first mention")
    # Extraction is a reading task: greedy decoding gives the same objects on a rerun.
    temperature: float = Field(0.0, ge=0, description="teacher backend: sampling temperature")
    max_tokens: int = Field(512, ge=16, description="teacher backend: token budget of the JSON answer")
    resources: Resources = Field(default_factory=Resources, description="how the stage runs on Ray")


class ExtractStage:
    """Fills `candidate.objects` of every live trace, or rejects the trace."""

    name = "extract"

    def __init__(self, config: ExtractConfig, context: RunContext, *, teacher: Teacher | None = None) -> None:
        self.config, self.context, self.teacher = config, context, teacher
        self._template: str | None = None

    def setup(self) -> None:
        """Read the template and set the teacher up (teacher backend only)."""
        if self.config.backend != "teacher" or self._template is not None:
            return
        self._template = (self.context.prompts_dir / self.config.prompt_file).read_text()
        if self.teacher is None:
            self.teacher = run_teacher(self.context, "extract.backend=teacher")
        self.teacher.setup()

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]:
        """Extract objects for every live candidate; one output per input, same order."""
        work = [(r, c) for r in batch for c in r.live_candidates()]
        if self.config.backend == "parser":
            for record, candidate in work:
                objects, reason = parse_objects(candidate.text, record.item, self.config.max_objects)
                self._settle(candidate, objects, reason, "none of the item's phrases occurs in the trace")
        elif work:
            self._extract_with_teacher(work)
        return batch

    def _extract_with_teacher(self, work: list[tuple[ItemRecord, Candidate]]) -> None:
        self.setup()
        requests = [self._request(r, c) for r, c in work]
        responses = self.teacher.generate(requests)  # type: ignore[union-attr]  # set in setup()
        for (record, candidate), response in zip(work, responses):
            if response.error or not response.completions:
                candidate.reject = Reject("extract", "extract_unparseable", f"teacher error: {response.error}")
                continue
            text = response.completions[0].text
            objects, reason, detail = objects_from_json(text, candidate.text, record.item, self.config.max_objects)
            self._settle(candidate, objects, reason, detail)

    def _request(self, record: ItemRecord, candidate: Candidate) -> TeacherRequest:
        item = record.item
        user = fill_template(self._template or "", question=item.question, answer=item.answer, trace=candidate.text)
        return TeacherRequest(
            request_id=f"{item.item_id}/{candidate.sample_index}/extract",
            system="",
            user=user,
            sampling={"temperature": self.config.temperature, "max_tokens": self.config.max_tokens},
            json_schema=extract_schema(self.config.max_objects),
        )

    @staticmethod
    def _settle(candidate: Candidate, objects: list, reason: str | None, detail: str) -> None:
        if reason is None:
            candidate.objects = objects
        else:
            candidate.reject = Reject("extract", reason, detail)


def validate_prompts(config: ExtractConfig, prompts_dir: Path) -> list[str]:
    """Problems with the extraction template when the teacher backend is configured."""
    if config.backend != "teacher":
        return []
    return template_problems(prompts_dir / config.prompt_file, required={"trace"}, allowed=PLACEHOLDERS)
