"""An `ItemRecord` becomes row dicts and reject dicts, laid out exactly as `schemas/v1.json` says.

Every live candidate of a live item becomes one row; every rejected candidate, or the item itself
when it was rejected whole, becomes one reject. So each item that reaches the writer appears by
`item_id` among the rows or the rejects, and nothing disappears silently.

Geometry is copied as it is in the record: absolute pixels of the original upright image, boxes
XYXY with pixel edges, points (x, y), masks COCO RLE `{"size": [h, w], "counts": str}`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from synth import __version__
from synth.core.records import Candidate, GroundedObject, Instance, Item, ItemRecord
from synth.core.schema import Kind, arrow_schema, required_columns

if TYPE_CHECKING:  # the run context lives with the stages; core only reads two attributes of it
    from synth.stages.base import RunContext


def row_id(item_id: str, config_sha256: str, sample_index: int) -> str:
    """The stable id of a row: sha256 of its item id, config hash and sample index.

    The three values are hashed as a JSON list so that no pair of inputs can run together
    ("a1" + "2" and "a" + "12" hash differently).
    """
    payload = json.dumps([item_id, config_sha256, int(sample_index)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def record_to_rows(
    record: ItemRecord, context: RunContext, segmenter: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rows (one per live candidate) and rejects (the item's, or one per rejected candidate).

    Args:
        record: an item at the end of the pipeline.
        context: the run's context; `config_sha256` and `synth_version` go into every row.
        segmenter: the segmenter backend and checkpoint, recorded in each row's provenance.

    Raises:
        ValueError: the record is alive but has no candidate at all, so it would vanish; a stage
            upstream broke its contract (it must reject the item instead).
    """
    now = datetime.now(timezone.utc)
    item_json = _item_json(record.item)
    if record.reject is not None:
        reject = record.reject
        return [], [_reject_dict(record.item.item_id, reject.stage, reject.reason, reject.detail,
                                 None, None, None, item_json, context.config_sha256, now)]
    if not record.candidates:
        raise ValueError(
            f"item {record.item.item_id!r} is alive but has no candidates; the teach stage must "
            f"reject it (e.g. teach/teacher_error) so it appears among the rejects"
        )
    rows, rejects = [], []
    for candidate in record.candidates:
        if candidate.reject is None:
            rows.append(_row_dict(record, candidate, context, segmenter, now))
            continue
        r = candidate.reject
        rejects.append(_reject_dict(record.item.item_id, r.stage, r.reason, r.detail, candidate.sample_index,
                                    candidate.text, candidate.final_answer, item_json,
                                    context.config_sha256, now))
    return rows, rejects


def rows_to_table(rows: list[dict[str, Any]], kind: Kind) -> pa.Table:
    """A table of `kind` ("rows" or "rejects") with the explicit contract schema, never inferred.

    Raises:
        ValueError: a dict has a key the schema lacks, a required value is null, or a value has
            the wrong type; the message names the row (its id or item_id) and the column.
    """
    schema = arrow_schema(kind)
    names = set(schema.names)
    for i, row in enumerate(rows):
        unknown = sorted(set(row) - names)
        if unknown:
            raise ValueError(f"{kind} {_row_name(row, i)}: unknown column(s) {unknown}; schema has {schema.names}")
        for column in required_columns(kind):
            if row.get(column) is None:
                raise ValueError(f"{kind} {_row_name(row, i)}: column {column!r} is required but is null/missing")
    try:
        return pa.Table.from_pylist(rows, schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
        raise ValueError(f"{kind} {_first_bad_row(rows, schema)}: does not fit schema: {exc}") from exc


def _first_bad_row(rows: list[dict[str, Any]], schema: pa.Schema) -> str:
    # Converting row by row is slow, so it only runs to name the culprit after a failure.
    for i, row in enumerate(rows):
        try:
            pa.Table.from_pylist([row], schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            return _row_name(row, i)
    return "(some row)"


def _row_name(row: dict[str, Any], index: int) -> str:
    if row.get("id"):
        return f"#{index} id={row['id']}"
    return f"#{index} item_id={row.get('item_id')!r}"


def _row_dict(
    record: ItemRecord, candidate: Candidate, context: RunContext, segmenter: str, now: datetime
) -> dict[str, Any]:
    item, teacher = record.item, record.teacher
    image_sha = record.image_sha256 or hashlib.sha256(record.image_bytes).hexdigest()
    return {
        "id": row_id(item.item_id, context.config_sha256, candidate.sample_index),
        "item_id": item.item_id,
        "task": item.task,
        "question": item.question,
        "answer": item.answer,
        "image": {"bytes": record.image_bytes, "path": item.image_path},
        "image_width": int(record.width),
        "image_height": int(record.height),
        "image_sha256": image_sha,
        "trace": candidate.text,
        "final_answer": candidate.final_answer,
        "objects": [_object_dict(o) for o in candidate.objects],
        "grounded_trace": candidate.grounded_trace,
        "grounded_format": candidate.grounded_format,
        "teacher": {
            "backend": teacher.backend,
            "model": teacher.model,
            "prompt_sha256": teacher.prompt_sha256,
            "sampling": json.dumps(teacher.sampling, sort_keys=True, default=_json_default),
            "sample_index": int(candidate.sample_index),
            "n_sampled": int(teacher.n_sampled),
            "n_correct": int(teacher.n_correct),
            "finish_reason": candidate.finish_reason,
            "prompt_tokens": int(candidate.prompt_tokens),
            "completion_tokens": int(candidate.completion_tokens),
        },
        "provenance": {
            "synth_version": context.synth_version or __version__,
            "config_sha256": context.config_sha256,
            "segmenter": segmenter,
            "source": item.source,
            "created_at": now,
        },
    }


def _object_dict(obj: GroundedObject) -> dict[str, Any]:
    return {
        "phrase": obj.phrase,
        "spans": [{"start": int(s), "end": int(e)} for s, e in obj.spans],
        "expected_count": None if obj.expected_count is None else int(obj.expected_count),
        "proposal_source": obj.proposal_source,
        "retries": int(obj.retries),
        "score": float(obj.score),
        "instances": [_instance_dict(inst) for inst in obj.instances],
    }


def _instance_dict(inst: Instance) -> dict[str, Any]:
    counts = inst.mask["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    elif not isinstance(counts, str):
        raise ValueError(f"instance mask counts must be compressed RLE (str or bytes), got {type(counts).__name__}")
    return {
        "mask": {"size": [int(v) for v in inst.mask["size"]], "counts": counts},
        "box": [float(v) for v in inst.box],
        "point": [float(v) for v in inst.point],
        "score": float(inst.score),
    }


def _reject_dict(
    item_id: str, stage: str, reason: str, detail: str, sample_index: int | None, trace: str | None,
    final_answer: str | None, item_json: str, config_sha256: str, now: datetime,
) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "stage": stage,
        "reason": reason,
        "detail": detail or "",
        "sample_index": None if sample_index is None else int(sample_index),
        "trace": trace,
        "final_answer": final_answer,
        "item": item_json,
        "config_sha256": config_sha256,
        "created_at": now,
    }


def _item_json(item: Item) -> str:
    return json.dumps(item.to_json(), ensure_ascii=False, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    # Annotations often arrive as numpy arrays or scalars; JSON has no type for them.
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    raise TypeError(f"cannot write {type(value).__name__} as JSON")

