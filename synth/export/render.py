"""A row's grounded trace rendered at export time, in any format and frame, from its geometry.

The row's canonical geometry (absolute pixels of the original image) is rendered with
`synth.core.formats.render_trace`; nothing is rerun. Each rendering comes with its text-only twin
(`strip_groundings`: the same reasoning, fluent, without markup) and with the numbers behind
every tag, aligned with the tag's character span, for training that regresses coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import re

import numpy as np

from synth.core.formats import Frame, format_name, parse_groundings, render_trace, strip_groundings
from synth.core.records import GroundedObject, Instance
from synth.rewards.parsed import frame_for

GeometryChoice = Literal["auto", "point", "box"]
#: Formats that render one kind whatever is asked: iVGR has only boxes, Molmo only points.
FIXED_GEOMETRY = {"ivgr": "box", "molmo": "point"}
#: Formats that wrap the trace in <think>…</think><answer>…</answer> themselves.
SELF_WRAPPING = ("ivgr",)
_LEADING_THINK = re.compile(r"\A\s*<think>\s*", re.IGNORECASE)
_CLOSING_THINK = re.compile(r"</think>", re.IGNORECASE)
_TRAILING_ANSWER = re.compile(r"\s*<answer>.*?</answer>\s*\Z", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class RenderOptions:
    """How to render: grounding format, frame name, geometry, and whether to add think/answer.

    Attributes:
        grounding: tvg | ivgr | molmo | qwen.
        frame: pixel | norm1 | norm100 | norm1000 | qwen-resized.
        geometry: point | box, or auto (points for counting questions, boxes otherwise).
        think: wrap formats other than ivgr as <think>trace</think><answer>answer</answer> too.
    """

    grounding: str = "tvg"
    frame: str = "norm1000"
    geometry: GeometryChoice = "auto"
    think: bool = False


@dataclass
class Coordinate:
    """One point or box of a rendered tag: where the tag is and the exact numbers it renders.

    `values` are in the rendering's frame, unrounded (the text holds them rounded);
    `values_px` are the same in absolute pixels of the original image.
    """

    start: int
    end: int
    kind: str
    phrase: str
    values: list[float]
    values_px: list[float]


@dataclass
class Rendered:
    """One row rendered: the assistant text, its twin, its frame and its coordinates."""

    grounded: str
    text_only: str
    answer: str
    frame: Frame
    grounded_format: str
    geometry: str
    coordinates: list[Coordinate] = field(default_factory=list)


def objects_from_row(row: dict[str, Any]) -> list[GroundedObject]:
    """The row's objects as `GroundedObject`s (spans as (start, end) pairs)."""
    objects = []
    for obj in row.get("objects") or []:
        spans = [(int(s["start"]), int(s["end"])) for s in obj.get("spans") or []]
        instances = [
            Instance(inst["mask"], list(inst["box"]), list(inst["point"]), float(inst.get("score") or 0.0))
            for inst in obj.get("instances") or []
        ]
        objects.append(GroundedObject(obj["phrase"], spans, obj.get("expected_count"), instances))
    return objects


def geometry_for(row: dict[str, Any], choice: GeometryChoice, fmt: str) -> Literal["point", "box"]:
    """The geometry rendered: the format's only kind if it has one, else `choice`, and for auto
    points when counting and boxes otherwise."""
    if fmt in FIXED_GEOMETRY:
        return FIXED_GEOMETRY[fmt]  # type: ignore[return-value]
    if choice != "auto":
        return choice
    return "point" if row.get("task") == "counting" else "box"


def render_row(row: dict[str, Any], options: RenderOptions) -> Rendered:
    """Render one row.

    Raises:
        ValueError: the row's objects cannot be rendered (a span outside the trace, an object
            that cannot be anchored, non-finite geometry), or an unknown format or frame.
    """
    frame = frame_for(options.frame, row["image_width"], row["image_height"])
    geometry = geometry_for(row, options.geometry, options.grounding)
    answer = str(row.get("answer") or "")
    trace, objects = row["trace"], objects_from_row(row)
    wrapping = options.grounding in SELF_WRAPPING or options.think
    if wrapping:
        trace, objects = unwrap_trace(trace, objects)
    text = render_trace(trace, objects, options.grounding, frame, geometry, answer=answer)
    if options.think and options.grounding not in SELF_WRAPPING:
        text = f"<think>{text}</think><answer>{answer}</answer>"
    coordinates = align_coordinates(text, objects, options.grounding, frame)
    return Rendered(
        grounded=text,
        text_only=strip_groundings(text, options.grounding),
        answer=answer,
        frame=frame,
        grounded_format=format_name(options.grounding, frame.kind),
        geometry=geometry,
        coordinates=coordinates,
    )


def unwrap_trace(trace: str, objects: list[GroundedObject]) -> tuple[str, list[GroundedObject]]:
    """The trace without its own think tags and trailing answer block, spans shifted to match.

    Teachers often write `<think>…</think>` or end with `<answer>5</answer>`; wrapped again as
    `<think>trace</think><answer>…</answer>` that would nest think blocks and give two answers.
    A piece is only cut where no object span touches it.
    """
    cuts: list[tuple[int, int]] = []
    lead = _LEADING_THINK.match(trace)
    if lead:
        cuts.append((0, lead.end()))
    tail = _TRAILING_ANSWER.search(trace)
    end = tail.start() if tail else len(trace)
    close = _CLOSING_THINK.search(trace, lead.end() if lead else 0, end)
    if close and not _CLOSING_THINK.search(trace, close.end(), end):
        cuts.append(close.span())
    if tail:
        cuts.append((tail.start(), len(trace)))
    spans = [span for obj in objects for span in obj.spans]
    cuts = [(a, b) for a, b in cuts if all(e <= a or s >= b for s, e in spans)]
    if not cuts:
        return trace, objects

    def shift(pos: int) -> int:
        return pos - sum(b - a for a, b in cuts if b <= pos)

    kept, pos = [], 0
    for a, b in cuts:
        kept.append(trace[pos:a])
        pos = b
    kept.append(trace[pos:])
    moved = [GroundedObject(o.phrase, [(shift(s), shift(e)) for s, e in o.spans], o.expected_count, o.instances,
                            o.proposal_source, o.retries, o.score) for o in objects]
    return "".join(kept).rstrip(), moved


def align_coordinates(text: str, objects: list[GroundedObject], fmt: str, frame: Frame) -> list[Coordinate]:
    """Every coordinate of every tag in `text`, in text order, with the exact canonical numbers.

    The text is parsed back for the tags' spans; each parsed point or box is paired with the
    nearest instance geometry of the objects (the text holds it rounded to the frame's
    precision), so `values` carry the unrounded numbers.
    """
    groundings, _ = parse_groundings(text, fmt, frame)
    canon = {
        "point": np.array([inst.point for o in objects for inst in o.instances], dtype=np.float64).reshape(-1, 2),
        "box": np.array([inst.box for o in objects for inst in o.instances], dtype=np.float64).reshape(-1, 4),
    }
    out = []
    for g in groundings:
        table = canon[g.kind]
        for coords in g.coords:
            px = np.asarray(coords, dtype=np.float64)
            if len(table):
                px = table[int(np.abs(table - px).max(axis=1).argmin())]
            out.append(Coordinate(g.start, g.end, g.kind, g.phrase, frame.to_frame(px).tolist(), px.tolist()))
    return out
