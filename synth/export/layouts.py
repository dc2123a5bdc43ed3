"""The record layout of each export target, and its explicit Parquet schema.

Targets:
- ``trl``: TRL's vision SFT layout: ``messages`` (user: an image part and the question;
  assistant: the grounded trace) and ``images``.
- ``sharegpt``: LLaMA-Factory's ShareGPT layout: ``conversations`` of {from, value} with an
  ``<image>`` placeholder, and ``images``.
- ``verl``: the RL parquet veRL and EasyR1 read: ``prompt`` (chat), ``problem`` (EasyR1's
  prompt key), ``answer``, ``images``, ``data_source``, ``ability``,
  ``reward_model: {style, ground_truth}``, ``extra_info`` and the target instances as JSON
  (``targets``, ``boxes``, ``points``, ``masks``), which `synth.rewards.verl` scores against.
- ``dual``: iVGR's pair of streams: ``grounded`` and ``text_only`` for the same reasoning.
- ``coords``: NV-CoT's numbers: the grounded ``text`` and, per coordinate, its tag's character
  span, kind, phrase and float values (frame and pixels), aligned by index.

Images are ``images/<sha256>.<ext>`` paths in JSON Lines and ``{bytes, path}`` structs (the
Hugging Face datasets Image layout) in Parquet.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pyarrow as pa

from synth.export.render import Rendered

TARGETS = ("trl", "sharegpt", "verl", "dual", "coords")
IMAGE_PLACEHOLDER = "<image>"

_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_TEXT_PART = pa.struct([("type", pa.string()), ("text", pa.string())])


def _images_type(embed: bool) -> pa.DataType:
    return pa.list_(_IMAGE if embed else pa.string())


def user_text(row: dict[str, Any], instruction: str | None) -> str:
    """The question, followed by the instruction when one is given."""
    question = str(row.get("question") or "")
    return f"{question}\n{instruction}" if instruction else question


def _trl(row: dict[str, Any], r: Rendered, images: list, instruction: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "messages": [
            {"role": "user", "content": [{"type": "image"},
                                         {"type": "text", "text": user_text(row, instruction)}]},
            {"role": "assistant", "content": [{"type": "text", "text": r.grounded}]},
        ],
        "images": images,
    }


def _sharegpt(row: dict[str, Any], r: Rendered, images: list, instruction: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "conversations": [
            {"from": "human", "value": IMAGE_PLACEHOLDER + user_text(row, instruction)},
            {"from": "gpt", "value": r.grounded},
        ],
        "images": images,
    }


def targets_json(row: dict[str, Any], r: Rendered, grounding: str, frame: str) -> str:
    """What a reward needs to score a rollout against this row, as JSON (see synth.rewards.verl)."""
    return json.dumps({
        "id": row["id"], "task": row.get("task"), "answer": row.get("answer"),
        "image_width": row["image_width"], "image_height": row["image_height"],
        "grounding": grounding, "frame": frame, "geometry": r.geometry,
        "objects": [
            {"phrase": o["phrase"], "expected_count": o.get("expected_count"),
             "instances": [{"box": list(i["box"]), "point": list(i["point"]), "mask": i["mask"]}
                           for i in o.get("instances") or []]}
            for o in row.get("objects") or []
        ],
    }, ensure_ascii=False, separators=(",", ":"))


def _verl(row: dict[str, Any], r: Rendered, images: list, instruction: str | None, *, grounding: str = "",
          frame: str = "", index: int = 0) -> dict[str, Any]:
    prompt = IMAGE_PLACEHOLDER + user_text(row, instruction)
    instances = [i for o in row.get("objects") or [] for i in o.get("instances") or []]
    targets = targets_json(row, r, grounding, frame)
    source = (row.get("provenance") or {}).get("source") or "unknown"
    return {
        "id": row["id"],
        "data_source": f"synth/{source}",
        "prompt": [{"role": "user", "content": prompt}],
        "problem": prompt,
        "answer": str(row.get("answer") or ""),
        "images": images,
        "ability": str(row.get("task") or ""),
        "reward_model": {"style": "rule", "ground_truth": str(row.get("answer") or "")},
        "extra_info": {"index": index, "id": row["id"], "item_id": row["item_id"], "split": "train",
                       "grounded_format": r.grounded_format, "targets": targets},
        "targets": targets,
        "boxes": json.dumps([list(i["box"]) for i in instances]),
        "points": json.dumps([list(i["point"]) for i in instances]),
        "masks": json.dumps([i["mask"] for i in instances]),
        "reference": r.grounded,
    }


def _dual(row: dict[str, Any], r: Rendered, images: list, instruction: str | None) -> dict[str, Any]:
    return {
        "id": row["id"], "item_id": row["item_id"], "question": user_text(row, instruction),
        "answer": str(row.get("answer") or ""), "images": images, "grounded_format": r.grounded_format,
        "grounded": r.grounded, "text_only": r.text_only,
    }


def _coords(row: dict[str, Any], r: Rendered, images: list, instruction: str | None) -> dict[str, Any]:
    ex, ey = r.frame.extent
    c = r.coordinates
    return {
        "id": row["id"], "item_id": row["item_id"], "question": user_text(row, instruction),
        "answer": str(row.get("answer") or ""), "images": images, "grounded_format": r.grounded_format,
        "frame_width": float(ex), "frame_height": float(ey), "text": r.grounded,
        "coord_start": [x.start for x in c], "coord_end": [x.end for x in c], "coord_kind": [x.kind for x in c],
        "coord_phrase": [x.phrase for x in c], "coord_values": [x.values for x in c],
        "coord_values_px": [x.values_px for x in c],
    }


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "trl": _trl, "sharegpt": _sharegpt, "verl": _verl, "dual": _dual, "coords": _coords,
}


def schema(target: str, embed_images: bool) -> pa.Schema:
    """The explicit Parquet schema of a target (images embedded as {bytes, path} or as paths)."""
    images = pa.field("images", _images_type(embed_images))
    fields: dict[str, list[Any]] = {
        "trl": [("id", pa.string()),
                ("messages", pa.list_(pa.struct([("role", pa.string()), ("content", pa.list_(_TEXT_PART))]))),
                images],
        "sharegpt": [("id", pa.string()),
                     ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
                     images],
        "verl": [("id", pa.string()), ("data_source", pa.string()),
                 ("prompt", pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))),
                 ("problem", pa.string()), ("answer", pa.string()), images, ("ability", pa.string()),
                 ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
                 ("extra_info", pa.struct([("index", pa.int64()), ("id", pa.string()), ("item_id", pa.string()),
                                           ("split", pa.string()), ("grounded_format", pa.string()),
                                           ("targets", pa.string())])),
                 ("targets", pa.string()), ("boxes", pa.string()), ("points", pa.string()), ("masks", pa.string()),
                 ("reference", pa.string())],
        "dual": [("id", pa.string()), ("item_id", pa.string()), ("question", pa.string()), ("answer", pa.string()),
                 images, ("grounded_format", pa.string()), ("grounded", pa.string()), ("text_only", pa.string())],
        "coords": [("id", pa.string()), ("item_id", pa.string()), ("question", pa.string()), ("answer", pa.string()),
                   images, ("grounded_format", pa.string()), ("frame_width", pa.float64()),
                   ("frame_height", pa.float64()), ("text", pa.string()),
                   ("coord_start", pa.list_(pa.int32())), ("coord_end", pa.list_(pa.int32())),
                   ("coord_kind", pa.list_(pa.string())), ("coord_phrase", pa.list_(pa.string())),
                   ("coord_values", pa.list_(pa.list_(pa.float64()))),
                   ("coord_values_px", pa.list_(pa.list_(pa.float64())))],
    }
    if target not in fields:
        raise ValueError(f"unknown export target {target!r}; choices: {', '.join(TARGETS)}")
    return pa.schema([f if isinstance(f, pa.Field) else pa.field(*f) for f in fields[target]])
