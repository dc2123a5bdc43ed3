"""The run's teacher server: checked (or started) once by the driver, before any stage runs.

A vLLM server that does not answer fails the run at once with a message that says how to start
one or point at one. A server synth owns is started here, lives exactly as long as the run, and
its address is handed to every stage (teach, extract, ground) through the config they receive.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

from synth.errors import SynthError
from synth.stages.base import RunContext
from synth.stages.teach import TeachConfig, build_teacher


@contextmanager
def serving_teacher(config: TeachConfig, context: RunContext) -> Iterator[TeachConfig]:
    """Yield the teacher config the stages use, with a live server behind it for the whole block."""
    if config.backend != "vllm_server":
        yield config
        return
    teacher = build_teacher(config, context.output_dir)
    try:
        teacher.setup()
    except (RuntimeError, OSError) as exc:  # TeacherUnavailable, ServerStartError, a dead process
        teacher.close()
        raise SynthError(str(exc)) from None
    try:
        served = config.model_copy(update={"base_url": teacher.base_url, "model": teacher.model_name})
        context.extra["teacher_factory"] = partial(build_teacher, served, context.output_dir)
        yield served
    finally:
        context.extra.pop("teacher_factory", None)
        teacher.close()
