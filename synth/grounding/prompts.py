"""Prompt templates of the extract and pointing requests, and the run's teacher for them.

Templates are plain text files in the prompts folder with `{name}` placeholders. Only the names a
request fills are replaced, so a template may show literal JSON braces without escaping them.
"""

from __future__ import annotations

import re
from pathlib import Path

from synth.adapters.base import Teacher
from synth.stages.base import RunContext

_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def template_problems(path: Path, required: set[str], allowed: set[str]) -> list[str]:
    """What is wrong with a template file: missing, lacking a required or using an unknown placeholder."""
    if not path.is_file():
        return [f"{path}: prompt template not found"]
    used = set(_PLACEHOLDER.findall(path.read_text()))
    problems = [f"{path}: missing placeholder {{{name}}}" for name in sorted(required - used)]
    problems += [
        f"{path}: unknown placeholder {{{name}}}; choices: {', '.join(sorted(allowed))}" for name in sorted(used - allowed)
    ]
    return problems


def fill_template(template: str, **values: str) -> str:
    """Replace `{name}` for each given name; other braces stay as they are."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def run_teacher(context: RunContext, purpose: str) -> Teacher:
    """The run's teacher, built by the factory the runner puts in `RunContext.extra["teacher_factory"]`.

    Raises:
        ValueError: no factory is there, so the configured `purpose` cannot be served.
    """
    factory = context.extra.get("teacher_factory")
    if factory is None:
        raise ValueError(
            f"{purpose} needs the teacher, but none is available: pass teacher= to the stage or put a "
            "'teacher_factory' callable in RunContext.extra"
        )
    return factory()
