"""Helpers of the reliability tests: real `synth run` subprocesses, small datasets, and the checks
of DESIGN.md's promise (every item read is a row or a reject, counts add up, nothing half written).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from synth.core.shards import file_sha256

REPO = Path(__file__).resolve().parents[2]
SYNTH = str(Path(sys.executable).parent / "synth")


def synth_cmd(pipeline: str, out: Path, sets: list[str], runner: str = "local") -> list[str]:
    cmd = [SYNTH, "run", pipeline, "--quiet", "--runner", runner, "--output", str(out)]
    for value in sets:
        cmd += ["--set", value]
    return cmd


def synth_run(pipeline: str, out: Path, sets: list[str], runner: str = "local", timeout: float = 600,
              expect: int | None = 0) -> subprocess.CompletedProcess:
    """Run `synth run` to its end; with `expect`, fail (showing stderr) on another exit code."""
    done = subprocess.run(synth_cmd(pipeline, out, sets, runner), cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)
    if expect is not None:
        assert done.returncode == expect, f"exit {done.returncode}, expected {expect}:\n{done.stderr[-4000:]}"
    return done


def synth_popen(pipeline: str, out: Path, sets: list[str], runner: str = "local", **kwargs) -> subprocess.Popen:
    """Start `synth run` in its own process group (so a test can SIGKILL the whole run)."""
    return subprocess.Popen(synth_cmd(pipeline, out, sets, runner), cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


# --- datasets ------------------------------------------------------------------------------------


def disc_manifest(folder: Path, counts: list[int], label: str = "red disc", size=(320, 240)) -> list[dict]:
    """Images of `counts[i]` red discs on a grey, slightly noisy background, and a JSONL manifest
    whose entries carry the discs' centres and boxes (so the annotation proposals can ground them).

    Returns the entries written to `folder / "items.jsonl"`; questions are unique per item.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width, height = size
    rng = np.random.default_rng(7)
    entries = []
    for index, count in enumerate(counts):
        image = np.clip(rng.normal(150, 6, (height, width, 3)), 0, 255).astype(np.uint8)
        yy, xx = np.mgrid[0:height, 0:width] + 0.5
        points, boxes = [], []
        for k in range(count):
            cx, cy, r = 40 + 70 * (k % 4), 50 + 90 * (k // 4), 22
            disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
            image[disc] = (220, 40, 40)
            rows, cols = np.nonzero(disc)
            points.append([float(cx), float(cy)])
            boxes.append([float(cols.min()), float(rows.min()), float(cols.max() + 1), float(rows.max() + 1)])
        name = f"discs_{index}.png"
        Image.fromarray(image).save(folder / name)
        entries.append({"id": f"discs-{index}", "image": name, "question": f"How many red discs are in picture {index}?",
                        "answer": count, "label": label, "points": points, "boxes": boxes})
    (folder / "items.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
    return entries


# --- reading an output back ----------------------------------------------------------------------


def manifest_of(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


def _shard_rows(out: Path, kind: str) -> list[dict]:
    rows = []
    for shard in manifest_of(out)["shards"]:
        if shard["kind"] == kind:
            rows += pq.read_table(out / shard["path"]).to_pylist()
    return rows


def output_rows(out: Path) -> dict[str, dict]:
    """Committed rows by id, without their write time; fails on a duplicate id."""
    rows: dict[str, dict] = {}
    for row in _shard_rows(out, "rows"):
        row["provenance"].pop("created_at", None)
        assert row["id"] not in rows, f"duplicate row {row['id']} in {out}"
        rows[row["id"]] = row
    return rows


def reject_keys(out: Path) -> list[tuple]:
    """Committed rejects as sorted (item_id, stage, reason, sample_index); fails on a duplicate."""
    keys = [(r["item_id"], r["stage"], r["reason"], r["sample_index"]) for r in _shard_rows(out, "rejects")]
    assert len(keys) == len(set(keys)), f"duplicate rejects in {out}"
    return sorted(keys, key=str)


def rejects_by_item(out: Path) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for item_id, stage, reason, _ in reject_keys(out):
        found.setdefault(item_id, []).append((stage, reason))
    return found


def check_output(out: Path, item_ids: set[str]) -> dict:
    """Everything a user relies on in a finished output; returns the summary.

    Checks: every committed shard exists with the size and sha256 the manifest records, no shard or
    temporary file is left that the manifest does not list, each item read is among the rows or the
    rejects and no other item is, the manifest's item list and totals match the shards, and every
    line of summary.json adds up (in == out + rejected) and chains into the rows written.
    """
    manifest = manifest_of(out)
    listed = {s["path"] for s in manifest["shards"]}
    for shard in manifest["shards"]:
        path = out / shard["path"]
        assert path.stat().st_size == shard["bytes"], f"{shard['path']}: size differs from the manifest"
        assert file_sha256(path) == shard["sha256"], f"{shard['path']}: sha256 differs from the manifest"
    strays = [p.name for p in out.iterdir() if p.suffix in (".parquet", ".tmp") and p.name not in listed]
    assert not strays, f"files the manifest does not list: {strays}"
    rows, rejects = output_rows(out), reject_keys(out)
    seen = {r["item_id"] for r in rows.values()} | {key[0] for key in rejects}
    assert seen == item_ids, f"missing {sorted(item_ids - seen)[:5]}, unexpected {sorted(seen - item_ids)[:5]}"
    committed = {i for s in manifest["shards"] for i in s["item_ids"]}
    assert committed == item_ids
    assert (manifest["items_in"], manifest["rows"], manifest["rejects"]) == (len(item_ids), len(rows), len(rejects))
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["items"], summary["rows"], summary["rejects"]) == (len(item_ids), len(rows), len(rejects))
    for line in summary["stages"]:
        assert line["in"] == line["out"] + sum(line["rejected"].values()), f"summary line does not add up: {line}"
    annotate = next(line for line in summary["stages"] if line["stage"] == "annotate")
    assert annotate["out"] == len(rows), "the last trace line does not chain into the rows written"
    return summary


def demo_item_ids(items: int, seed: int = 0) -> set[str]:
    """The ids of the demo set a run with `source.demo.items=items` reads."""
    from synth.sources.demo import DemoOptions, iter_demo

    return {item.item_id for item in iter_demo(DemoOptions(items=items, seed=seed))}


def differences(a, b, path: str = "", limit: int = 10) -> list[str]:
    """Where two nested values (rows by id, say) differ: up to `limit` paths with both values."""
    found: list[str] = []
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                found.append(f"{path}/{key}: only in {'second' if key in b else 'first'}")
            else:
                found += differences(a[key], b[key], f"{path}/{key}", limit)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            found += differences(x, y, f"{path}[{i}]", limit)
    elif a != b:
        found.append(f"{path}: {str(a)[:120]!r} != {str(b)[:120]!r}")
    return found[:limit]


def _scores_within(value, reference, tolerance: float):
    """`value` with each segmenter score replaced by the reference's when they differ by at most
    `tolerance` (rounding would not do: two close scores can round apart)."""
    if isinstance(value, dict) and isinstance(reference, dict):
        return {k: (reference[k] if k == "score" and isinstance(v, float) and isinstance(reference.get(k), float)
                    and abs(v - reference[k]) <= tolerance else _scores_within(v, reference.get(k), tolerance))
                for k, v in value.items()}
    if isinstance(value, list) and isinstance(reference, list) and len(value) == len(reference):
        return [_scores_within(v, r, tolerance) for v, r in zip(value, reference)]
    return value


def assert_same_rows(out: Path, reference: Path, score_tolerance: float | None = None) -> None:
    """The committed rows and rejects of `out` equal those of `reference` (write times aside).

    `score_tolerance` lets segmenter scores differ by that much: torch's float32 sums depend on its
    thread count, which differs between a Ray actor (its num_cpus) and a local run (all cores).
    """
    rows, expected = output_rows(out), output_rows(reference)
    if score_tolerance is not None:
        rows = _scores_within(rows, expected, score_tolerance)
    assert rows == expected, "rows differ:\n" + "\n".join(differences(rows, expected))
    assert reject_keys(out) == reject_keys(reference)
