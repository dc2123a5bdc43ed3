"""manifest.json, the commit point of an output folder: written atomically, read back checked.

The manifest lists every committed shard (path, kind, rows, bytes, sha256, item ids) with the run's
totals and per-stage summary. `write_manifest` replaces it atomically (temporary file, fsync,
rename); `load_manifest` refuses, with an `OutputError` naming the file and the field, anything a
reader could trip on: text that is not JSON (or nests too deep, or holds a number too long to
convert), a missing key, a value of the wrong type. A manifest is a file from elsewhere as much
as a shard is, so a crafted one must fail with a message, never a traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from synth import __version__
from synth.core.schema import SCHEMA_VERSION, SchemaError
from synth.errors import SynthError

MANIFEST_NAME = "manifest.json"
_MANIFEST_KEYS = ("schema_version", "config_sha256", "items_in", "rows", "rejects", "shards")
_COUNTS = ("items_in", "rows", "rejects", "attempts", "commits")
_SHARD_KINDS = ("rows", "rejects")


class OutputError(SynthError, ValueError):
    """An output folder cannot be used as it is (another config's run, a committed shard missing,
    a damaged manifest); the message says which and what to do."""


class OutputWriteError(SynthError, OSError):
    """A commit could not be written (disk full, I/O error). Its files were removed; the last
    commit is intact, and a rerun resumes from it once the cause is fixed."""


def new_manifest(config_sha256: str, config: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a run that has committed nothing yet."""
    return {
        "schema_version": SCHEMA_VERSION,
        "synth_version": __version__,
        "config_sha256": config_sha256,
        "config": config,
        "items_in": 0,
        "rows": 0,
        "rejects": 0,
        "attempts": 0,
        "commits": 0,
        "shards": [],
        "summary": {},
        "created_at": datetime.now(timezone.utc).isoformat(),
    }


def load_manifest(out_dir: Path | str) -> dict[str, Any]:
    """The manifest of an output folder, checked for its schema version and keys.

    Raises:
        FileNotFoundError: the folder has no manifest.json.
        SchemaError: the manifest is of another schema version.
        OutputError: it is not JSON, lacks a key or holds a value of the wrong type (`manifest_problem`).
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{Path(out_dir)}: no {MANIFEST_NAME} (not a synth output folder, or nothing committed)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, nesting too deep, a 5000-digit number
        raise OutputError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
    if not isinstance(manifest, dict):
        raise OutputError(f"{path}: expected a JSON object, found {type(manifest).__name__}")
    if missing := [k for k in _MANIFEST_KEYS if k not in manifest]:
        raise OutputError(f"{path}: missing key(s) {missing}")
    if manifest["schema_version"] != SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: synth schema version {str(manifest['schema_version'])[:40]}, this synth reads version "
            f"{SCHEMA_VERSION}"
        )
    if problem := manifest_problem(manifest):
        raise OutputError(f"{path}: {problem}")
    manifest.setdefault("attempts", 0)
    manifest.setdefault("commits", len(manifest["shards"]))
    return manifest


def manifest_problem(manifest: dict[str, Any]) -> str | None:
    """What in a parsed manifest a reader cannot use (first problem found), or None."""
    if not isinstance(manifest.get("config_sha256"), str):
        return f"config_sha256 must be text, found {_kind(manifest.get('config_sha256'))}"
    for key in _COUNTS:
        if key in manifest and not _is_count(manifest[key]):
            return f"{key} must be a non-negative integer, found {_kind(manifest[key])}"
    if not isinstance(manifest["shards"], list):
        return f"shards must be a list, found {_kind(manifest['shards'])}"
    for i, entry in enumerate(manifest["shards"]):
        if problem := _shard_entry_problem(entry):
            return f"shards[{i}]: {problem}"
    summary = manifest.get("summary")
    if summary is not None and not isinstance(summary, dict):
        return f"summary must be an object, found {_kind(summary)}"
    return _summary_problem(summary or {})


def _shard_entry_problem(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return f"must be an object, found {_kind(entry)}"
    if not isinstance(entry.get("path"), str) or not entry["path"]:
        return f"path must be a file name, found {_kind(entry.get('path'))}"
    if entry.get("kind") not in _SHARD_KINDS:
        return f"kind must be one of {', '.join(_SHARD_KINDS)}, found {str(entry.get('kind'))[:40]!r}"
    for key in ("rows", "bytes"):
        if key in entry and not _is_count(entry[key]):
            return f"{key} must be a non-negative integer, found {_kind(entry[key])}"
    ids = entry.get("item_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "item_ids must be a list of text"
    return None


def _summary_problem(summary: dict[str, Any]) -> str | None:
    """What keeps `Summary.from_dict` (which a resumed run calls) from reading a non-empty summary."""
    if not summary:
        return None
    for key in ("items", "rows", "rejects"):
        if not _is_count(summary.get(key)):
            return f"summary.{key} must be a non-negative integer, found {_kind(summary.get(key))}"
    stages = summary.get("stages")
    if not isinstance(stages, list):
        return f"summary.stages must be a list, found {_kind(stages)}"
    for i, line in enumerate(stages):
        ok = (isinstance(line, dict) and all(isinstance(line.get(k), str) for k in ("stage", "unit"))
              and all(_is_count(line.get(k)) for k in ("in", "out"))
              and isinstance(line.get("rejected"), dict)
              and all(_is_count(n) for n in line["rejected"].values())
              and isinstance(line.get("seconds"), (int, float)) and not isinstance(line["seconds"], bool))
        if not ok:
            return f"summary.stages[{i}] must be {{stage, unit, in, out, rejected, seconds}}, found {str(line)[:80]}"
    return None


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _kind(value: Any) -> str:
    return f"{type(value).__name__} {str(value)[:40]!r}"


def write_manifest(out_dir: Path | str, manifest: dict[str, Any]) -> None:
    """Write manifest.json atomically (temporary file, fsync, rename); sets `manifest["updated_at"]`."""
    out = Path(out_dir)
    manifest["updated_at"] = datetime.now(timezone.utc).isoformat()
    text = json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    tmp = out / (MANIFEST_NAME + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        file_sha256(tmp, fsync=True)
        os.replace(tmp, out / MANIFEST_NAME)
    except BaseException:
        remove_file(tmp)
        raise
    fsync_dir(out)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries: a rename is durable only once they are. (Some systems cannot
    open a folder; there, nothing is done.)"""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_file(path: Path) -> None:
    """Delete a file if it is there."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def file_sha256(path: Path | str, fsync: bool = False) -> str:
    """sha256 of a file's bytes, read in blocks; with `fsync`, also flush the file to disk."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
        if fsync:
            os.fsync(f.fileno())
    return digest.hexdigest()
