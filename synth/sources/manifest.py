"""Manifests: JSONL, CSV or Parquet files with one item per line or row.

Each entry names its image by a path relative to the manifest's folder (or an absolute one; the
read stage refuses paths that leave the dataset root unless configured). Fields are described in
`synth.sources.rows`. Files are read as a stream: a line, a CSV row or a Parquet batch at a time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
from pydantic import Field

from synth.config.base import Strict
from synth.core.records import Item
from synth.sources.base import SourceError, source_name
from synth.sources.rows import RowParser

log = logging.getLogger(__name__)

#: (index, where, row or problem): a row is a dict; a problem is text saying why the entry is not one.
Entry = tuple[int, str, "dict[str, Any] | str"]

_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class ManifestOptions(Strict):
    """How to read a manifest file."""

    # auto: the suffix says it (.jsonl/.ndjson/.json, .csv, .parquet/.pq), which is how people name them.
    format: Literal["auto", "jsonl", "csv", "parquet"] = Field(
        "auto", description="file format; auto picks it from the file's suffix"
    )
    # counting is what most grounded-reasoning sets ask; a per-entry `task` overrides it.
    task: str = Field("counting", description="task of entries without a `task` field")


def manifest_format(path: Path, options: ManifestOptions) -> str:
    """The manifest's format, from the options or the suffix; raises SourceError when neither says."""
    if options.format != "auto":
        return options.format
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise SourceError(
            f"cannot tell the format of manifest {path} from its suffix {path.suffix!r}; "
            f"expected one of {', '.join(_SUFFIXES)} or set source.manifest.format"
        )
    return fmt


def iter_manifest(path: Path, options: ManifestOptions) -> Iterator[Item]:
    """Items of a manifest, in file order; bad entries come out as `BadItem`s."""
    fmt = manifest_format(path, options)
    parser = RowParser(source_name("manifest", path), options.task)
    entries = {"jsonl": iter_jsonl, "csv": iter_csv, "parquet": iter_parquet}[fmt](path)
    for index, where, row in entries:
        yield parser.bad(index, where, row) if isinstance(row, str) else parser.parse(row, index, where)


def _open(path: Path, what: str) -> io.BufferedReader:
    if not path.exists():
        raise SourceError(f"{what} {path} does not exist")
    if not path.is_file():
        raise SourceError(f"{what} {path} is not a file")
    try:
        return open(path, "rb")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise SourceError(f"cannot open {what} {path}: {exc}") from exc


#: The longest JSONL line read (64 MiB): an entry is a few hundred bytes, even with masks a few
#: MB; a longer line is hostile or broken, and is skipped without being held in memory.
MAX_LINE_BYTES = 64 * 2**20


def iter_jsonl(path: Path, what: str = "manifest") -> Iterator[Entry]:
    """One entry per non-blank line; a line that is not UTF-8 or not a JSON object is a problem entry."""
    with _open(path, what) as f:
        lineno = 0
        while raw := f.readline(MAX_LINE_BYTES + 1):
            lineno += 1
            where = f"{path.name} line {lineno}"
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while (rest := f.readline(2**20)) and not rest.endswith(b"\n"):
                    pass
                yield lineno, where, f"longer than {MAX_LINE_BYTES} bytes"
                continue
            row = _json_object(raw, lineno)
            if row is not None:  # blank lines are no entries
                yield lineno, where, row


def _json_object(raw: bytes, lineno: int) -> "dict[str, Any] | str | None":
    """The line as a JSON object, text saying why it is not one, or None for a blank line."""
    try:
        text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 ({exc.reason} at byte {exc.start})"
    if not text.strip():
        return None
    try:
        row = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return f"not valid JSON ({getattr(exc, 'msg', 'nested too deeply')} at column {getattr(exc, 'colno', '?')})"
    if not isinstance(row, dict):
        return f"expected a JSON object, found {type(row).__name__}"
    return row


def iter_csv(path: Path) -> Iterator[Entry]:
    """One entry per CSV row after the header; lines are counted as in the file (header = line 1)."""
    raw = _open(path, "manifest")
    with io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        try:
            if not reader.fieldnames:
                raise SourceError(f"CSV manifest {path} has no header line")
        except csv.Error as exc:
            raise SourceError(f"cannot read the header of CSV manifest {path}: {exc}") from exc
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader moves past a malformed line, so the rest of the file still reads.
                yield reader.line_num, f"{path.name} line {reader.line_num}", f"not valid CSV ({exc})"
                continue
            where = f"{path.name} line {reader.line_num}"
            if any("\ufffd" in v for v in row.values() if isinstance(v, str)):
                yield reader.line_num, where, "not valid UTF-8"
                continue
            yield reader.line_num, where, {k: v for k, v in row.items() if k is not None}


def iter_parquet(path: Path, batch_size: int = 64) -> Iterator[Entry]:
    """One entry per row (rows counted from 1), read a batch at a time so embedded images stream."""
    if not path.exists():
        raise SourceError(f"Parquet file {path} does not exist")
    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many types on foreign or hostile files
        raise SourceError(f"cannot read Parquet file {path}: {exc}") from exc
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            for row in batch.to_pylist():
                index += 1
                yield index, f"{path.name} row {index}", row
    except Exception as exc:  # noqa: BLE001 - as above; the consumer's own errors pass through generators
        raise SourceError(f"cannot read Parquet file {path} after row {index}: {exc}") from exc
