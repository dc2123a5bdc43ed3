"""`synth export`: rows of an output folder written for a trainer, with hygiene and a report."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq

from synth.export.hygiene import load_exclusions, plan_hygiene
from synth.export.images import write_image
from synth.export.layouts import BUILDERS, TARGETS, schema
from synth.export.render import RenderOptions, render_row
from synth.export.source import iter_rows, row_keys, row_shards

log = logging.getLogger(__name__)

FileType = Literal["jsonl", "parquet"]
REPORT_NAME = "export.json"
_BATCH = 256  # rows per Parquet write: bounds memory, keeps row groups of a useful size


@dataclass
class ExportReport:
    """What an export read, dropped and wrote."""

    rows_read: int = 0
    excluded: int = 0
    duplicates: int = 0
    render_failed: int = 0
    written: int = 0
    files: list[str] = field(default_factory=list)
    render_failures: list[str] = field(default_factory=list)  # "id: reason", the first 20

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_file_type(target: str) -> FileType:
    """Parquet for the RL target (veRL and EasyR1 read Parquet), JSON Lines for the others."""
    return "parquet" if target == "verl" else "jsonl"


def export_output(
    output: Path | str,
    to: Path | str,
    target: str,
    render: RenderOptions = RenderOptions(),
    file_type: FileType | None = None,
    exclude_images: Path | str | None = None,
    dedup: bool = True,
    instruction: str | None = None,
) -> ExportReport:
    """Export the rows of `output` (a synth output folder or one rows shard) into folder `to`.

    Writes `to/<target>.<jsonl|parquet>`, images under `to/images/` for JSON Lines, for
    sharegpt a LLaMA-Factory `dataset_info.json`, and `to/export.json` (options and report).

    Raises:
        ValueError: an unknown target or file type, or an unreadable exclusion list.
        FileNotFoundError, SchemaError: the output cannot be read.
    """
    if target not in TARGETS:
        raise ValueError(f"unknown export format {target!r}; choices: {', '.join(TARGETS)}")
    file_type = file_type or default_file_type(target)
    if file_type not in ("jsonl", "parquet"):
        raise ValueError(f"unknown file type {file_type!r}; choices: jsonl, parquet")
    out_dir = Path(to)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards = row_shards(output)
    exclude = load_exclusions(exclude_images) if exclude_images else set()
    hygiene = plan_hygiene(row_keys(shards), exclude, dedup)
    report = ExportReport(excluded=len(hygiene.excluded), duplicates=len(hygiene.duplicates))
    dropped = hygiene.dropped
    data_path = out_dir / f"{target}.{file_type}"
    sink = _ParquetSink(data_path, schema(target, True)) if file_type == "parquet" else _JsonlSink(data_path)
    with sink:
        for row in iter_rows(shards):
            report.rows_read += 1
            if row["id"] in dropped:
                continue
            record = _record(row, target, render, file_type, out_dir, instruction, report)
            if record is not None:
                sink.write(record)
                report.written += 1
    report.files.append(data_path.name)
    if target == "sharegpt":
        report.files.append(_write_dataset_info(out_dir, data_path.name))
    _write_report(out_dir, output, target, render, file_type, exclude_images, dedup, instruction, report)
    log.info("export %s: %d rows read, %d excluded, %d duplicates, %d not renderable, %d written to %s",
             target, report.rows_read, report.excluded, report.duplicates, report.render_failed,
             report.written, data_path)
    return report


def _record(row: dict[str, Any], target: str, render: RenderOptions, file_type: FileType, out_dir: Path,
            instruction: str | None, report: ExportReport) -> dict[str, Any] | None:
    try:
        rendered = render_row(row, render)
    except ValueError as exc:  # one row's geometry cannot be rendered: skip it, count it, say why
        report.render_failed += 1
        if len(report.render_failures) < 20:
            report.render_failures.append(f"{row['id']}: {exc}")
        log.warning("row %s: not rendered (%s)", row["id"], exc)
        return None
    image = row["image"]
    if file_type == "parquet":
        images: list[Any] = [{"bytes": image["bytes"], "path": image.get("path") or f"{row['image_sha256']}"}]
    else:
        images = [write_image(image["bytes"], row["image_sha256"], out_dir)]
    extra = {"grounding": render.grounding, "frame": render.frame, "index": report.written} if target == "verl" else {}
    return BUILDERS[target](row, rendered, images, instruction, **extra)


class _JsonlSink:
    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")

    def __enter__(self) -> "_JsonlSink":
        self.file = open(self.tmp, "w", encoding="utf-8")
        return self

    def write(self, record: dict[str, Any]) -> None:
        self.file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.file.close()
        if exc_type is None:  # only a finished export replaces the file a trainer reads
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class _ParquetSink:
    def __init__(self, path: Path, arrow_schema: pa.Schema) -> None:
        self.path, self.tmp, self.schema = path, path.with_name(path.name + ".tmp"), arrow_schema
        self.pending: list[dict[str, Any]] = []

    def __enter__(self) -> "_ParquetSink":
        self.writer = pq.ParquetWriter(self.tmp, self.schema, compression="zstd")
        return self

    def write(self, record: dict[str, Any]) -> None:
        self.pending.append(record)
        if len(self.pending) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.Table.from_pylist(self.pending, schema=self.schema))
            self.pending = []

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        try:
            if exc_type is None:
                self._flush()
        finally:
            self.writer.close()
        if exc_type is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _write_dataset_info(out_dir: Path, file_name: str) -> str:
    """LLaMA-Factory's dataset_info.json naming the export "synth" in ShareGPT layout."""
    info = {"synth": {
        "file_name": file_name,
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "images": "images"},
        "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt"},
    }}
    (out_dir / "dataset_info.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return "dataset_info.json"


def _write_report(out_dir: Path, output: Path | str, target: str, render: RenderOptions, file_type: str,
                  exclude_images: Path | str | None, dedup: bool, instruction: str | None,
                  report: ExportReport) -> None:
    options = {"output": str(output), "format": target, "file_type": file_type, **asdict(render),
               "exclude_images": str(exclude_images) if exclude_images else None, "dedup": dedup,
               "instruction": instruction}
    text = json.dumps({"options": options, "report": report.as_dict()}, indent=2, ensure_ascii=False)
    (out_dir / REPORT_NAME).write_text(text + "\n", encoding="utf-8")
