"""Parquet shards and the manifest that commits them; reading them back with clear errors.

An output folder holds `rows-aAAA-cCCCCC.parquet` and `rejects-aAAA-cCCCCC.parquet` shards (A: the
run attempt, C: the commit number) and `manifest.json`. The manifest is the commit point: a shard
exists for a reader only once the manifest lists it. `ShardWriter.commit` writes the shards of a
batch of finished items (each to `name.tmp`, fsync, rename) and then rewrites the manifest the same
way, so a crash at any moment leaves either the old or the new manifest, never a half-written one.
A commit that cannot be written (disk full, I/O error) removes its own files and raises
`OutputWriteError`, so the last commit stays the state on disk. On restart, files the manifest does
not list are leftovers of a crash and are deleted; the items the manifest lists are done and are
skipped. The attempt number in each name keeps shards of a
resumed run from ever reusing a name of an earlier attempt.

Shards use the explicit schema of `synth.core.schema` (never inferred), zstd compression and
row groups of about 100 rows, so a reader can fetch a few rows without decoding a whole file.
"""

from __future__ import annotations

import copy
import errno
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from synth.core.manifest import (
    MANIFEST_NAME,
    OutputError,
    OutputWriteError,
    fsync_dir,
    remove_file,
    file_sha256,
    load_manifest,
    new_manifest,
    write_manifest,
)
from synth.core.rows import record_to_rows, rows_to_table
from synth.core.schema import Kind, SchemaError, arrow_schema, check_file_schema

__all__ = [
    "MANIFEST_NAME", "Output", "OutputError", "OutputWriteError", "ShardWriter", "file_sha256", "load_manifest",
    "load_output", "read_table", "record_to_rows", "write_manifest",
]

log = logging.getLogger(__name__)

SHARD_NAME = re.compile(r"^(rows|rejects)-a(\d{3,})-c(\d{5,})\.parquet$")
#: A footer (Parquet's file metadata) larger than this is refused before it is parsed: a synth
#: shard's footer is a few hundred kB, and a crafted one of gigabytes would exhaust memory.
MAX_FOOTER_BYTES = 64 * 2**20


class ShardWriter:
    """Writes shards and commits them through the manifest; resumes a folder of the same config.

    Opening a folder that already has a manifest resumes it: files the manifest does not list are
    deleted and `done_item_ids` says which items need no more work. A manifest of another config
    is refused unless `overwrite`, which deletes the earlier run's shards and manifest first.

    Args:
        out_dir: the output folder (created if missing).
        config_sha256: sha256 of the resolved config; resume requires the same.
        config: the resolved config as plain JSON, stored in the manifest for provenance.
        overwrite: start afresh even if the folder holds another (or the same) run.
        row_group_size: rows per Parquet row group.
    """

    def __init__(
        self,
        out_dir: Path | str,
        config_sha256: str = "",
        config: dict[str, Any] | None = None,
        *,
        overwrite: bool = False,
        row_group_size: int = 100,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.row_group_size = row_group_size
        self.out_dir.mkdir(parents=True, exist_ok=True)
        manifest = self._existing_manifest(config_sha256, overwrite)
        if manifest is None:
            manifest = new_manifest(config_sha256, config or {})
        manifest["attempts"] += 1
        self._manifest = manifest
        self._remove_strays()
        self._check_listed()
        self.done_item_ids: set[str] = {i for s in manifest["shards"] for i in s.get("item_ids", [])}
        # Record the attempt now, so names of this attempt never repeat even if it dies uncommitted.
        try:
            write_manifest(self.out_dir, self._manifest)
        except OSError as exc:
            raise _write_error(self.out_dir, "cannot start the run", exc) from exc

    @classmethod
    def open(
        cls,
        out_dir: Path | str,
        config_sha256: str,
        config: dict[str, Any] | None = None,
        *,
        overwrite: bool = False,
        row_group_size: int = 100,
    ) -> ShardWriter:
        """Open `out_dir` for a run of `config_sha256`: resume it, start it, or (overwrite) replace it."""
        return cls(out_dir, config_sha256, config, overwrite=overwrite, row_group_size=row_group_size)

    @property
    def manifest(self) -> dict[str, Any]:
        """A copy of the manifest as last committed."""
        return copy.deepcopy(self._manifest)

    @property
    def summary(self) -> dict[str, Any]:
        """The per-stage summary stored by the last commit or `set_summary` ({} if none yet)."""
        return copy.deepcopy(self._manifest.get("summary") or {})

    def commit(
        self,
        rows: list[dict[str, Any]],
        rejects: list[dict[str, Any]],
        item_ids: Iterable[str],
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Write the rows and rejects of finished items, then commit them in the manifest.

        Args:
            rows: row dicts (see `synth.core.rows.record_to_rows`).
            rejects: reject dicts.
            item_ids: every item these rows and rejects come from; each must appear in them.
            summary: the run's per-stage summary, stored in the same manifest write.

        Raises:
            ValueError: an item would vanish (no row and no reject), rows belong to an item not
                listed, an item was committed before or is listed twice, a row id repeats, or a
                row does not fit the schema.
            OutputWriteError: the disk is full or a write failed; this commit's files are
                removed and the manifest still holds the last commit.
        """
        ids = list(item_ids)
        self._check_commit(rows, rejects, ids)
        manifest = copy.deepcopy(self._manifest)
        manifest["commits"] += 1
        written: list[str] = []
        try:
            for kind, data in (("rows", rows), ("rejects", rejects)):
                if data:
                    entry = self._write_shard(kind, data, manifest["attempts"], manifest["commits"])  # type: ignore[arg-type]
                    written.append(entry["path"])
                    manifest["shards"].append(entry)
                    manifest[kind] += entry["rows"]
            manifest["items_in"] += len(ids)
            if summary is not None:
                manifest["summary"] = summary
            write_manifest(self.out_dir, manifest)
        except OSError as exc:
            # The old manifest does not list these shards: remove them now, which also frees the space.
            for name in written:
                remove_file(self.out_dir / name)
            last = self._manifest
            raise _write_error(self.out_dir, f"cannot commit {len(ids)} item(s) (commit {manifest['commits']})", exc,
                               f"the last commit (commit {last['commits']}, {last['items_in']} items in all) is intact"
                               ) from exc
        self._manifest = manifest
        self.done_item_ids.update(ids)

    def set_summary(self, summary: dict[str, Any]) -> None:
        """Store the run's per-stage counts in the manifest (written at once, atomically)."""
        manifest = copy.deepcopy(self._manifest)
        manifest["summary"] = summary
        write_manifest(self.out_dir, manifest)
        self._manifest = manifest

    def _existing_manifest(self, config_sha256: str, overwrite: bool) -> dict[str, Any] | None:
        if not (self.out_dir / MANIFEST_NAME).exists():
            return None
        manifest = load_manifest(self.out_dir)
        if overwrite:
            for entry in manifest["shards"]:
                remove_file(self.out_dir / entry["path"])
            remove_file(self.out_dir / MANIFEST_NAME)
            log.info("overwrite: removed the earlier run in %s", self.out_dir)
            return None
        if manifest["config_sha256"] != config_sha256 and not manifest["shards"]:
            log.info("%s: replacing the manifest of a run of another config that committed nothing", self.out_dir)
            return None
        if manifest["config_sha256"] != config_sha256:
            raise OutputError(
                f"{self.out_dir}: holds a run of another config (manifest.json has config_sha256 "
                f"{manifest['config_sha256'][:12] or '(none)'}, this run has {config_sha256[:12] or '(none)'}); "
                f"resuming needs the same config. Use another output folder, or overwrite to replace it"
            )
        return manifest

    def _remove_strays(self) -> None:
        listed = {entry["path"] for entry in self._manifest["shards"]}
        for path in self.out_dir.iterdir():
            name = path.name
            stray_shard = SHARD_NAME.match(name) and name not in listed
            stray_tmp = name.endswith(".tmp") and (SHARD_NAME.match(name[:-4]) or name[:-4] == MANIFEST_NAME)
            if path.is_file() and (stray_shard or stray_tmp):
                log.info("removing %s: not committed in %s (left by an interrupted run)", name, MANIFEST_NAME)
                remove_file(path)

    def _check_listed(self) -> None:
        for entry in self._manifest["shards"]:
            path = self.out_dir / entry["path"]
            if not path.is_file():
                raise OutputError(f"{self.out_dir}: {MANIFEST_NAME} lists {entry['path']}, which is missing; "
                                 f"restore it, or overwrite to start the run afresh")
            if "bytes" in entry and path.stat().st_size != entry["bytes"]:
                raise OutputError(f"{self.out_dir}: {entry['path']} has {path.stat().st_size} bytes, "
                                 f"{MANIFEST_NAME} says {entry['bytes']}; the file changed after it was committed")

    def _check_commit(self, rows: list[dict[str, Any]], rejects: list[dict[str, Any]], ids: list[str]) -> None:
        covered = {r.get("item_id") for r in rows} | {r.get("item_id") for r in rejects}
        declared = set(ids)
        if len(declared) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise ValueError(f"commit: item(s) {twice[:5]} listed twice in one commit; their rows would repeat")
        row_ids = [r.get("id") for r in rows]
        if len(set(row_ids)) != len(row_ids):
            twice = sorted({str(i) for i in row_ids if row_ids.count(i) > 1})
            raise ValueError(f"commit: row id(s) {twice[:5]} appear twice; a row is written once")
        if missing := sorted(declared - covered):
            raise ValueError(f"commit: item(s) {missing[:5]} have neither a row nor a reject; they would vanish")
        if extra := sorted(map(str, covered - declared)):
            raise ValueError(f"commit: rows or rejects of item(s) {extra[:5]} not listed in item_ids")
        if again := sorted(declared & self.done_item_ids):
            raise ValueError(f"commit: item(s) {again[:5]} were committed before; committing twice duplicates rows")

    def _write_shard(self, kind: Kind, data: list[dict[str, Any]], attempt: int, commit: int) -> dict[str, Any]:
        table = rows_to_table(data, kind)
        name = f"{kind}-a{attempt:03d}-c{commit:05d}.parquet"
        final = self.out_dir / name
        tmp = final.with_name(name + ".tmp")
        try:
            with pq.ParquetWriter(tmp, table.schema, compression="zstd") as writer:
                writer.write_table(table, row_group_size=self.row_group_size)
            digest = file_sha256(tmp, fsync=True)
            os.replace(tmp, final)
        except BaseException:
            remove_file(tmp)  # a half-written shard is worth nothing and holds space a full disk needs
            raise
        fsync_dir(self.out_dir)
        return {
            "path": name,
            "kind": kind,
            "rows": table.num_rows,
            "bytes": final.stat().st_size,
            "sha256": digest,
            "item_ids": sorted(set(table.column("item_id").to_pylist())),
        }


def _write_error(out_dir: Path, what: str, exc: OSError, state: str = "") -> OutputWriteError:
    """The error a failed write becomes: the folder, what failed, the system's reason, what is
    left on disk, what to do."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    if exc.errno == errno.ENOSPC:
        advice = "free space on that disk (or choose another --output) and rerun the same command to resume"
    else:
        advice = "fix the cause and rerun the same command to resume"
    error = OutputWriteError(f"{out_dir}: {what}: {reason}; {state + '; ' if state else ''}{advice}")
    error.errno = exc.errno
    return error


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass
class Output:
    """What `load_output` read: rows and rejects tables, and the manifest if it came from a folder."""

    path: Path
    rows: pa.Table
    rejects: pa.Table
    manifest: dict[str, Any] | None = None
    shard_paths: list[Path] = field(default_factory=list)


def read_table(path: Path | str, max_footer_bytes: int = MAX_FOOTER_BYTES) -> tuple[Kind, pa.Table]:
    """Read one shard: its kind ("rows" or "rejects") and its table, checked against the schema.

    Raises:
        FileNotFoundError: no such file.
        SchemaError: not a Parquet file, a truncated or damaged one, one with an oversized footer,
            a Parquet file that is not a synth shard, or a shard of another schema version; the
            message names the file.
    """
    path = Path(path)
    name = path.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such shard file")
    _check_parquet_frame(path, max_footer_bytes)
    try:
        # Thrift limits bound what a crafted footer can make the parser allocate.
        with pq.ParquetFile(path, thrift_string_size_limit=max_footer_bytes,
                            thrift_container_size_limit=1_000_000) as pf:
            kind = check_file_schema(pf.schema_arrow, name)
            table = pf.read()
    except SchemaError:
        raise
    except (OSError, pa.ArrowException, ValueError) as exc:
        raise SchemaError(f"{name}: unreadable Parquet file ({str(exc).strip()})") from exc
    return kind, table


def _check_parquet_frame(path: Path, max_footer_bytes: int) -> None:
    """Check the magic bytes and footer length before any parser sees the file."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(max(size - 8, 0))
        tail = f.read(8)
    if size < 12 or head != b"PAR1":
        raise SchemaError(f"{path.name}: not a Parquet file (it does not start with the PAR1 marker)")
    if tail[4:] != b"PAR1":
        raise SchemaError(f"{path.name}: truncated or damaged Parquet file (no PAR1 footer at its end, {size} bytes)")
    footer = int.from_bytes(tail[:4], "little")
    if footer > size - 12:
        raise SchemaError(f"{path.name}: truncated or damaged Parquet file (footer of {footer} bytes "
                          f"in a file of {size})")
    if footer > max_footer_bytes:
        raise SchemaError(f"{path.name}: Parquet footer of {footer} bytes exceeds the limit of "
                          f"{max_footer_bytes}; not a synth shard")


def load_output(path: Path | str) -> Output:
    """Read an output folder (its committed shards, via the manifest) or a single shard.

    Raises:
        FileNotFoundError, SchemaError, ValueError: with the folder or file named.
    """
    path = Path(path)
    if path.is_dir():
        return _load_folder(path)
    kind, table = read_table(path)
    other: Kind = "rejects" if kind == "rows" else "rows"
    tables = {kind: table, other: arrow_schema(other).empty_table()}
    return Output(path, tables["rows"], tables["rejects"], None, [path])


def _load_folder(folder: Path) -> Output:
    manifest = load_manifest(folder)
    parts: dict[str, list[pa.Table]] = {"rows": [], "rejects": []}
    paths = []
    root = folder.resolve()
    for entry in manifest["shards"]:
        shard = (folder / str(entry.get("path", ""))).resolve()
        if root not in shard.parents:
            raise OutputError(f"{folder / MANIFEST_NAME}: shard path {entry.get('path')!r} lies outside the folder")
        kind, table = read_table(shard)
        if kind != entry.get("kind"):
            raise SchemaError(f"{shard.name}: a {kind} shard, but {MANIFEST_NAME} lists it as {entry.get('kind')!r}")
        parts[kind].append(table.replace_schema_metadata(arrow_schema(kind).metadata))
        paths.append(shard)
    tables = {
        kind: pa.concat_tables(tabs) if tabs else arrow_schema(kind).empty_table()  # type: ignore[arg-type]
        for kind, tabs in parts.items()
    }
    return Output(folder, tables["rows"], tables["rejects"], manifest, paths)
