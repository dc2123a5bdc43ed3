"""What an output holds, as plain JSON-able numbers: rows, rejects by stage and reason, objects and
instances per row, instance sizes, grounded formats, teachers, segmenters, teacher pass rates."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pyarrow as pa

from synth.core.geometry import rle_area
from synth.core.schema import SCHEMA_VERSION
from synth.core.shards import Output

#: Edges of the instance-size histogram, as fractions of the image area.
AREA_EDGES = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0000001)
#: Teach-stage reasons meaning the trace was wrong or unusable; other rejects came after a correct trace.
_WRONG_TRACE = {"answer_wrong", "answer_unparseable", "truncated", "teacher_error", "teacher_timeout"}


def summarize(output: Output) -> dict[str, Any]:
    """The summary of an output folder or a single shard (see the module docstring)."""
    rows, rejects = output.rows, output.rejects
    row_items = set(_column(rows, "item_id"))
    reject_items = set(_column(rejects, "item_id"))
    whole = {i for i, s in zip(_column(rejects, "item_id"), _column(rejects, "sample_index")) if s is None}
    objects = _column(rows, "objects")
    teacher = _column(rows, "teacher")
    provenance = _column(rows, "provenance")
    manifest = output.manifest
    return {
        "path": str(output.path),
        "source": "folder" if manifest is not None else "shard",
        "schema_version": SCHEMA_VERSION,
        "config_sha256": _distinct([p["config_sha256"] for p in provenance] + _column(rejects, "config_sha256")),
        "rows": rows.num_rows,
        "rejects": rejects.num_rows,
        "items": {
            "seen": len(row_items | reject_items),
            "with_rows": len(row_items),
            "rejected_whole": len(whole),
            "in_manifest": None if manifest is None else manifest.get("items_in"),
        },
        "rejects_by_stage": _counts(_column(rejects, "stage")),
        "rejects_by_reason": _counts(f"{s}/{r}" for s, r in zip(_column(rejects, "stage"), _column(rejects, "reason"))),
        "tasks": _counts(_column(rows, "task")),
        "objects_per_row": _distribution([len(objs) for objs in objects]),
        "instances_per_row": _distribution([sum(len(o["instances"] or []) for o in objs) for objs in objects]),
        "instance_area_fraction": _area_histogram(objects, _column(rows, "image_width"), _column(rows, "image_height")),
        "grounded_formats": _counts(_column(rows, "grounded_format")),
        "teacher_models": _counts(t["model"] for t in teacher),
        "teacher_backends": _counts(t["backend"] for t in teacher),
        "segmenters": _counts(p["segmenter"] for p in provenance),
        "pass_rate": _pass_rates(rows, rejects),
        "manifest": _manifest_part(manifest),
    }


def _column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist() if table.num_rows else []


def _counts(values: Any) -> dict[str, int]:
    return dict(Counter(str(v) for v in values).most_common())


def _distinct(values: list[Any]) -> list[str]:
    return sorted({str(v) for v in values if v})


def _distribution(values: list[int]) -> dict[str, Any]:
    if not values:
        return {"min": None, "mean": None, "max": None, "histogram": {}}
    histogram = Counter(values)
    return {
        "min": min(values),
        "mean": round(sum(values) / len(values), 3),
        "max": max(values),
        "histogram": {str(k): histogram[k] for k in sorted(histogram)},
    }


def _area_histogram(objects: list[list[dict]], widths: list[int], heights: list[int]) -> dict[str, Any]:
    fractions = []
    for objs, w, h in zip(objects, widths, heights):
        pixels = max(int(w) * int(h), 1)
        for obj in objs:
            for inst in obj["instances"] or []:
                try:
                    fractions.append(rle_area(inst["mask"]) / pixels)
                except (ValueError, TypeError, KeyError):  # a broken mask: --validate names it
                    continue
    bins = Counter()
    for f in fractions:
        for lo, hi in zip(AREA_EDGES, AREA_EDGES[1:]):
            if lo <= f < hi:
                bins[f"{lo:g}-{min(hi, 1.0):g}"] += 1
                break
    labels = [f"{lo:g}-{min(hi, 1.0):g}" for lo, hi in zip(AREA_EDGES, AREA_EDGES[1:])]
    fractions.sort()
    return {
        "instances": len(fractions),
        "median": round(fractions[len(fractions) // 2], 5) if fractions else None,
        "histogram": {label: bins[label] for label in labels},
    }


def _pass_rates(rows: pa.Table, rejects: pa.Table) -> dict[str, Any]:
    """Per item: correct traces / sampled traces, as the teacher reported them or as the rejects show.

    Items with rows carry the teacher's own n_correct / n_sampled. Items whose every trace was
    rejected get it from their trace rejects: a trace rejected after teach (or over the keep limit)
    was correct. Items rejected whole have no pass rate.
    """
    rates: dict[str, float] = {}
    for item_id, t in zip(_column(rows, "item_id"), _column(rows, "teacher")):
        if item_id not in rates and t["n_sampled"]:
            rates[item_id] = t["n_correct"] / t["n_sampled"]
    traces: dict[str, list[int]] = {}
    for item_id, stage, reason, sample in zip(_column(rejects, "item_id"), _column(rejects, "stage"),
                                              _column(rejects, "reason"), _column(rejects, "sample_index")):
        if sample is None or item_id in rates:
            continue
        sampled_correct = traces.setdefault(item_id, [0, 0])
        sampled_correct[0] += 1
        sampled_correct[1] += not (stage == "teach" and reason in _WRONG_TRACE)
    rates.update({i: c / n for i, (n, c) in traces.items()})
    values = list(rates.values())
    bins = Counter(min(int(v * 10), 9) for v in values)
    return {
        "items": len(values),
        "mean": round(sum(values) / len(values), 4) if values else None,
        "histogram": {f"{b / 10:.1f}-{(b + 1) / 10:.1f}": bins[b] for b in range(10)},
    }


def _manifest_part(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    if manifest is None:
        return None
    return {
        "config_sha256": manifest.get("config_sha256"),
        "synth_version": manifest.get("synth_version"),
        "items_in": manifest.get("items_in"),
        "rows": manifest.get("rows"),
        "rejects": manifest.get("rejects"),
        "shards": len(manifest.get("shards", [])),
        "attempts": manifest.get("attempts"),
        "stages": (manifest.get("summary") or {}).get("stages"),
    }
