"""Rows of a synth output, shard by shard, as dicts (the layout of `schemas/v1.json`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from synth.core.shards import MANIFEST_NAME, load_manifest, read_table


def row_shards(output: Path | str) -> list[Path]:
    """The committed rows shards of an output folder (or the one shard given), in manifest order.

    Raises:
        FileNotFoundError: no such folder or file, or a folder without manifest.json.
        ValueError: the manifest lists a shard outside the folder.
    """
    path = Path(output)
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such output folder or shard")
    manifest = load_manifest(path)
    root = path.resolve()
    shards = []
    for entry in manifest["shards"]:
        if entry.get("kind") != "rows":
            continue
        shard = (path / str(entry.get("path", ""))).resolve()
        if root not in shard.parents:
            raise ValueError(f"{path / MANIFEST_NAME}: shard path {entry.get('path')!r} lies outside the folder")
        shards.append(shard)
    return shards


def row_keys(shards: list[Path]) -> Iterator[tuple[str, str, str]]:
    """(id, image_sha256, source) of every row, reading only those columns."""
    for shard in shards:
        table = pq.read_table(shard, columns=["id", "image_sha256", "provenance"])
        ids = table.column("id").to_pylist()
        shas = table.column("image_sha256").to_pylist()
        provenance = table.column("provenance").to_pylist()
        for row_id, sha, prov in zip(ids, shas, provenance):
            yield row_id, sha, (prov or {}).get("source") or ""


def iter_rows(shards: list[Path]) -> Iterator[dict[str, Any]]:
    """Every row of the shards as a dict, one shard in memory at a time.

    Raises:
        SchemaError: a file is not a rows shard of this schema version (see `read_table`).
    """
    for shard in shards:
        kind, table = read_table(shard)
        if kind != "rows":
            continue
        for batch in table.to_batches(max_chunksize=256):
            yield from batch.to_pylist()
