"""A Ray stage worker dies mid-run: Ray restarts the actor and retries its task; nothing repeats.

The victim is the stage actor holding MobileSAM (the `MapWorker(MapBatches(_StageActor))` process
with the most memory), SIGKILLed while it works. Ray Data gives actor pools `max_restarts=-1` and
`max_task_retries=-1` unless told otherwise, so the run must complete, every item be a row or a
reject exactly once, and the rows equal a clean local run's.
"""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tests.fixtures.processes import cmdline, process_tree, rss_bytes
from tests.fixtures.runs import assert_same_rows, check_output, demo_item_ids, manifest_of, synth_popen
from tests.reliability.conftest import DEMO_ITEMS, DEMO_SETS

pytestmark = [pytest.mark.models, pytest.mark.ray, pytest.mark.slow]

#: A worker above this holds the segmenter and is encoding (the other stage workers hold ~0.2 GB).
SEGMENTER_WORKER_RSS = 900 * 2**20


def _busy_segmenter_worker(run_pid: int) -> int | None:
    """The pid of this run's stage worker that holds MobileSAM and is past its setup, if any."""
    workers = [(rss_bytes(pid), pid) for pid in process_tree(run_pid)
               if cmdline(pid).startswith("ray::MapWorker") and "__init__" not in cmdline(pid)]
    big = [(rss, pid) for rss, pid in workers if rss > SEGMENTER_WORKER_RSS]
    return max(big)[1] if big else None


def _commits(out) -> int:
    try:
        return manifest_of(out)["commits"]
    except (OSError, ValueError, KeyError):
        return 0


def test_a_killed_stage_worker_is_retried_and_no_row_repeats(clean_demo, tmp_path):
    out = tmp_path / "ray"
    # One trace-batch per task: the killed task holds one item, the others are already done or queued.
    proc = synth_popen("pipelines/demo.yaml", out, [*DEMO_SETS, "ground.resources.batch_size=1"], runner="ray")
    victim, deadline = None, time.monotonic() + 300
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        victim = _busy_segmenter_worker(proc.pid)
    assert victim is not None, "no busy segmenter worker appeared: " + (proc.stderr.read().decode()[-3000:]
                                                                       if proc.poll() is not None else "")
    done_before = _commits(out)
    os.kill(victim, signal.SIGKILL)
    stderr: list[bytes] = []
    reader = threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True)
    reader.start()
    successors, deadline = set(), time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            successor = _busy_segmenter_worker(proc.pid)
            if successor not in (None, victim):
                successors.add(successor)
            time.sleep(0.2)
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:  # a hang: leave no Ray run behind
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=30)
    assert proc.returncode == 0, b"".join(stderr).decode()[-4000:]
    assert done_before < DEMO_ITEMS, "the worker was killed after the last commit"
    assert successors, "no new segmenter worker took over from the killed one"

    check_output(out, demo_item_ids(DEMO_ITEMS))
    # Same rows as the clean local run; scores within 1e-5 (see assert_same_rows).
    assert_same_rows(out, clean_demo, score_tolerance=1e-5)
