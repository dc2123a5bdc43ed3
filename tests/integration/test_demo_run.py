"""The offline demo end to end with the real components: run, validate, Ray == local, resume after SIGKILL."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures.processes import wait_session_gone
from tests.fixtures.runs import SYNTH, assert_same_rows, output_rows, reject_keys, synth_popen, synth_run

DEMO = "pipelines/demo.yaml"
LIMIT = 6
# torch's float32 sums depend on its thread count (a Ray actor's resources.threads or num_cpus,
# every core locally).
SCORE_TOLERANCE = 1e-5

pytestmark = [pytest.mark.models, pytest.mark.slow]


def _run(out: Path, *sets: str, runner: str = "local") -> subprocess.CompletedProcess:
    return synth_run(DEMO, out, [f"source.limit={LIMIT}", *sets], runner, timeout=900)


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "out"
    _run(out)
    return out


def test_demo_output_validates_and_reconciles(clean_run):
    check = subprocess.run([SYNTH, "inspect", str(clean_run), "--validate"], capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    summary = json.loads((clean_run / "summary.json").read_text())
    assert summary["items"] == LIMIT
    assert summary["rows"] > 0, "the demo kept no trace at all"
    for line in summary["stages"]:
        assert line["in"] == line["out"] + sum(line["rejected"].values()), line
    rows = output_rows(clean_run)
    item_ids = {row["item_id"] for row in rows.values()} | {key[0] for key in reject_keys(clean_run)}
    assert len(item_ids) == LIMIT


def test_a_demo_run_is_scored_against_the_demo_truth_without_a_truth_file(clean_run, tmp_path):
    done = subprocess.run([SYNTH, "eval", str(clean_run), "--json", str(tmp_path / "eval.json")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["rows_matched"] == report["rows"] > 0 and report["objects_matched"] == report["objects"]
    # Annotation proposals and real MobileSAM on clear drawn shapes: nearly every instance matches.
    assert report["recall"] >= 0.9 and report["precision"] >= 0.9 and report["point_in_mask_rate"] >= 0.95


def test_ray_runner_agrees_with_local_row_for_row(clean_run, tmp_path):
    out = tmp_path / "ray"
    _run(out, runner="ray")
    assert_same_rows(out, clean_run, SCORE_TOLERANCE)


def test_ray_pools_too_big_for_the_machine_fail_at_once_and_leave_nothing_running(tmp_path):
    started = time.monotonic()
    run = synth_popen(DEMO, tmp_path / "big", [f"source.limit={LIMIT}", "ground.resources.actors=64"], "ray")
    _, stderr = run.communicate(timeout=300)
    assert run.returncode == 2 and "Traceback" not in stderr.decode(), stderr.decode()[-3000:]
    assert re.search(r"need \d+(\.\d+)? CPU at once \(.*ground 64×1.*lower <stage>\.resources\.actors", stderr.decode(), re.S)
    assert time.monotonic() - started < 120
    assert wait_session_gone(run.pid), "Ray processes outlived the failed run"


def test_rerun_of_finished_output_adds_nothing(clean_run):
    before = output_rows(clean_run)
    _run(clean_run)
    assert output_rows(clean_run) == before


def test_resume_after_sigkill_equals_clean_run(clean_run, tmp_path):
    out = tmp_path / "killed"
    proc = synth_popen(DEMO, out, [f"source.limit={LIMIT}", "output.commit_every=1"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        manifest = out / "manifest.json"
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 2:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed: " + proc.stderr.read().decode()[-2000:]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(output_rows(out)) < len(output_rows(clean_run)), "killed too late to test a resume"
    _run(out, "output.commit_every=1")
    assert_same_rows(out, clean_run)
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
