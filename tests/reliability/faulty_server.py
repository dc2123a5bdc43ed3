"""`FaultyOpenAIServer`: a scripted OpenAI-compatible chat server that misbehaves on purpose.

A test double of a vLLM server (never a model): it serves `/v1/models`, `/health` and
`/v1/chat/completions` on 127.0.0.1 from a thread of the test process, so a `synth run`
subprocess talks to it over real HTTP. Each chat request is matched to a scripted item by the
item's question (the teach prompt starts with it), and takes that item's next action:

- `"ok"`: a realistic trace per sample that names the label, walks over the objects and ends
  with `<answer>N</answer>` (sample `wrong_sample`, if set, answers N+1);
- `"500"`: HTTP 500 with vLLM's error body; `"hang"`: never answers (until the server stops);
- `"garbage"`: HTTP 200 with a body that is not JSON; `"no_choices"`: JSON without choices;
- `"nonsense"`: HTTP 200, well-formed, whose texts hold no answer at all;
- `("slow", seconds)`: answers "ok" after a delay;
- `"die"`: the server dies: it stops listening, and every open connection is dropped unanswered.

An item's last action repeats once its script is used up. `requests` counts the chat requests
per question, so a test can check how often the client retried.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "faulty-vlm"
_PLACES = ("near the top left", "in the middle", "at the bottom right", "near the right edge",
           "close to the top", "at the lower left", "slightly left of centre", "near the bottom")


@dataclass
class ScriptedItem:
    """What the server knows of one item: how to answer it and what to do on each request."""

    question: str
    label: str
    count: int
    actions: list = field(default_factory=lambda: ["ok"])
    wrong_sample: int | None = None


def realistic_trace(label: str, count: int, sample: int) -> str:
    """A counting trace as a VLM writes one: each object named with a place, then the count."""
    steps = [f"{'a' if i == 0 else 'another'} {label} {_PLACES[(i + sample) % len(_PLACES)]}" for i in range(count)]
    walk = ", ".join(steps) if steps else f"no {label} at all"
    opening = ("Let me look at the image carefully.", "I will scan the image from left to right.")[sample % 2]
    return (f"{opening} I can see {walk}. Counting each {label} once, there "
            f"{'is' if count == 1 else 'are'} {count} in total.\n<answer>{count}</answer>")


class FaultyOpenAIServer:
    """The scripted server (module docstring). Use as a context manager; `base_url` ends in /v1."""

    def __init__(self, items: list[ScriptedItem], port: int = 0):
        self.items = {item.question: item for item in items}
        self.requests: Counter = Counter()
        self.dead = threading.Event()
        self._used: Counter = Counter()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="faulty-openai", daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> FaultyOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.die()

    def die(self) -> None:
        """Stop listening and drop every connection, as a crashed server does. Idempotent."""
        if self.dead.is_set():
            return
        self.dead.set()
        threading.Thread(target=self._stop, daemon=True).start()

    def _stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def next_action(self, question: str):
        """The action of this request for the item asked (its last action repeats)."""
        with self._lock:
            self.requests[question] += 1
            item = self.items.get(question)
            if item is None:
                return "unknown"
            index = min(self._used[question], len(item.actions) - 1)
            self._used[question] += 1
            return item.actions[index]

    def completion(self, question: str, n: int, nonsense: bool = False) -> dict:
        item = self.items[question]
        choices = []
        for i in range(n):
            if nonsense:
                text = "}{ ]] <answer> lorem ipsum </answer-ish> \u0000\ufffd" + "blah " * (i + 3)
            else:
                count = item.count + 1 if i == item.wrong_sample else item.count
                text = realistic_trace(item.label, item.count, i).replace(
                    f"<answer>{item.count}</answer>", f"<answer>{count}</answer>")
            choices.append({"index": i, "finish_reason": "stop", "token_ids": list(range(len(text) // 4)),
                            "message": {"role": "assistant", "content": text}})
        return {"id": "cmpl-1", "object": "chat.completion", "model": MODEL, "choices": choices,
                "usage": {"prompt_tokens": 300, "completion_tokens": sum(len(c["token_ids"]) for c in choices)}}

    def _handler_class(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as vLLM's server does

            def log_message(self, *args) -> None:  # quiet: the test reads its own counters
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self._dropped():
                    return
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
                elif self.path == "/health":
                    self._send(200, b"")
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self._dropped():
                    return
                payload = json.loads(body)
                question = _question(payload)
                action = server.next_action(question)
                if isinstance(action, tuple) and action[0] == "slow":
                    time.sleep(action[1])
                    action = "ok"
                if action == "die":
                    server.die()
                    self._drop()
                elif action == "hang":
                    server.dead.wait(120)
                    self._drop()
                elif action == "500":
                    self._send(500, {"object": "error", "message": "scripted engine error", "code": 500})
                elif action == "garbage":
                    self._send(200, b'{"choices": [{"message": {"content": "trunc')
                elif action == "no_choices":
                    self._send(200, {"object": "chat.completion", "choices": []})
                elif action in ("ok", "nonsense"):
                    self._send(200, server.completion(question, int(payload.get("n", 1)), action == "nonsense"))
                else:
                    self._send(400, {"object": "error", "message": f"unscripted question {question[:80]!r}"})

            def _dropped(self) -> bool:
                if server.dead.is_set():
                    self._drop()
                    return True
                return False

            def _drop(self) -> None:
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass

            def _send(self, status: int, data) -> None:
                raw = data if isinstance(data, bytes) else json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                try:
                    self.wfile.write(raw)
                except OSError:  # the client gave up (its timeout): what a real server sees too
                    self.close_connection = True

        return Handler


def _question(payload: dict) -> str:
    """The question of a chat request: the first line of the last user message's text."""
    content = payload["messages"][-1]["content"]
    text = content if isinstance(content, str) else next(p["text"] for p in content if p.get("type") == "text")
    return text.strip().split("\n", 1)[0].strip()
