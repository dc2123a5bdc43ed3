"""`ray job submit --working-dir . -- synth run ...` against a Ray head started on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import signal
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = [pytest.mark.ray, pytest.mark.models, pytest.mark.slow]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head():
    """A head on 127.0.0.1 in its own process group, so teardown stops this cluster and no other
    (`ray stop` would stop every Ray on the machine)."""
    if not (BIN / "ray").exists():
        pytest.skip("the ray command line is not installed (pip install 'ray[default]')")
    # The head runs job entrypoints with its own PATH: it must find this environment's `synth`.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    dashboard = _free_port()
    start = [
        str(BIN / "ray"), "start", "--head", "--block", "--num-cpus=2", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--port={_free_port()}",
        # Free ports for the agents too: another Ray on this machine holds the default ones, and a
        # job agent that cannot bind leaves the head with no agent to run the job.
        f"--dashboard-agent-listen-port={_free_port()}", f"--dashboard-agent-grpc-port={_free_port()}",
        f"--runtime-env-agent-port={_free_port()}", f"--metrics-export-port={_free_port()}",
        # Ray's socket paths must stay under 108 bytes: a short temp dir, not pytest's.
        "--disable-usage-stats", f"--temp-dir={tempfile.mkdtemp(prefix='ray-', dir='/tmp')}",
    ]
    head = subprocess.Popen(start, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        _wait_for_jobs_api(address, head)
        yield address, env
    finally:
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            if head.poll() is not None:
                break
            os.killpg(head.pid, sig)
            try:
                head.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                pass


def _wait_for_jobs_api(address: str, head: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail("ray start --head exited: " + head.stderr.read().decode()[-3000:])
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the Ray jobs API at {address} did not come up in {timeout} s")


def test_demo_runs_as_a_submitted_job(ray_head, tmp_path):
    address, env = ray_head
    out = tmp_path / "out"
    submit = [
        str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", str(REPO), "--",
        "synth", "run", "pipelines/demo.yaml", "--quiet", "--output", str(out), "--set", "source.limit=3",
    ]
    done = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout.lower()
    check = subprocess.run(
        [shutil.which("synth", path=str(BIN)) or "synth", "inspect", str(out), "--validate", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert '"rows"' in check.stdout
