"""The vLLM server client against `ScriptedOpenAIServer`, an in-process fake that plays scripted
failures (5xx, hangs, garbage, dropped connections), and the owned-server supervisor against a
fake `python` that serves /health. The real vLLM server is exercised in
tests/integration/test_vllm_real.py."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from PIL import Image

from synth.adapters.base import TeacherRequest
from synth.adapters.vllm_process import OwnedVllmServer, ServerStartError
from synth.adapters.vllm_server import (
    ClientSettings,
    TeacherServerGone,
    TeacherUnavailable,
    VllmServerTeacher,
    image_to_data_url,
    request_body,
)
from tests.fixtures.processes import group_alive, wait_group_gone


class ScriptedOpenAIServer:
    """A fake OpenAI-compatible server on 127.0.0.1 for client tests (never a real model).

    `script` is a list of actions taken by successive chat requests, then "ok" forever:
    "ok", "500", "503", "400", "hang" (never answers), "garbage" (200 with a non-JSON body),
    "drop" (closes the connection without answering), ("delay", seconds). A dict script maps a
    request's user text to its own list of actions.
    """

    def __init__(self, script=(), model="scripted-model"):
        self.script = {k: list(v) for k, v in script.items()} if isinstance(script, dict) else list(script)
        self.model = model
        self.bodies: list[dict] = []
        self.health = 200  # 503 plays a vLLM whose engine died
        self.in_flight = 0
        self.max_in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._server = None
        self.port = 0

    def __enter__(self):
        ready = threading.Event()

        def run():
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, "127.0.0.1", 0))
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self):
        """Close the listening socket and every open connection (a server that died)."""
        async def shutdown():
            self._server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def __exit__(self, *exc):
        self.stop()

    async def _handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                body = await reader.readexactly(int(headers.get("content-length", headers.get("Content-Length", 0))))
                if not await self._respond(method, path, body, writer):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def _respond(self, method, path, body, writer) -> bool:
        if path.endswith("/models"):
            return self._send(writer, 200, {"data": [{"id": self.model}]})
        if path == "/health":
            return self._send(writer, self.health, b"")
        payload = json.loads(body)
        self.bodies.append(payload)
        queue = self.script.get(self._user_text(payload), []) if isinstance(self.script, dict) else self.script
        action = queue.pop(0) if queue else "ok"
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if isinstance(action, tuple):
                await asyncio.sleep(action[1])
                action = "ok"
            if action == "hang":
                await asyncio.sleep(3600)
            if action == "drop":
                return False
            if action == "garbage":
                return self._send(writer, 200, b"<html>proxy error</html>")
            if action in ("500", "503", "400"):
                return self._send(writer, int(action), {"error": {"message": f"scripted {action}"}})
            return self._send(writer, 200, self._completion(payload))
        finally:
            self.in_flight -= 1

    @staticmethod
    def _user_text(payload):
        user = payload["messages"][-1]["content"]
        return user if isinstance(user, str) else user[-1]["text"]

    @classmethod
    def _completion(cls, payload):
        text = cls._user_text(payload)
        choices = [{"index": i, "finish_reason": "stop", "token_ids": list(range(i + 2)),
                    "message": {"role": "assistant", "content": f"sample {i} of {text}"}}
                   for i in range(payload.get("n", 1))]
        return {"choices": choices, "usage": {"prompt_tokens": 11, "completion_tokens": 5}}

    @staticmethod
    def _send(writer, status, data) -> bool:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        return True


def make_teacher(server, **overrides) -> VllmServerTeacher:
    settings = ClientSettings(base_url=server.base_url, retries=2, backoff_s=0.01, request_timeout_s=5,
                              connect_timeout_s=1, **overrides)
    teacher = VllmServerTeacher(settings)
    teacher.setup()
    return teacher


def requests(count, n=1, **kwargs):
    return [TeacherRequest(request_id=f"r{i}", system="sys", user=f"q{i}", n=n,
                           sampling={"temperature": 0.7, "max_tokens": 64}, **kwargs) for i in range(count)]


@pytest.fixture
def teacher_and_server(request):
    script = getattr(request, "param", ())
    with ScriptedOpenAIServer(script) as server:
        teacher = make_teacher(server)
        yield teacher, server
        teacher.close()


def test_n_samples_in_request_order_with_tokens(teacher_and_server):
    teacher, server = teacher_and_server
    out = teacher.generate(requests(5, n=3))
    assert [r.request_id for r in out] == [f"r{i}" for i in range(5)]
    assert [c.text for c in out[2].completions] == [f"sample {i} of q2" for i in range(3)]
    assert [c.completion_tokens for c in out[2].completions] == [2, 3, 4]
    assert out[0].prompt_tokens == 11 and out[0].error is None
    body = server.bodies[0]
    assert body["model"] == "scripted-model" and body["n"] == 3 and body["max_tokens"] == 64
    assert body["messages"][0] == {"role": "system", "content": "sys"}


@pytest.mark.parametrize("teacher_and_server", [["500", "503"]], indirect=True)
def test_5xx_is_retried_then_succeeds(teacher_and_server):
    teacher, server = teacher_and_server
    [response] = teacher.generate(requests(1))
    assert response.error is None and response.completions[0].text == "sample 0 of q0"
    assert len(server.bodies) == 3


@pytest.mark.parametrize("teacher_and_server", [{"q0": ["500", "500", "500"]}], indirect=True)
def test_5xx_after_all_retries_is_a_per_request_error(teacher_and_server):
    teacher, server = teacher_and_server
    out = teacher.generate(requests(2))
    assert out[0].error_kind == "error" and "HTTP 500" in out[0].error
    assert out[1].error is None  # the other request of the batch is unaffected


@pytest.mark.parametrize("teacher_and_server", [["400"]], indirect=True)
def test_4xx_is_not_retried(teacher_and_server):
    teacher, server = teacher_and_server
    [response] = teacher.generate(requests(1))
    assert response.error_kind == "error" and "HTTP 400" in response.error
    assert len(server.bodies) == 1


@pytest.mark.parametrize("teacher_and_server", [["garbage", "drop"]], indirect=True)
def test_garbage_and_dropped_connections_are_retried(teacher_and_server):
    teacher, server = teacher_and_server
    [response] = teacher.generate(requests(1))
    assert response.error is None and len(server.bodies) == 3


def test_timeout_becomes_error_kind_timeout():
    with ScriptedOpenAIServer({"q0": ["hang", "hang"]}) as server:
        teacher = VllmServerTeacher(ClientSettings(base_url=server.base_url, retries=1, backoff_s=0.01,
                                                   request_timeout_s=0.3))
        teacher.setup()
        started = time.monotonic()
        out = teacher.generate(requests(2))
        elapsed = time.monotonic() - started
        teacher.close()
    assert out[0].error_kind == "timeout" and "0.3 s" in out[0].error
    assert out[1].error is None
    assert elapsed < 3


def test_concurrency_bound_is_kept():
    with ScriptedOpenAIServer([("delay", 0.05)] * 12) as server:
        teacher = make_teacher(server, concurrency=3)
        teacher.generate(requests(12))
        teacher.close()
    assert server.max_in_flight == 3


def test_auto_concurrency_keeps_the_engine_batch_full():
    teacher = VllmServerTeacher(ClientSettings(base_url="http://x/v1", engine_batch=64))
    assert teacher.concurrency_for(1) == 80
    assert teacher.concurrency_for(8) == 10
    assert VllmServerTeacher(ClientSettings(concurrency=5)).concurrency_for(8) == 5


def test_server_gone_mid_run_raises_clearly():
    with ScriptedOpenAIServer([("delay", 0.3)] * 4) as server:
        teacher = make_teacher(server)
        threading.Timer(0.1, server.stop).start()
        with pytest.raises(TeacherServerGone, match="is gone.*not written"):
            teacher.generate(requests(4))
        teacher.close()


def test_dead_engine_behind_a_live_http_server_raises():
    with ScriptedOpenAIServer({"q0": ["500"] * 3}) as server:
        teacher = make_teacher(server)
        server.health = 503
        with pytest.raises(TeacherServerGone, match="unhealthy"):
            teacher.generate(requests(2))
        teacher.close()


def test_unreachable_server_fails_fast_with_how_to_fix():
    teacher = VllmServerTeacher(ClientSettings(base_url="http://127.0.0.1:9/v1", connect_timeout_s=1))
    with pytest.raises(TeacherUnavailable, match=r"--set teacher.base_url="):
        teacher.setup()


def test_wrong_model_name_is_named():
    with ScriptedOpenAIServer() as server:
        teacher = VllmServerTeacher(ClientSettings(base_url=server.base_url, model="other"))
        with pytest.raises(TeacherUnavailable, match="serves \\['scripted-model'\\], not 'other'"):
            teacher.setup()


def test_json_schema_becomes_response_format():
    schema = {"type": "object", "properties": {"count": {"type": "integer"}}}
    request = TeacherRequest(request_id="a", system="", user="u", json_schema=schema)
    body = json.loads(request_body(request, "m", ClientSettings()))
    assert body["response_format"] == {"type": "json_schema",
                                       "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    assert body["messages"] == [{"role": "user", "content": "u"}]


def _png(width, height) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _decode(url: str) -> Image.Image:
    assert url.startswith("data:image/")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_large_image_is_scaled_under_max_pixels_keeping_aspect():
    image = _decode(image_to_data_url(_png(20000, 500), max_pixels=100_000))
    assert image.width * image.height <= 100_000
    assert abs(image.width / image.height - 40) < 0.5


def test_small_image_is_sent_as_its_own_bytes():
    data = _png(64, 48)
    url = image_to_data_url(data, max_pixels=100_000)
    assert url == "data:image/png;base64," + base64.b64encode(data).decode()


def test_image_goes_first_in_user_content():
    request = TeacherRequest(request_id="a", system="s", user="How many?", image_bytes=_png(8, 8))
    content = json.loads(request_body(request, "m", ClientSettings()))["messages"][1]["content"]
    assert content[0]["type"] == "image_url" and content[0]["image_url"]["url"].startswith("data:image/png")
    assert content[1] == {"type": "text", "text": "How many?"}


# --- the owned server: supervisor, health wait, no orphans ------------------------------------

FAKE_VLLM = textwrap.dedent("""
    import http.server, subprocess, sys, time
    args = sys.argv[1:]
    port = int(args[args.index("--port") + 1])
    if "--fail" in args:
        print("fake engine: out of memory", flush=True)
        sys.exit(3)
    # a grandchild, like vLLM's engine process, that must not survive either
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    time.sleep(0.5)
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers()
        def log_message(self, *a):
            pass
    http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
""")


@pytest.fixture
def fake_python(tmp_path) -> str:
    """An executable standing in for the vLLM environment's python: it serves /health."""
    (tmp_path / "fake_vllm.py").write_text(FAKE_VLLM)
    script = tmp_path / "python"
    # drops "-m vllm.entrypoints.openai.api_server" and runs the fake with the rest
    script.write_text(f'#!/bin/sh\nshift 2\nexec "{sys.executable}" "{tmp_path / "fake_vllm.py"}" "$@"\n')
    script.chmod(0o755)
    return str(script)


def test_owned_server_starts_healthy_and_stops_its_whole_group(fake_python, tmp_path):
    server = OwnedVllmServer(fake_python, "tiny", log_path=tmp_path / "out" / "vllm_server.log")
    url = server.start(health_timeout_s=20)
    assert url == f"http://127.0.0.1:{server.port}/v1"
    pgid = server.process.pid
    assert group_alive(pgid)
    server.stop()
    assert not group_alive(pgid)
    assert (tmp_path / "out" / "vllm_server.log").exists()


def test_owned_server_that_exits_reports_its_log(fake_python, tmp_path):
    server = OwnedVllmServer(fake_python, "tiny", ["--fail"], log_path=tmp_path / "vllm.log")
    with pytest.raises(ServerStartError, match="(?s)exited with code 3.*out of memory"):
        server.start(health_timeout_s=20)


def test_missing_python_says_how_to_create_the_environment(tmp_path):
    server = OwnedVllmServer(str(tmp_path / "nope" / "python"), "tiny", log_path=tmp_path / "v.log")
    with pytest.raises(ServerStartError, match="scripts/setup_vllm.sh"):
        server.start()


@pytest.mark.parametrize("how", ["sigkill", "sigterm", "exception"])
def test_no_orphan_when_the_parent_dies(fake_python, tmp_path, how):
    parent = textwrap.dedent(f"""
        import os, signal, sys, time
        from synth.adapters.vllm_process import OwnedVllmServer
        server = OwnedVllmServer({fake_python!r}, "tiny", log_path={str(tmp_path / "v.log")!r})
        server.start(health_timeout_s=20)
        print(server.process.pid, flush=True)
        if {how!r} == "exception":
            raise RuntimeError("the run failed")
        time.sleep(600)
    """)
    child = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
    pgid = int(child.stdout.readline())
    assert group_alive(pgid)
    if how == "sigkill":
        child.send_signal(signal.SIGKILL)
    elif how == "sigterm":
        child.send_signal(signal.SIGTERM)
    child.wait(30)
    assert wait_group_gone(pgid, 20), f"server group {pgid} outlived its parent ({how})"
