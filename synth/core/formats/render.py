"""Rendering: canonical geometry written into a trace in a format and frame."""

from __future__ import annotations

import html
import json
import re
from typing import Literal

import numpy as np

from synth.core.formats.frames import ARITY, FRAME_DECIMALS, Frame, check_format
from synth.core.records import GroundedObject


def render_trace(
    trace: str,
    objects: list[GroundedObject],
    fmt: str,
    frame: Frame,
    geometry: Literal["point", "box"],
    answer: str | None = None,
) -> str:
    """The trace with each object's grounding right after the first span of its phrase.

    Objects without instances get no markup. An object without spans is anchored at the first
    whole-word occurrence of its phrase. For molmo, whose markup wraps the phrase, an object whose span
    overlaps one already wrapped uses its next span. `answer` is used by ivgr only: the result
    is ``<think>trace</think><answer>answer</answer>`` (no answer tag when it is None).

    Raises:
        ValueError: an unknown format or geometry, a span outside the trace, an object that
            cannot be anchored, or non-finite instance geometry (annotate's `render_failed`).
    """
    check_format(fmt)
    if geometry not in ARITY:
        raise ValueError(f"unknown geometry {geometry!r}; choices: point, box")
    kind = {"ivgr": "box", "molmo": "point"}.get(fmt, geometry)
    edits: list[tuple[int, int, str]] = []
    wrapped: list[tuple[int, int]] = []
    for obj in objects:
        if not obj.instances:
            continue
        start, end = _anchor(trace, obj, wrapped if fmt == "molmo" else None)
        numbers = _instance_numbers(obj, kind, frame)
        if fmt == "molmo":
            wrapped.append((start, end))
            edits.append((start, end, _molmo_markup(numbers, obj.phrase, trace[start:end])))
        else:
            sep = "" if end > 0 and trace[end - 1].isspace() else " "
            edits.append((end, end, sep + _MARKUP[fmt](numbers, kind, obj.phrase)))
    text = _apply(trace, edits)
    if fmt == "ivgr":
        text = f"<think>{text}</think>" + ("" if answer is None else f"<answer>{answer}</answer>")
    return text


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace each non-overlapping (start, end) with its text; equal starts keep their order."""
    out, pos = [], 0
    for start, end, new in sorted(edits, key=lambda e: e[0]):
        out += [text[pos:start], new]
        pos = end
    return "".join(out) + text[pos:]


def _anchor(trace: str, obj: GroundedObject, wrapped: list[tuple[int, int]] | None) -> tuple[int, int]:
    spans = [(int(s), int(e)) for s, e in obj.spans]
    if not spans and obj.phrase:
        # Whole words only: "cat" must not anchor inside "cats".
        found = re.finditer(rf"(?<!\w){re.escape(obj.phrase)}(?!\w)", trace, flags=re.IGNORECASE)
        spans = [m.span() for m in found]
    for start, end in spans:
        if not 0 <= start < end <= len(trace):
            raise ValueError(
                f"object {obj.phrase!r}: span ({start}, {end}) lies outside the trace of {len(trace)} characters"
            )
        if wrapped is None or all(end <= s or start >= e for s, e in wrapped):
            return start, end
    raise ValueError(f"object {obj.phrase!r}: no span to anchor its grounding (spans {obj.spans})")


def _instance_numbers(obj: GroundedObject, kind: str, frame: Frame) -> list[list[str]]:
    """Each instance's point or box as strings in the frame's precision."""
    values = [inst.point if kind == "point" else inst.box for inst in obj.instances]
    try:
        xy = np.asarray(values, dtype=np.float64).reshape(len(values), ARITY[kind])
    except (TypeError, ValueError):
        raise ValueError(f"object {obj.phrase!r}: instance {kind}s are not {ARITY[kind]} numbers each") from None
    if not np.isfinite(xy).all():
        raise ValueError(f"object {obj.phrase!r}: non-finite instance {kind}: {values}")
    xy = frame.to_frame(xy)
    decimals = FRAME_DECIMALS[frame.kind]
    if decimals:
        return [[f"{v:.{decimals}f}" for v in row] for row in xy]
    cells = np.floor(xy) if kind == "point" else np.floor(xy + 0.5)
    return [[str(int(v)) for v in row] for row in cells]


def _tvg_markup(numbers: list[list[str]], kind: str, phrase: str) -> str:
    body = ",".join("[" + ",".join(row) + "]" for row in numbers)
    return f"<{kind}>[{body}]</{kind}>"


def _ivgr_markup(numbers: list[list[str]], kind: str, phrase: str) -> str:
    return "".join("<box>[" + ",".join(row) + "]</box>" for row in numbers)


def _qwen_markup(numbers: list[list[str]], kind: str, phrase: str) -> str:
    key, label = ("point_2d" if kind == "point" else "bbox_2d"), json.dumps(phrase, ensure_ascii=False)
    return "[" + ", ".join(f'{{"{key}": [{", ".join(row)}], "label": {label}}}' for row in numbers) + "]"


def _molmo_markup(numbers: list[list[str]], phrase: str, inner: str) -> str:
    alt = html.escape(phrase, quote=True)
    if len(numbers) == 1:
        return f'<point x="{numbers[0][0]}" y="{numbers[0][1]}" alt="{alt}">{inner}</point>'
    attrs = " ".join(f'x{i}="{x}" y{i}="{y}"' for i, (x, y) in enumerate(numbers, start=1))
    return f'<points {attrs} alt="{alt}">{inner}</points>'


_MARKUP = {"tvg": _tvg_markup, "ivgr": _ivgr_markup, "qwen": _qwen_markup}
