"""A stage's user-facing error reaches the user as the stage said it, not as Ray's wrapper."""

from __future__ import annotations

from synth.errors import SynthError
from synth.runners.ray_runner import _synth_cause


class WrappedTaskError(Exception):
    """Shaped like Ray's task errors: the original exception in `.cause`."""

    def __init__(self, cause: BaseException):
        super().__init__(f"remote traceback...\n{cause}")
        self.cause = cause


def test_finds_the_synth_error_inside_nested_wrappers():
    gone = SynthError("vLLM server at http://x is gone; rerun the same command to resume")
    outer = RuntimeError("data pipeline failed")
    outer.__cause__ = WrappedTaskError(WrappedTaskError(gone))
    assert _synth_cause(outer) is gone


def test_other_failures_are_not_dressed_up():
    outer = WrappedTaskError(ValueError("a bug"))
    assert _synth_cause(outer) is None
