"""Soak run: the demo pipeline over many items with memory sampled; memory must stay flat.

Runs `synth run pipelines/demo.yaml` (real MobileSAM, the annotation teacher) as a subprocess over
`--items` demo items and samples, every second, the memory of its whole process tree (the driver
plus, with Ray, the raylet, the object store and every worker) and the items committed so far
(manifest.json). The tree's memory is PSS (resident pages, shared ones apportioned): RSS would
count Ray's shared object store once in every process that maps it. The driver's is its heap
(anonymous memory), where anything synth keeps per item would show. Then it prints, for each
quarter of the run, the throughput and the peak memory with the ratio to the second quarter (the
baseline measured in the same run, once the models are loaded: a steady run shows ~1.0), and the
reconciliation DESIGN.md promises: every item read is among the rows or the rejects, no row
twice, every summary line adds up.

    python benchmarks/soak.py [--items 2000] [--runner ray|local] [--commit-every 32] [--keep DIR]

Measured here (2 cores), 2,000 items each, every item reconciled (4,000 rows):
- Ray runner: 83 min; 0.33 / 0.41 / 0.39 / 0.47 items/s by quarter (the first shares the cores
  with the read running ahead of MobileSAM); tree peak PSS 4.58 / 4.41 / 4.58 / 4.08 GB (x0.92),
  driver heap 319 / 320 / 327 / 325 MB (x1.02); slope after the first quarter: tree -19 MB, driver
  heap +0.7 MB per 100 items. (Judged by its PSS, the driver seemed to grow from 0.41 to 0.63 GB:
  that was its share of the object store pages it maps, see Sample.driver_heap.)
- local runner: 81 min (the machine busy with other work for the first half); peak PSS
  1.80-1.95 GB, last quarter x1.08 of the second, +16 MB per 100 items, in native memory: loops of
  MobileSAM (240 images), RLE (20,000 masks), decoding and Parquet writing (3,000) alone are flat,
  and MobileSAM's RSS swings by ~70 MB from image to image.
`--items 40` takes 1-2 minutes and shows the figures' shape.
Exit code 1 if the reconciliation fails or, from 200 items on, the last quarter's peak memory
exceeds the second quarter's by over 10% (growth with items; the first quarter holds the model
loading). It also prints the least-squares slope of memory against items committed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
SYNTH = str(Path(sys.executable).parent / "synth")
GROWTH_LIMIT = 1.10
MIN_JUDGED_ITEMS = 200


@dataclass
class Sample:
    seconds: float
    items: int
    pss: int  # PSS of the whole process tree
    # Anonymous memory of the `synth run` process (with Ray: the driver that commits): its heap,
    # Python's and native. Not its PSS: the driver maps the object store pages it reads, and its
    # share of those rises as the queue before the slow stage drains and fewer workers share them.
    driver_heap: int


# --- the process tree, from /proc ----------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            found.setdefault(ppid, []).append(int(entry.name))
    return found


def smaps(pid: int, field: str) -> int:
    """One field of /proc/PID/smaps_rollup in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_pss(root: int) -> int:
    """Memory of `root` and all its descendants as PSS (proportional set size: each process's
    private pages plus its share of pages it maps with others), so a tree's sum counts Ray's
    shared object store once."""
    children, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        total += smaps(pid, "Pss")
    return total


def committed_items(out: Path) -> int:
    try:
        return json.loads((out / "manifest.json").read_text())["items_in"]
    except (OSError, ValueError, KeyError):
        return 0


# --- the run ---------------------------------------------------------------------------------------


def soak(items: int, runner: str, commit_every: int, out: Path) -> tuple[list[Sample], int, str]:
    """Run the demo and sample it every second; returns the samples, the exit code and stderr's tail."""
    cmd = [SYNTH, "run", "pipelines/demo.yaml", "--quiet", "--runner", runner, "--output", str(out),
           "--set", f"source.demo.items={items}", "--set", f"output.commit_every={commit_every}"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    start, samples = time.monotonic(), []
    while proc.poll() is None:
        samples.append(Sample(time.monotonic() - start, committed_items(out), tree_pss(proc.pid),
                              smaps(proc.pid, "Pss_Anon")))
        time.sleep(1.0)
    samples.append(Sample(time.monotonic() - start, committed_items(out), 0, 0))
    log.seek(0)
    return samples, proc.returncode, log.read().decode(errors="replace")[-3000:]


def quarters(samples: list[Sample]) -> list[dict]:
    """Per quarter of the run's time: items committed by its end, items/s within it, and the peak
    memory (tree and driver) within it. Time, not items, splits the run: commits arrive in batches,
    so item counts jump over quarter marks, while memory is sampled every second."""
    end = samples[-1].seconds
    rows, begin = [], Sample(0.0, 0, 0, 0)
    for q in (1, 2, 3, 4):
        inside = [s for s in samples if begin.seconds <= s.seconds <= end * q / 4]
        last = inside[-1] if inside else begin
        rows.append({"quarter": q, "items": last.items, "seconds": last.seconds,
                     "items_per_s": (last.items - begin.items) / max(last.seconds - begin.seconds, 1e-9),
                     "peak_pss": max((s.pss for s in inside), default=0),
                     "peak_driver_heap": max((s.driver_heap for s in inside), default=0)})
        begin = last
    return rows


# --- the reconciliation ----------------------------------------------------------------------------


def reconcile(out: Path, items: int) -> list[str]:
    """What does not add up in the output (empty: everything does)."""
    from synth.sources.demo import DemoOptions, iter_demo

    problems = []
    read = {item.item_id for item in iter_demo(DemoOptions(items=items))}
    manifest = json.loads((out / "manifest.json").read_text())
    row_ids, row_items, reject_items = [], set(), set()
    for shard in manifest["shards"]:
        table = pq.read_table(out / shard["path"], columns=["item_id", *(["id"] if shard["kind"] == "rows" else [])])
        if shard["kind"] == "rows":
            row_ids += table.column("id").to_pylist()
            row_items |= set(table.column("item_id").to_pylist())
        else:
            reject_items |= set(table.column("item_id").to_pylist())
    if len(row_ids) != len(set(row_ids)):
        problems.append(f"{len(row_ids) - len(set(row_ids))} duplicate row ids")
    if (seen := row_items | reject_items) != read:
        problems.append(f"items read but not written: {len(read - seen)}; written but not read: {len(seen - read)}")
    summary = json.loads((out / "summary.json").read_text())
    for line in summary["stages"]:
        if line["in"] != line["out"] + sum(line["rejected"].values()):
            problems.append(f"summary line does not add up: {line}")
    if summary["rows"] != len(row_ids) or summary["items"] != len(read):
        problems.append(f"summary says {summary['items']} items, {summary['rows']} rows; "
                        f"found {len(read)} items, {len(row_ids)} rows")
    print(f"reconciliation: {len(read)} items read = {len(row_items)} with rows | {len(reject_items)} with rejects "
          f"(union {len(row_items | reject_items)}); {len(row_ids)} rows, {summary['rejects']} rejects; "
          f"{len(summary['stages'])} summary lines checked")
    return problems


def report(samples: list[Sample]) -> bool:
    """Print the quarters with their ratio to the baseline (the second quarter); False if memory grew."""
    table = quarters(samples)
    base = table[1]  # the first quarter loads the models; from the second on, the run is steady
    total = samples[-1]
    print(f"items: {total.items} in {total.seconds:.0f} s = {total.items / total.seconds:.3f} items/s; "
          f"{len(samples)} memory samples (1/s)")
    print(f"{'run':>5} {'items':>6} {'at s':>6} {'items/s':>8} {'peak PSS MB':>11} {'x Q2':>5} "
          f"{'driver heap MB':>14} {'x Q2':>5}")
    for row in table:
        print(f"{row['quarter'] * 25:>4}% {row['items']:>6} {row['seconds']:>6.0f} {row['items_per_s']:>8.3f} "
              f"{row['peak_pss'] / 2**20:>11.0f} {row['peak_pss'] / max(base['peak_pss'], 1):>5.2f} "
              f"{row['peak_driver_heap'] / 2**20:>14.0f} {row['peak_driver_heap'] / max(base['peak_driver_heap'], 1):>5.2f}")
    growth = max(table[3]["peak_pss"] / max(base["peak_pss"], 1),
                 table[3]["peak_driver_heap"] / max(base["peak_driver_heap"], 1))
    steady = [s for s in samples[:-1] if s.seconds >= table[0]["seconds"]]
    print(f"memory growth, last quarter's peak / second quarter's (tree or driver heap, the larger): {growth:.3f} "
          f"(limit {GROWTH_LIMIT}); slope after the first quarter: tree {_slope(steady, 'pss'):+.1f} MB, "
          f"driver heap {_slope(steady, 'driver_heap'):+.1f} MB per 100 items committed")
    if total.items < MIN_JUDGED_ITEMS:
        print(f"(fewer than {MIN_JUDGED_ITEMS} items: a quarter holds a few commits, so the ratio is noise; not judged)")
        return True
    return growth <= GROWTH_LIMIT


def _slope(samples: list[Sample], field: str) -> float:
    """Least-squares MB of memory per 100 items committed."""
    if len({s.items for s in samples}) < 2:
        return 0.0
    xs, ys = [s.items for s in samples], [getattr(s, field) / 2**20 for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return 100 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--runner", choices=["ray", "local"], default="ray")
    parser.add_argument("--commit-every", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="write the output here and keep it (default: a temporary folder)")
    args = parser.parse_args()

    out = args.keep or Path(tempfile.mkdtemp(prefix="synth-soak-")) / "out"
    print(f"soak: {args.items} demo items, runner {args.runner}, commit every {args.commit_every}, output {out}")
    try:
        samples, code, stderr = soak(args.items, args.runner, args.commit_every, out)
        if code != 0:
            print(f"the run failed (exit {code}):\n{stderr}")
            sys.exit(1)
        flat = report(samples)
        problems = reconcile(out, args.items)
    finally:
        if args.keep is None:
            shutil.rmtree(out.parent, ignore_errors=True)
    for problem in problems:
        print(f"PROBLEM: {problem}")
    if not flat:
        print("PROBLEM: memory grew with items")
    sys.exit(0 if flat and not problems else 1)


if __name__ == "__main__":
    os.chdir(REPO)
    main()
