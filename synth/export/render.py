"""A row's grounded trace rendered at export time, in any format and frame, from its geometry.

The row's canonical geometry (absolute pixels of the original image) is rendered with
`synth.core.formats.render_trace`; nothing is rerun. Each rendering comes with its text-only twin
(`strip_groundings`: the same reasoning, fluent, without markup) and with the numbers behind
every tag, aligned with the tag's character span, for training that regresses coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from synth.core.formats import Frame, format_name, parse_groundings, render_trace, strip_groundings
from synth.core.records import GroundedObject, Instance
from synth.rewards.parsed import frame_for

GeometryChoice = Literal["auto", "point", "box"]
#: Formats that wrap the trace in <think>…</think><answer>…</answer> themselves.
SELF_WRAPPING = ("ivgr",)


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


def geometry_for(row: dict[str, Any], choice: GeometryChoice) -> Literal["point", "box"]:
    """The geometry to render: `choice`, or for auto points when counting and boxes otherwise."""
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
    geometry = geometry_for(row, options.geometry)
    answer = str(row.get("answer") or "")
    objects = objects_from_row(row)
    text = render_trace(row["trace"], objects, options.grounding, frame, geometry, answer=answer)
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
