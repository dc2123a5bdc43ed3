"""SIGKILL at seeded random points: of a whole `synth run`, and of a process inside its commits.

A killed run, resumed as often as it is killed, must end equal to a clean run: the same row ids
and rows, the same rejects, no duplicate, no gap, a manifest that lists exactly the files there
are, and no temporary file. tests/integration/test_demo_run.py kills a demo run once, after its
second commit; here the kill points are seeded and random (during startup, between commits,
inside a commit), the same output is killed again and again, and a process that does nothing
but commit is killed inside the shard and manifest write windows, by chance and on purpose.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from synth.core.shards import MANIFEST_NAME, ShardWriter, file_sha256, load_manifest, load_output
from tests.inspect.disc_rows import CONFIG_SHA
from tests.reliability.conftest import DEMO_ITEMS, DEMO_SETS
from tests.fixtures.runs import (
    REPO,
    check_output,
    demo_item_ids,
    output_rows,
    reject_keys,
    synth_popen,
    synth_run,
)


def _committed(out: Path) -> int:
    try:
        return json.loads((out / MANIFEST_NAME).read_text())["commits"]
    except (OSError, ValueError, KeyError):
        return -1  # not written yet


def _assert_consistent_at_rest(out: Path) -> None:
    """What a reader may rely on at any moment, even right after a kill: the manifest parses and
    every shard it lists is whole; rows are unique. (Unlisted leftovers are allowed until a resume.)"""
    manifest = load_manifest(out)
    for shard in manifest["shards"]:
        assert file_sha256(out / shard["path"]) == shard["sha256"], f"{shard['path']} changed or half written"
    rows = load_output(out).rows.column("id").to_pylist()
    assert len(rows) == len(set(rows)), "a row was committed twice"


def _kill_after(proc: subprocess.Popen, out: Path, commits: int, delay: float, timeout: float = 300) -> bool:
    """SIGKILL the run's process group `delay` s after `commits` more commits; False if it ended first.

    With `commits=0` and a short delay the kill may land during startup, before the run even
    records its attempt: a point worth testing too.
    """
    deadline = time.monotonic() + timeout
    start = None
    while time.monotonic() < deadline and proc.poll() is None:
        if start is None and _committed(out) >= 0:
            start = _committed(out)  # the run recorded its attempt: it is under way
        if start is not None and _committed(out) >= start + commits:
            break
        time.sleep(0.05)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.models
@pytest.mark.slow
def test_a_run_killed_at_three_seeded_points_resumes_to_the_clean_result(clean_demo, tmp_path):
    rng = random.Random(20261122)
    out = tmp_path / "killed"
    killed = 0
    for _ in range(3):
        commits, delay = rng.randrange(0, 2), rng.uniform(0.0, 2.5)
        proc = synth_popen("pipelines/demo.yaml", out, DEMO_SETS)
        killed += _kill_after(proc, out, commits, delay)
        _assert_consistent_at_rest(out)
    assert killed >= 2, "the runs ended before they could be killed"
    assert len(output_rows(out)) < len(output_rows(clean_demo)), "killed too late to test a resume"

    synth_run("pipelines/demo.yaml", out, DEMO_SETS)
    check_output(out, demo_item_ids(DEMO_ITEMS))
    assert output_rows(out) == output_rows(clean_demo)
    assert reject_keys(out) == reject_keys(clean_demo)


# --- a process that only commits -----------------------------------------------------------------

LOOP_ITEMS = 150


def _commit_loop(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.commit_loop", str(out), str(LOOP_ITEMS), *extra],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(proc: subprocess.Popen, word: str) -> None:
    line = proc.stdout.readline().strip()
    assert line == word, f"commit loop said {line!r}, expected {word}: {proc.stderr.read()[-2000:]}"


def _assert_all_committed_once(out: Path) -> None:
    expected = {f"item-{i:03d}" for i in range(LOOP_ITEMS)}
    output = load_output(out)
    assert sorted(output.rows.column("item_id").to_pylist()) == sorted(expected)
    assert sorted(output.rejects.column("item_id").to_pylist()) == sorted(expected)
    listed = {s["path"] for s in output.manifest["shards"]}
    assert {p.name for p in out.iterdir()} == listed | {MANIFEST_NAME}, "temporary or unlisted files left"


def test_commits_killed_at_random_moments_never_lose_or_repeat_an_item(tmp_path):
    rng = random.Random(8)
    out = tmp_path / "loop"
    for _ in range(12):
        proc = _commit_loop(out)
        _wait_for(proc, "READY")
        time.sleep(rng.uniform(0.0, 0.6))
        proc.kill()
        proc.wait()
        _assert_consistent_at_rest(out)
    proc = _commit_loop(out)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-2000:]
    _assert_all_committed_once(out)


@pytest.mark.parametrize("window", ["shard_tmp", "manifest_tmp"])
def test_a_kill_inside_a_write_window_leaves_the_last_commit_and_resumes(tmp_path, window):
    out = tmp_path / "window"
    ShardWriter.open(out, CONFIG_SHA)  # an empty run, so the first commit is the one killed
    proc = _commit_loop(out, "--pause", window)
    _wait_for(proc, "READY")
    _wait_for(proc, "PAUSED")
    proc.kill()
    proc.wait()
    leftovers = sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp"))
    assert leftovers, "the kill did not land inside the write window"
    assert load_manifest(out)["commits"] == 0 and load_output(out).rows.num_rows == 0

    proc = _commit_loop(out)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()[-2000:]
    _assert_all_committed_once(out)
