"""`synth inspect` on outputs from elsewhere: hostile shards and manifests fail fast with a message.

Each case runs the real CLI in a subprocess with a deadline, as a user would: exit code 2, an
`error:` line naming the file, no traceback, within a few seconds. (Reading errors of single files
are unit-tested in tests/core/test_shards.py and tests/inspect/test_cli.py; these cases add the
whole command, crafted manifests, and files that could hang a reader.)
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.inspect.disc_rows import write_disc_output
from tests.fixtures.runs import SYNTH

DEADLINE_S = 90  # catches hangs only; a healthy refusal takes ~1.5 s, but 16 start at once on 2 cores


def _nested(depth: int, wrap: Callable[[pa.DataType], pa.DataType]) -> pa.Table:
    kind = pa.int32()
    for _ in range(depth):
        kind = wrap(kind)
    return pa.table({"x": pa.array([None], type=kind)})


def _file(make: Callable[[Path], None]) -> Callable[[Path], Path]:
    def build(folder: Path) -> Path:
        path = folder / "shard.parquet"
        make(path)
        return path
    return build


def _folder(change: Callable[[Path, dict], object]) -> Callable[[Path], Path]:
    """An output folder of three disc items, then `change(folder, manifest)`; a returned dict is
    written back as the manifest, a returned str as its raw text."""
    def build(folder: Path) -> Path:
        out = folder / "out"
        write_disc_output(out, n_items=3)
        manifest = json.loads((out / "manifest.json").read_text())
        changed = change(out, manifest)
        if isinstance(changed, dict):
            (out / "manifest.json").write_text(json.dumps(changed))
        elif isinstance(changed, str):
            (out / "manifest.json").write_text(changed)
        return out
    return build


def _first_shard(out: Path, manifest: dict) -> Path:
    return out / manifest["shards"][0]["path"]


def _fifo_shard(out: Path, manifest: dict) -> None:
    os.remove(_first_shard(out, manifest))
    os.mkfifo(_first_shard(out, manifest))  # opening it for reading would block forever


def _symlinked_shard(out: Path, manifest: dict) -> None:
    os.remove(_first_shard(out, manifest))
    os.symlink("/dev/zero", _first_shard(out, manifest))  # endless bytes, outside the folder


def _truncated_shard(out: Path, manifest: dict) -> None:
    shard = _first_shard(out, manifest)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])


CASES: dict[str, Callable[[Path], Path]] = {
    "foreign": _file(lambda p: pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), p)),
    "wide_foreign": _file(lambda p: pq.write_table(pa.table({f"c{i}": [1] for i in range(20_000)}), p)),
    "nested_structs": _file(lambda p: pq.write_table(_nested(150, lambda t: pa.struct([pa.field("a", t)])), p)),
    "nested_lists": _file(lambda p: pq.write_table(_nested(150, pa.list_), p)),
    "random_in_frame": _file(lambda p: p.write_bytes(b"PAR1" + os.urandom(5000) + b"PAR1")),
    "footer_garbage": _file(lambda p: p.write_bytes(b"PAR1" + os.urandom(5000) + (4000).to_bytes(4, "little") + b"PAR1")),
    "truncated_in_folder": _folder(_truncated_shard),
    "fifo_shard": _folder(_fifo_shard),
    "symlink_to_dev_zero": _folder(_symlinked_shard),
    "manifest_nested_deep": _folder(lambda out, m: "[" * 200_000 + "]" * 200_000),
    "manifest_huge_number": _folder(lambda out, m: json.dumps(m).replace('"rows": ', '"rows": ' + "9" * 5000 + ', "x": ', 1)),
    "manifest_binary": _folder(lambda out, m: (out / "manifest.json").write_bytes(os.urandom(4096))),
    "manifest_shards_not_objects": _folder(lambda out, m: {**m, "shards": ["rows.parquet"]}),
    "manifest_shard_kind_list": _folder(lambda out, m: {**m, "shards": [{**m["shards"][0], "kind": ["x"]}]}),
    "manifest_summary_garbage": _folder(lambda out, m: {**m, "summary": {"items": "x", "stages": "zzz"}}),
    "manifest_path_escapes": _folder(lambda out, m: {**m, "shards": [{**m["shards"][0], "path": "../../etc/passwd"}]}),
}


@pytest.fixture(scope="module")
def inspected(tmp_path_factory) -> dict[str, tuple[Path, subprocess.CompletedProcess, float]]:
    """Every case built, then inspected by concurrent `synth inspect` processes with a deadline."""
    started = {}
    for name, build in CASES.items():
        target = build(tmp_path_factory.mktemp(name))
        proc = subprocess.Popen([SYNTH, "inspect", str(target)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        started[name] = (target, proc, time.monotonic())
    results = {}
    for name, (target, proc, start) in started.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, start + DEADLINE_S - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            stdout, stderr = proc.communicate()
            stderr += "\n(killed at the deadline)"
        results[name] = (target, subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr),
                         time.monotonic() - start)
    return results


@pytest.mark.parametrize("case", sorted(CASES))
def test_inspect_refuses_a_hostile_output_with_a_message(inspected, case):
    target, done, seconds = inspected[case]
    output = done.stdout + done.stderr
    assert done.returncode == 2, f"{case}: exit {done.returncode} after {seconds:.1f} s:\n{output[-2000:]}"
    assert "Traceback" not in output
    message = " ".join(output.split())  # rich wraps long lines
    # The file at fault is named: the shard given, or in a folder its manifest or the shard it lists.
    names = [target.name] if target.is_file() else ["manifest.json", "rows-a001-c00001.parquet"]
    assert "error:" in message and any(name in message for name in names), message[-1000:]
