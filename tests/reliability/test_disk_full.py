"""The disk fills during a run: a clear error, the last finished commit intact, nothing half written.

Two levels: a real `synth run` whose output folder is a small tmpfs (needs root to mount; skipped
otherwise), and the shard writer with writes that fail with ENOSPC at a chosen point (runs
anywhere, and also covers the manifest write failing).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synth.core.rows import record_to_rows
from synth.core.shards import MANIFEST_NAME, OutputWriteError, ShardWriter, file_sha256, load_output
from tests.inspect.disc_rows import CONFIG_SHA, CONTEXT, SEGMENTER, disc_record
from tests.fixtures.runs import check_output, demo_item_ids, manifest_of, synth_run

DEMO_SETS = ["source.demo.items=3", "output.commit_every=1"]


def _commit(writer: ShardWriter, item_id: str) -> None:
    record = disc_record(item_id)
    rows, rejects = record_to_rows(record, CONTEXT, SEGMENTER)
    writer.commit(rows, rejects, [item_id])


def _assert_intact(folder: Path, item_ids: set[str]) -> None:
    """The manifest lists exactly the files there are, each whole, holding exactly `item_ids`."""
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    listed = {s["path"] for s in manifest["shards"]}
    on_disk = {p.name for p in folder.iterdir() if p.name != MANIFEST_NAME}
    assert on_disk == listed, f"unlisted or temporary files left: {sorted(on_disk - listed)}"
    for shard in manifest["shards"]:
        assert file_sha256(folder / shard["path"]) == shard["sha256"]
        pq.read_table(folder / shard["path"])  # whole Parquet, footer and all
    assert set(load_output(folder).rows.column("item_id").to_pylist()) == item_ids


@pytest.mark.parametrize("fail_at", ["shard", "manifest"])
def test_enospc_while_committing_keeps_the_last_commit_and_leaves_no_file(tmp_path, monkeypatch, fail_at):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    _commit(writer, "a")
    _commit(writer, "b")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if fail_at == "shard":
        # The shard's temporary file exists and is half written when the disk fills.
        real_write = pq.ParquetWriter.write_table
        monkeypatch.setattr(pq.ParquetWriter, "write_table",
                            lambda self, *a, **k: (real_write(self, *a, **k), full()))
    else:
        real_write_text = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: (
            (real_write_text(self, "{trunc", encoding="utf-8"), full()) if self.name.endswith(".tmp")
            else real_write_text(self, *a, **k)))
    with pytest.raises(OutputWriteError) as raised:
        _commit(writer, "c")
    monkeypatch.undo()

    message = str(raised.value)
    assert raised.value.errno == errno.ENOSPC and isinstance(raised.value, OSError)
    assert str(tmp_path) in message and "No space left on device" in message and "rerun" in message
    _assert_intact(tmp_path, {"a", "b"})
    resumed = ShardWriter.open(tmp_path, CONFIG_SHA)
    assert resumed.done_item_ids == {"a", "b"}
    _commit(resumed, "c")
    _assert_intact(tmp_path, {"a", "b", "c"})


def test_a_commit_never_repeats_an_item_or_a_row(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    record = disc_record("a")
    rows, rejects = record_to_rows(record, CONTEXT, SEGMENTER)
    with pytest.raises(ValueError, match="listed twice"):
        writer.commit(rows + rows, rejects + rejects, ["a", "a"])
    with pytest.raises(ValueError, match="appear twice"):
        writer.commit(rows + rows, rejects, ["a"])
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".parquet", ".tmp")]


def _mount_tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return done.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    """A 260 kB tmpfs: room for one commit of demo rows (each holds its 140-180 kB image), not three."""
    folder = tmp_path / "small_disk"
    if not _mount_tmpfs(folder, "260k"):
        pytest.skip("mounting a tmpfs needs root and mount(8); the ENOSPC tests above cover the writer")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.models
@pytest.mark.slow
def test_a_full_disk_stops_the_run_clearly_and_a_rerun_with_space_finishes(small_disk, tmp_path):
    out = small_disk / "out"
    failed = synth_run("pipelines/demo.yaml", out, DEMO_SETS, expect=None)
    assert failed.returncode == 2, failed.stderr[-3000:]
    assert "No space left on device" in failed.stderr and "rerun" in failed.stderr
    assert "Traceback" not in failed.stderr
    manifest = manifest_of(out)
    assert 1 <= manifest["commits"] < 3, "the disk did not fill where expected"
    _assert_intact(out, {i for s in manifest["shards"] for i in s["item_ids"]})

    subprocess.run(["mount", "-o", "remount,size=8m", str(small_disk)], check=True)
    synth_run("pipelines/demo.yaml", out, DEMO_SETS)
    check_output(out, demo_item_ids(3))
