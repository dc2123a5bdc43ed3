"""`ray job submit --working-dir . -- synth run ...` against a Ray head started on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
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
    if not (BIN / "ray").exists():
        pytest.skip("the ray command line is not installed (pip install 'ray[default]')")
    # The head runs job entrypoints with its own PATH: it must find this environment's `synth`.
    path = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    dashboard = _free_port()
    start = [
        str(BIN / "ray"), "start", "--head", "--num-cpus=2", "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--port={_free_port()}",
        # Ray's socket paths must stay under 108 bytes: a short temp dir, not pytest's.
        "--disable-usage-stats", f"--temp-dir={tempfile.mkdtemp(prefix='ray-', dir='/tmp')}",
    ]
    done = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    try:
        yield f"http://127.0.0.1:{dashboard}", env
    finally:
        subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True, timeout=120)


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
