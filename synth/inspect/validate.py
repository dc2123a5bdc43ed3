"""Every row against the contract, and an output folder against its manifest.

A row passes when its image decodes to the stated size and sha256; every mask decodes to
[image_height, image_width] and is not empty; every box lies inside the image and is the tight box
of its mask; every point lies inside its mask; every span lies inside the trace and covers its
phrase (case-insensitive); and its id is the sha256 of item_id, config and sample index.
A folder passes when every item of the manifest appears by item_id among the rows or rejects,
the manifest's counts and hashes match its shards, and the run summary adds up.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq
from PIL import Image

from synth.core.geometry import point_in_mask, rle_to_mask, rle_to_xyxy
from synth.core.phrases import same_object
from synth.core.records import check_reason
from synth.core.rows import row_id
from synth.core.shards import Output, file_sha256

#: Float tolerance for box coordinates, which are whole pixel edges stored as float64.
BOX_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Problem:
    """One failed check: `where` names the row (by id), reject, shard or manifest; `what` says why."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"

    def to_dict(self) -> dict[str, str]:
        return {"where": self.where, "what": self.what}


def validate_output(output: Output) -> list[Problem]:
    """All problems of an output (a folder or one shard); an empty list means it keeps the contract."""
    problems: list[Problem] = []
    ids: Counter[str] = Counter()
    for batch in output.rows.to_batches(max_chunksize=64):
        for row in batch.to_pylist():
            ids[row["id"]] += 1
            problems += [Problem(f"row {row['id']}", what) for what in row_problems(row)]
    problems += [Problem(f"row {i}", f"id appears {n} times") for i, n in ids.items() if n > 1]
    for index, reject in enumerate(output.rejects.to_pylist()):
        where = f"reject #{index} (item {reject['item_id']})"
        problems += [Problem(where, what) for what in reject_problems(reject)]
    if output.manifest is not None:
        problems += manifest_problems(output)
    return problems


def row_problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with one row (dict as read from a shard); empty when it keeps the contract."""
    problems = []
    sample_index = row["teacher"]["sample_index"]
    if sample_index is None:
        problems.append("teacher.sample_index is null")
    else:
        expected_id = row_id(row["item_id"], row["provenance"]["config_sha256"] or "", sample_index)
        if row["id"] != expected_id:
            problems.append(f"id is not sha256(item_id, config_sha256, sample_index) = {expected_id[:12]}…")
    problems += _image_problems(row)
    width, height = row["image_width"], row["image_height"]
    trace = row["trace"]
    for j, obj in enumerate(row["objects"]):
        label = f"objects[{j}] {obj['phrase']!r}"
        problems += [f"{label}: {p}" for p in _span_problems(obj, trace)]
        for k, inst in enumerate(obj["instances"] or []):
            problems += [f"{label} instance {k}: {p}" for p in _instance_problems(inst, width, height)]
    return problems


def _image_problems(row: dict[str, Any]) -> list[str]:
    data = (row["image"] or {}).get("bytes") or b""
    width, height = row["image_width"], row["image_height"]
    if not data:
        return ["image bytes are empty"]
    problems = []
    if hashlib.sha256(data).hexdigest() != row["image_sha256"]:
        problems.append("image_sha256 does not match the sha256 of image.bytes")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except Exception as exc:  # PIL raises many types for bad bytes; any of them means "does not decode"
        return problems + [f"image bytes do not decode ({type(exc).__name__}: {exc})"]
    if size != (width, height):
        problems.append(f"image decodes to {size[0]}x{size[1]}, row says image_width x image_height = {width}x{height}")
    return problems


def _span_problems(obj: dict[str, Any], trace: str) -> list[str]:
    if not obj["spans"]:
        return ["has no span in the trace"]
    if not obj["phrase"]:
        return ["phrase is empty"]
    problems = []
    phrase = obj["phrase"]
    for span in obj["spans"]:
        start, end = span["start"], span["end"]
        if start is None or end is None or not 0 <= start < end <= len(trace):
            problems.append(f"span [{start}, {end}) lies outside the trace of {len(trace)} characters")
        elif not same_object(trace[start:end], phrase):
            # A mention may differ from the phrase in case and number ("a coin" grounds "coins").
            problems.append(f"span [{start}, {end}) reads {trace[start:end]!r}, which does not name the phrase")
    return problems


def _instance_problems(inst: dict[str, Any], width: int, height: int) -> list[str]:
    mask_rle, box, point = inst["mask"], inst["box"], inst["point"]
    if mask_rle is None or mask_rle["size"] is None or mask_rle["counts"] is None:
        return ["mask is missing"]
    problems = []
    if list(mask_rle["size"]) != [height, width]:
        problems.append(f"mask size {list(mask_rle['size'])} is not [image_height, image_width] = [{height}, {width}]")
    try:
        mask = rle_to_mask(mask_rle)
        tight = rle_to_xyxy(mask_rle)
    except Exception as exc:  # pycocotools raises bare ValueError/TypeError/UnicodeError for bad counts
        return problems + [f"mask does not decode ({type(exc).__name__}: {exc})"]
    if tight is None:
        return problems + ["mask is empty"]
    if box is None or not all(math.isfinite(v) for v in box):
        problems.append(f"box {box} is not four finite numbers")
    else:
        x0, y0, x1, y1 = box
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            problems.append(f"box {_fmt(box)} is not inside the {width}x{height} image")
        if any(abs(a - b) > BOX_TOLERANCE for a, b in zip(box, tight)):
            problems.append(f"box {_fmt(box)} is not the tight box of its mask {_fmt(tight)}")
    if point is None or not point_in_mask(point, mask):
        problems.append(f"point {_fmt(point)} lies outside its mask")
    return problems


def _fmt(values: Any) -> str:
    if values is None:
        return "None"
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def reject_problems(reject: dict[str, Any]) -> list[str]:
    """What is wrong with one reject row: an undocumented reason code, an item that cannot be retried."""
    problems = []
    try:
        check_reason(reject["stage"], reject["reason"])
    except ValueError as exc:
        problems.append(str(exc))
    try:
        item = json.loads(reject["item"])
    except json.JSONDecodeError as exc:
        return problems + [f"item is not JSON ({exc})"]
    if not isinstance(item, dict) or item.get("item_id") != reject["item_id"]:
        problems.append("item JSON does not carry the reject's item_id")
    return problems


def manifest_problems(output: Output) -> list[Problem]:
    """The manifest against its shards: hashes, counts, item coverage, the run summary."""
    manifest = output.manifest or {}
    problems: list[Problem] = []
    listed_items: set[str] = set()
    for entry, path in zip(manifest["shards"], output.shard_paths):
        where = f"shard {entry['path']}"
        if entry.get("sha256") and file_sha256(path) != entry["sha256"]:
            problems.append(Problem(where, "sha256 differs from the manifest's"))
        held = pq.ParquetFile(path).metadata.num_rows
        if held != entry.get("rows"):
            problems.append(Problem(where, f"holds {held} rows, manifest says {entry.get('rows')}"))
        listed_items.update(entry.get("item_ids", []))
    seen = set(output.rows.column("item_id").to_pylist()) | set(output.rejects.column("item_id").to_pylist())
    missing = sorted(listed_items - seen)
    if missing:
        problems.append(Problem("manifest", f"{len(missing)} item(s) appear in no row and no reject: {missing[:10]}"))
    if unlisted := sorted(seen - listed_items):
        problems.append(Problem("manifest", f"{len(unlisted)} item(s) have rows or rejects but are not listed: {unlisted[:10]}"))
    counts = {"rows": output.rows.num_rows, "rejects": output.rejects.num_rows, "items_in": len(listed_items)}
    for key, found in counts.items():
        if manifest.get(key) != found:
            problems.append(Problem("manifest", f"{key} is {manifest.get(key)}, the shards hold {found}"))
    problems += _summary_problems(manifest.get("summary") or {}, counts)
    return problems


def _summary_problems(summary: dict[str, Any], counts: dict[str, int]) -> list[Problem]:
    """The run's per-stage summary (if it has the runner's shape) must add up and match the shards."""
    problems = []
    for key, found in (("items", counts["items_in"]), ("rows", counts["rows"]), ("rejects", counts["rejects"])):
        if key in summary and summary[key] != found:
            problems.append(Problem("summary", f"{key} is {summary[key]}, the shards hold {found}"))
    for line in summary.get("stages") or []:
        try:
            n_in, n_out, rejected = line["in"], line["out"], sum(line["rejected"].values())
        except (KeyError, TypeError, AttributeError):
            continue
        if n_in != n_out + rejected:
            where = f"summary {line.get('stage')}/{line.get('unit')}"
            problems.append(Problem(where, f"in {n_in} != out {n_out} + rejected {rejected}"))
    return problems
