"""Teacher backend `vllm_server`: a VLM behind vLLM's OpenAI-compatible chat API.

The server is either external (`base_url`, e.g. a GPU node running `vllm serve`) or owned:
given `model` and no `base_url`, synth starts vLLM's server itself under a supervisor that
stops it when synth ends, however it ends (see `synth.adapters.vllm_process`).

Requests go out from one asyncio event loop on a background thread, through one pooled
`aiohttp.ClientSession`, at most `concurrency` at a time. (aiohttp, not httpx: against a server
that answers instantly httpx's AsyncClient managed ~200-480 requests/s at 2.7 ms CPU each on
this machine, aiohttp ~10,000 at 0.09 ms, see benchmarks/teacher.py.) With `concurrency=0` the bound is sized to
keep the engine's batch full: `ceil(1.25 * engine_batch / n)` requests of `n` samples each, so
about a quarter more sequences than the engine runs at once wait in its queue.

Failures, per request: 5xx, 429, broken connections, timeouts and unreadable bodies are retried
`retries` times with exponential backoff (`backoff_s * 2**attempt`, capped, with jitter); 4xx
are not retried. A request that still fails becomes `TeacherResponse.error` (`error_kind`
"timeout" or "error"). A request that still fails with a broken connection or a 5xx triggers a
health check (vLLM's /health, which turns 503 when its engine died; else the model list); if the
server is unreachable or unhealthy, `TeacherServerGone` is raised and the other requests of the
batch are cancelled, so a batch either completes or fails as a whole.

Images travel as base64 data URLs. An image of more than `max_pixels` pixels is scaled down,
aspect ratio kept, to the largest size with `width * height <= max_pixels` (Lanczos) and re-encoded
(PNG stays PNG, anything else becomes JPEG quality 95); a smaller image is sent as its own bytes.
The default, 1280 * 28 * 28 = 1,003,520 pixels, is the max_pixels Qwen2.5-VL recommends, so a
20,000-pixel-wide photo cannot blow the context.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import math
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth.adapters.base import Completion, TeacherRequest, TeacherResponse
from synth.errors import SynthError

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 1280 * 28 * 28
RETRY_STATUS = {429, 500, 502, 503, 504}


class TeacherUnavailable(SynthError, RuntimeError):
    """The teacher cannot be reached at setup: a configuration problem, said how to fix."""


class TeacherServerGone(SynthError, RuntimeError):
    """The server stopped answering during a run: connections refused after every retry."""


@dataclass
class ClientSettings:
    """How the client talks to the server; see the module docstring for the rules."""

    base_url: str | None = None
    model: str | None = None
    api_key: str = "EMPTY"
    concurrency: int = 0
    engine_batch: int = 256
    request_timeout_s: float = 600.0
    connect_timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    max_pixels: int = DEFAULT_MAX_PIXELS
    return_token_ids: bool = True


@dataclass
class OwnedServerSettings:
    """How to start a server synth owns: `python` must have vllm; `env` adds to the environment."""

    python: str = ".venv-vllm/bin/python"
    engine_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    health_timeout_s: float = 600.0
    log_path: str = "vllm_server.log"


def image_to_data_url(image_bytes: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Encode an image as a data URL, scaled down to at most `max_pixels` pixels (module rule)."""
    from PIL import Image

    with Image.open(io.BytesIO(image_bytes)) as image:
        width, height = image.size
        kind = (image.format or "PNG").upper()
        if width * height <= max_pixels and kind in ("PNG", "JPEG", "WEBP"):
            return f"data:image/{kind.lower()};base64,{base64.b64encode(image_bytes).decode()}"
        scale = min(1.0, math.sqrt(max_pixels / (width * height)))
        size = (max(1, math.floor(width * scale)), max(1, math.floor(height * scale)))
        out_kind = "PNG" if kind == "PNG" else "JPEG"
        resized = image.convert("RGBA" if out_kind == "PNG" and "A" in image.mode else "RGB")
        if size != (width, height):
            resized = resized.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    resized.save(buffer, format=out_kind, **({"quality": 95} if out_kind == "JPEG" else {}))
    return f"data:image/{out_kind.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"


def chat_messages(request: TeacherRequest, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[dict[str, Any]]:
    """OpenAI chat messages of a request: system, then the image (data URL) and the user text."""
    content: Any = request.user
    if request.image_bytes:
        url = image_to_data_url(request.image_bytes, max_pixels)
        content = [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": request.user}]
    messages = [{"role": "user", "content": content}]
    if request.system:
        messages.insert(0, {"role": "system", "content": request.system})
    return messages


def request_body(request: TeacherRequest, model: str, settings: ClientSettings) -> bytes:
    """The JSON body of one chat completion request."""
    messages = chat_messages(request, settings.max_pixels)
    body: dict[str, Any] = {"model": model, "messages": messages, "n": request.n, **request.sampling}
    if settings.return_token_ids:
        body["return_token_ids"] = True  # vLLM's extension: per-sample token counts
    if request.json_schema is not None:
        schema = request.json_schema
        if "schema" not in schema:
            schema = {"name": "answer", "schema": schema, "strict": True}
        body["response_format"] = {"type": "json_schema", "json_schema": schema}
    return json.dumps(body).encode()


def parse_chat_response(request_id: str, data: dict[str, Any]) -> TeacherResponse:
    """A TeacherResponse from an OpenAI chat completion body; raises ValueError if malformed.

    A separate reasoning field (vLLM's reasoning parsers) is put back as a `<think>` block so
    the teach stage treats it like inline thinking.
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"no choices in the response: {str(data)[:200]}")
    usage = data.get("usage") or {}
    completions = []
    for choice in sorted(choices, key=lambda c: c.get("index", 0)):
        message = choice.get("message") or {}
        text = message.get("content") or ""
        reasoning = message.get("reasoning") or message.get("reasoning_content")
        if reasoning:
            text = f"<think>{reasoning}</think>{text}"
        token_ids = choice.get("token_ids")
        if token_ids is not None:
            tokens = len(token_ids)
        else:
            tokens = int(usage.get("completion_tokens") or 0) if len(choices) == 1 else 0
        completions.append(Completion(text=text, finish_reason=choice.get("finish_reason") or "",
                                      completion_tokens=tokens))
    return TeacherResponse(request_id=request_id, completions=completions,
                           prompt_tokens=int(usage.get("prompt_tokens") or 0))


class VllmServerTeacher:
    """Teacher over an OpenAI-compatible vLLM server, external or owned (module docstring)."""

    name = "vllm_server"

    def __init__(self, client: ClientSettings, owned: OwnedServerSettings | None = None):
        self.settings = client
        self.owned_settings = owned
        self.server = None  # OwnedVllmServer when synth owns it
        self.model_name = client.model or ""
        self.base_url = (client.base_url or "").rstrip("/")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client = None

    # --- lifecycle ------------------------------------------------------------------------

    def setup(self) -> None:
        """Start the owned server if any, check the server answers, open the client."""
        if not self.base_url:
            self._start_owned_server()
        try:
            self.model_name = self._check_server()
        except TeacherUnavailable:
            self.close()  # an owned server that serves the wrong thing is stopped at once
            raise
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-client", daemon=True)
        self._thread.start()
        self._client = self._run(self._open_client())

    def _start_owned_server(self) -> None:
        from synth.adapters.vllm_process import OwnedVllmServer

        if not self.settings.model:
            raise TeacherUnavailable(
                "teacher: set teacher.base_url to a running vLLM server (e.g. --set "
                "teacher.base_url=http://127.0.0.1:8000/v1) or teacher.model to a model synth "
                "starts a server for"
            )
        owned = self.owned_settings or OwnedServerSettings()
        self.server = OwnedVllmServer(owned.python, self.settings.model, owned.engine_args,
                                      port=owned.port, env=owned.env, log_path=owned.log_path)
        self.base_url = self.server.start(owned.health_timeout_s)

    def _check_server(self) -> str:
        """The served model name; raises TeacherUnavailable saying how to start or point at a server."""
        import urllib.error
        import urllib.request

        url = f"{self.base_url}/models"
        try:
            request = urllib.request.Request(url, headers=self._headers())
            with urllib.request.urlopen(request, timeout=self.settings.connect_timeout_s) as response:
                served = [m["id"] for m in json.loads(response.read()).get("data", [])]
        except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            raise TeacherUnavailable(
                f"teacher: no vLLM server answers at {self.base_url} ({type(error).__name__}: {error}).\n"
                "Start one, e.g.  python -m vllm.entrypoints.openai.api_server --model MODEL --port 8000\n"
                "(or `vllm serve MODEL`), then point synth at it with "
                "--set teacher.base_url=http://HOST:8000/v1; or set teacher.model (and teacher.python) "
                "for synth to start and own one."
            ) from error
        if self.settings.model and self.settings.model not in served:
            raise TeacherUnavailable(
                f"teacher.model: the server at {self.base_url} serves {served}, not {self.settings.model!r}"
            )
        if not served:
            raise TeacherUnavailable(f"teacher: the server at {self.base_url} lists no model at {url}")
        return self.settings.model or served[0]

    def close(self) -> None:
        """Close the client, stop the loop and the owned server; safe to call twice."""
        if self._loop is not None and self._client is not None:
            self._run(self._client.close())
            self._client = None
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None
        if self.server is not None:
            self.server.stop()
            self.server = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}", "Content-Type": "application/json"}

    async def _open_client(self):
        try:
            import aiohttp
        except ImportError as error:
            raise ImportError("the vllm_server teacher needs aiohttp: pip install aiohttp") from error

        # No connector limit: the per-batch semaphore bounds the requests in flight.
        return aiohttp.ClientSession(
            headers=self._headers(),
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout_s),
        )

    def _run(self, coroutine):
        """Run a coroutine on the client's loop and wait; Ctrl-C cancels it."""
        if self._loop is None:
            raise RuntimeError("VllmServerTeacher: call setup() before generate()")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    # --- generation -----------------------------------------------------------------------

    def concurrency_for(self, n: int) -> int:
        """Requests in flight for `n` samples each (module docstring: fixed or sized to the batch)."""
        if self.settings.concurrency > 0:
            return self.settings.concurrency
        return max(1, math.ceil(1.25 * self.settings.engine_batch / max(1, n)))

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        """One response per request, in order; raises TeacherServerGone if the server is gone."""
        if not requests:
            return []
        bodies = [request_body(r, self.model_name, self.settings) for r in requests]
        limit = self.concurrency_for(max(r.n for r in requests))
        return self._run(self._generate_all(requests, bodies, limit))

    async def _generate_all(self, requests, bodies, limit: int) -> list[TeacherResponse]:
        semaphore = asyncio.Semaphore(limit)
        try:
            async with asyncio.TaskGroup() as group:  # one fatal error cancels the rest
                tasks = [group.create_task(self._one(r.request_id, b, semaphore))
                         for r, b in zip(requests, bodies)]
        except* TeacherServerGone as gone:
            raise gone.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _one(self, request_id: str, body: bytes, semaphore: asyncio.Semaphore) -> TeacherResponse:
        """Send one request with retries; return its response or its error."""
        import aiohttp

        url = f"{self.base_url}/chat/completions"
        last_kind, last_error = "error", ""
        for attempt in range(self.settings.retries + 1):
            if attempt:
                delay = min(self.settings.max_backoff_s, self.settings.backoff_s * 2 ** (attempt - 1))
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
            try:
                async with semaphore, asyncio.timeout(self.settings.request_timeout_s):
                    async with self._client.post(url, data=body) as response:
                        status, payload = response.status, await response.read()
            except TimeoutError:
                last_kind, last_error = "timeout", f"no answer within {self.settings.request_timeout_s} s"
                continue
            except aiohttp.ClientConnectorError as error:  # refused, unreachable: nothing was sent
                last_kind, last_error = "connect", f"{type(error).__name__}: {error}"
                continue
            except aiohttp.ClientError as error:  # reset, closed mid-response, protocol error
                last_kind, last_error = "error", f"{type(error).__name__}: {error}"
                continue
            text = payload[:500].decode(errors="replace")
            if status in RETRY_STATUS:
                last_kind, last_error = "error", f"HTTP {status}: {text[:300]}"
                continue
            if status != 200:  # a 4xx will fail the same way again
                return _error(request_id, "error", f"HTTP {status}: {text}")
            try:
                return parse_chat_response(request_id, json.loads(payload))
            except (ValueError, TypeError, AttributeError) as error:
                last_kind, last_error = "error", f"unreadable response: {error}"
        if last_kind != "timeout":
            await self._raise_if_gone(last_error)
            last_kind = "error"
        return _error(request_id, last_kind, f"after {self.settings.retries} retries: {last_error}")

    async def _healthy(self) -> bool:
        """vLLM's /health (503 once its engine died); servers without it: the model list answers."""
        root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                async with self._client.get(f"{root}/health") as response:
                    if response.status not in (404, 405):
                        return response.status == 200
                async with self._client.get(f"{self.base_url}/models") as response:
                    return response.status == 200
        except Exception:  # noqa: BLE001 - any failure here means the same: the server is gone
            return False

    async def _raise_if_gone(self, last_error: str) -> None:
        """Raise TeacherServerGone unless the server is still healthy."""
        if await self._healthy():
            return
        detail = ""
        if self.server is not None:
            from synth.adapters.vllm_process import log_tail

            state = "running" if self.server.alive() else "exited"
            detail = f"\nowned server {state}; log {self.server.log_path}:\n{log_tail(Path(self.server.log_path))}"
        raise TeacherServerGone(
            f"vLLM server at {self.base_url} is gone (unreachable or unhealthy) after "
            f"{self.settings.retries} retries ({last_error}); the batch was not written, what was "
            f"committed is kept: rerun the same command to resume.{detail}"
        )


def _error(request_id: str, kind: str, message: str) -> TeacherResponse:
    logger.warning("teacher request %s failed (%s): %s", request_id, kind, message)
    return TeacherResponse(request_id=request_id, error=message, error_kind=kind)
