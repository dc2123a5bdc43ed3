"""A process that only commits: the target of the SIGKILL-in-the-commit-window tests.

    python -m tests.reliability.commit_loop OUT ITEMS [--pause WHERE]

Opens (resumes) OUT with the real `ShardWriter` and commits items `item-000`, `item-001`, ... one
per commit, skipping the committed ones, until ITEMS are done; then prints DONE. It prints READY
once set up, so the killer's clock starts when commits do. With `--pause WHERE` it prints PAUSED and
sleeps at that point of the first commit, so a test can SIGKILL it exactly there:
- `shard_tmp`: the rows shard is written and fsynced under its .tmp name, not yet renamed;
- `manifest_tmp`: the shards are in place and the new manifest is written as manifest.json.tmp,
  not yet renamed over the old one.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from synth.core import shards
from synth.core.rows import record_to_rows
from tests.inspect.disc_rows import CONFIG_SHA, CONTEXT, SEGMENTER, disc_record


def _pause_before_rename(where: str) -> None:
    real_replace = os.replace

    def replace(src, dst):
        name = Path(src).name
        hit = name == "manifest.json.tmp" if where == "manifest_tmp" else name.startswith("rows-")
        if hit:
            print("PAUSED", flush=True)
            time.sleep(600)
        real_replace(src, dst)

    shards.os.replace = replace  # type: ignore[attr-defined]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("items", type=int)
    parser.add_argument("--pause", choices=["shard_tmp", "manifest_tmp"])
    args = parser.parse_args()
    writer = shards.ShardWriter.open(args.out, CONFIG_SHA)
    record = disc_record("template", rejected=(1,))  # one row, one reject, re-labelled: the loop measures commits, not records
    rows, rejects = record_to_rows(record, CONTEXT, SEGMENTER)
    if args.pause:
        _pause_before_rename(args.pause)
    print("READY", flush=True)
    for index in range(args.items):
        item_id = f"item-{index:03d}"
        if item_id in writer.done_item_ids:
            continue
        mine = [{**row, "item_id": item_id, "id": f"{item_id}-{row['id']}"} for row in rows]
        mine_rejects = [{**row, "item_id": item_id} for row in rejects]
        writer.commit(mine, mine_rejects, [item_id])
    print("DONE", flush=True)


if __name__ == "__main__":
    sys.exit(main())
