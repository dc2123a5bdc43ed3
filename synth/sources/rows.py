"""Turn one entry of a table (a JSONL line, a CSV row, a Parquet row) into an `Item` or a `BadItem`.

Fields, with what each may hold:
- `image` (required): a path (relative to the dataset's folder, or absolute), raw image bytes, or
  Hugging Face's image layout `{"bytes": ..., "path": ...}`.
- `question` (required): text. `answer` (required): text or a number (3 and 3.0 become "3").
- `id`: text or an integer; without it the id is a hash of source, position and image path.
- `task` (default from the source's options), `label` (the counted object's name): text.
- `points` [[x, y], ...], `boxes` [[x0, y0, x1, y1], ...] (absolute pixels of the upright image),
  `choices` [text, ...], `masks` [COCO RLE, ...]. In CSV these cells hold JSON.
A missing or empty value counts as absent. Unknown fields are ignored. Every problem of an entry
is reported at once, naming the file, the line or row, and the field.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from pycocotools import mask as mask_utils

from synth.core.records import Item
from synth.sources.base import BadItem, short_repr, stable_item_id

FIELDS = ("image", "question", "answer", "id", "task", "label", "points", "boxes", "choices", "masks")


class FieldProblem(ValueError):
    """One field of one entry is missing or holds a value of the wrong type."""


def is_number(value: Any) -> bool:
    """A finite int or float; bool is not a number here (True as a coordinate is a mistake)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _json_cell(value: Any) -> Any:
    """CSV cells (and careless JSONL) hold lists as JSON text; decode those, leave the rest."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise FieldProblem(f"must be JSON, found {short_repr(value)}") from None
    return value


def as_text(value: Any) -> str:
    if not isinstance(value, str):
        raise FieldProblem(f"must be text, found {type(value).__name__} {short_repr(value)}")
    return value.strip()


def as_answer(value: Any) -> str:
    if isinstance(value, str):
        return value.strip()
    if is_number(value):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    raise FieldProblem(f"must be text or a number, found {type(value).__name__} {short_repr(value)}")


def as_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return as_text(value)


def as_image(value: Any) -> tuple[str, bytes | None]:
    """(path, bytes) from a path, raw bytes or an `{"bytes", "path"}` struct."""
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, (bytes, bytearray)):
        return "", bytes(value)
    if isinstance(value, Mapping):
        data, path = value.get("bytes"), value.get("path")
        if data is not None and not isinstance(data, (bytes, bytearray)):
            raise FieldProblem(f"bytes must be binary, found {type(data).__name__}")
        if path is not None and not isinstance(path, str):
            raise FieldProblem(f"path must be text, found {type(path).__name__}")
        if not data and not path:
            raise FieldProblem("holds neither bytes nor a path")
        return (path or "").strip(), bytes(data) if data else None
    raise FieldProblem(f"must be a path, bytes or {{bytes, path}}, found {type(value).__name__}")


def as_number_lists(value: Any, size: int, what: str) -> list[list[float]]:
    value = _json_cell(value)
    if not isinstance(value, (list, tuple)):
        raise FieldProblem(f"must be a list of {what}, found {type(value).__name__} {short_repr(value)}")
    out = []
    for k, entry in enumerate(value):
        if not (isinstance(entry, (list, tuple)) and len(entry) == size and all(map(is_number, entry))):
            raise FieldProblem(f"entry {k} must be {what} ({size} finite numbers), found {short_repr(entry)}")
        out.append([float(v) for v in entry])
    return out


def as_boxes(value: Any) -> list[list[float]]:
    boxes = as_number_lists(value, 4, "[x0, y0, x1, y1]")
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if x1 < x0 or y1 < y0:
            raise FieldProblem(f"entry {k} must have x1 >= x0 and y1 >= y0 (XYXY), found {boxes[k]}")
    return boxes


def as_choices(value: Any) -> list[str]:
    value = _json_cell(value)
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise FieldProblem(f"must be a list of text, found {short_repr(value)}")
    return [c.strip() for c in value]


def as_masks(value: Any) -> list[dict[str, Any]]:
    """COCO RLE dicts; uncompressed (list) counts are compressed, so every mask has string counts."""
    value = _json_cell(value)
    if not isinstance(value, (list, tuple)):
        raise FieldProblem(f"must be a list of COCO RLE, found {short_repr(value)}")
    return [as_rle(rle, f"entry {k}") for k, rle in enumerate(value)]


def as_rle(rle: Any, where: str) -> dict[str, Any]:
    """One COCO RLE as `{"size": [h, w], "counts": str}`; raises FieldProblem naming `where`."""
    if not isinstance(rle, Mapping) or "size" not in rle or "counts" not in rle:
        raise FieldProblem(f"{where} must be COCO RLE {{size, counts}}, found {short_repr(rle)}")
    size, counts = rle["size"], rle["counts"]
    if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise FieldProblem(f"{where} size must be [height, width] positive integers, found {short_repr(size)}")
    h, w = int(size[0]), int(size[1])
    if isinstance(counts, str):
        return {"size": [h, w], "counts": counts}
    if isinstance(counts, list) and all(isinstance(c, int) and c >= 0 for c in counts):
        if sum(counts) != h * w:
            raise FieldProblem(f"{where} counts add up to {sum(counts)}, not height*width {h * w}")
        coded = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        return {"size": [h, w], "counts": coded["counts"].decode("ascii")}
    raise FieldProblem(f"{where} counts must be a string or a list of non-negative integers")


_CONVERTERS = {
    "image": as_image,
    "id": as_id,
    "question": as_text,
    "answer": as_answer,
    "task": as_text,
    "label": as_text,
    "points": lambda v: as_number_lists(v, 2, "[x, y]"),
    "boxes": as_boxes,
    "choices": as_choices,
    "masks": as_masks,
}


class RowParser:
    """Turns the entries of one source into items; remembers ids so that a repeated id is a bad item.

    `columns` maps a field name to the column that holds it when they differ (e.g. CountBenchQA's
    answer is the column `number`).
    """

    def __init__(self, source: str, default_task: str, columns: Mapping[str, str | None] | None = None):
        self.source = source
        self.default_task = default_task
        self.columns = {f: f for f in FIELDS} | dict(columns or {})
        self.seen_ids: set[str] = set()

    def bad(self, index: int | str, where: str, problem: str) -> BadItem:
        """A bad entry that is not even a mapping (a line that is not JSON, a broken CSV row)."""
        return BadItem(
            item_id=stable_item_id(self.source, index, ""), question="", answer="",
            task=self.default_task, source=self.source, problem=f"{where}: {problem}",
        )

    def parse(self, row: Mapping[str, Any], index: int | str, where: str) -> Item:
        """The entry at `index` (`where` says "items.jsonl line 7") as an Item, or a BadItem."""
        problems: list[str] = []
        values: dict[str, Any] = {}
        for name in FIELDS:
            column = self.columns.get(name)
            raw = row.get(column) if column else None
            if _absent(raw):
                if name in ("image", "question", "answer"):
                    problems.append(f"field {column!r} is missing")
                continue
            try:
                values[name] = _CONVERTERS[name](raw)
            except FieldProblem as exc:
                problems.append(f"field {column!r} {exc}")
        for name in ("question", "answer", "task", "id"):
            if values.get(name) == "":
                problems.append(f"field {self.columns[name]!r} is empty")
                values.pop(name)
        return self._build(values, index, where, problems)

    def _build(self, values: dict[str, Any], index: int | str, where: str, problems: list[str]) -> Item:
        path, data = values.pop("image", ("", None))
        item_id = values.pop("id", None)
        if item_id is not None and item_id in self.seen_ids:
            problems.append(f"id {item_id!r} repeats an earlier entry's id")
            item_id = None
        if item_id is None:
            item_id = stable_item_id(self.source, index, path)
        self.seen_ids.add(item_id)
        fields = dict(
            item_id=item_id, question=values.pop("question", ""), answer=values.pop("answer", ""),
            task=values.pop("task", self.default_task), image_path=path, image_bytes=data,
            source=self.source, **values,
        )
        if problems:
            return BadItem(**fields, problem=f"{where}: " + "; ".join(problems))
        return Item(**fields)
