"""The Ray runner reads its input as a stream: a read task walks the source while the stages work,
so the driver neither holds the input nor waits for the whole source before the first commit.

The stand-in source below is a plain iterable of batches that notes, in a file, how many batches
it has handed out.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc
from pathlib import Path

import pytest

from synth.core.records import Item, ItemRecord
from synth.errors import SynthError
from synth.runners.progress import RunProgress
from synth.runners.ray_runner import RayExecutor
from synth.runners.run import _executor, load_run_config
from synth.sources.base import SourceError
from tests.fixtures.runs import REPO

pytestmark = pytest.mark.ray

PAYLOAD = b"\0" * 200_000  # image bytes the size of a demo picture


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _source(progress: Path, batches: int, fail_after: int | None = None, pace_s: float = 0.0):
    """A picklable, re-iterable source of `batches` one-record batches (defined here, so Ray's
    pickler ships it by value)."""

    class CountingSource:
        def __iter__(self):
            for index in range(batches):
                if index == fail_after:
                    raise SourceError(f"items.parquet: row group {index} is corrupt")
                progress.write_text(str(index + 1))
                time.sleep(pace_s)
                yield [ItemRecord(item=Item(f"i{index}", "How many?", "1", image_bytes=PAYLOAD))]

    return CountingSource()


def test_the_first_batch_arrives_before_the_source_is_read_to_its_end(ray_session, tmp_path):
    progress = tmp_path / "handed_out"
    out = RayExecutor([], {}, commit_every=1).run(_source(progress, 1_000, pace_s=0.02))  # 20 s of reading
    with contextlib.closing(out):  # a failure must not leave the read task holding a CPU
        first = next(out)
        assert [r.item.item_id for r in first] == ["i0"] and first[0].item.image_bytes == PAYLOAD
        assert int(progress.read_text()) < 1_000, "the runner read the whole source before the first batch"


def test_the_driver_never_holds_the_input(ray_session, tmp_path):
    tracemalloc.start()
    try:
        arrived = sum(len(batch) for batch in RayExecutor([], {}, commit_every=8).run(_source(tmp_path / "n", 1_000)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert arrived == 1_000
    assert peak < 40e6, f"the driver peaked at {peak / 1e6:.0f} MB of Python objects for 200 MB of input"


def _handed_out_while_the_driver_stalls(tmp_path: Path, object_store_mb: int | None) -> int:
    """How many of 1,000 items the read has handed out 10 s after the driver took its first batch."""
    progress = tmp_path / f"handed_out_{object_store_mb}"
    out = RayExecutor([], {}, commit_every=1, object_store_mb=object_store_mb).run(_source(progress, 1_000))
    with contextlib.closing(out):
        next(out)
        time.sleep(10)  # the driver busy with its first commit; the read goes on as far as it may
        return int(progress.read_text())


def test_a_store_cap_holds_the_read_back_while_the_driver_is_slow(ray_session, tmp_path):
    # Ray Data's default share of the store holds all 200 MB (here the read hands out all 1,000);
    # 16 MB is 80 items, plus a few blocks in flight and in the driver's prefetch (here 84).
    uncapped = _handed_out_while_the_driver_stalls(tmp_path, None)
    capped = _handed_out_while_the_driver_stalls(tmp_path, 16)
    assert uncapped > 500, f"without a cap the read went only {uncapped} items ahead: the test shows nothing"
    assert capped < 150, f"the read ran {capped} items ahead past a 16 MB cap"


def test_the_pipeline_config_sets_the_cap():
    cfg = load_run_config(REPO / "pipelines" / "demo.yaml", ["runner.object_store_mb=16"])
    assert _executor(cfg, [], RunProgress([], quiet=True), quiet=True).object_store_mb == 16


def test_every_batch_arrives_once(ray_session, tmp_path):
    out = RayExecutor([], {}, commit_every=4).run(_source(tmp_path / "n", 30))
    ids = [r.item.item_id for batch in out for r in batch]
    assert sorted(ids) == sorted(f"i{i}" for i in range(30))


def test_a_source_failing_midway_stops_the_run_with_its_message_after_what_was_read(ray_session, tmp_path):
    out = RayExecutor([], {}, commit_every=1).run(_source(tmp_path / "n", 10, fail_after=3))
    seen = []
    with pytest.raises(SynthError, match="row group 3 is corrupt"):
        for batch in out:
            seen += [r.item.item_id for r in batch]
    assert seen == ["i0", "i1", "i2"]
