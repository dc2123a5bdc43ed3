"""Parsing and stripping: groundings read back from model text into absolute pixels, or cut out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence

from synth.core.formats.frames import FRAME_DECIMALS, Frame
from synth.core.formats.scan import Markup, scan

#: The reasons `parse_groundings` may return (None means every grounding was read).
PARSE_REASONS = {
    "no_groundings": "the text holds no grounding markup of the format",
    "malformed": "some markup could not be read even after repair (the rest is returned)",
    "truncated": "markup was cut off (the complete part is returned)",
    "out_of_frame": "a coordinate lies outside the frame (it is returned as written)",
}


@dataclass
class Grounding:
    """One parsed grounding; geometry already in absolute pixels of the original image.

    `coords` are points [(x, y), ...] or XYXY boxes [(x0, y0, x1, y1), ...]; `start`/`end` are
    the character span of the markup in the parsed text (end exclusive).
    """

    phrase: str
    kind: Literal["point", "box"]
    coords: list[tuple[float, ...]]
    start: int
    end: int


def parse_groundings(text: str, fmt: str, frame: Frame) -> tuple[list[Grounding], str | None]:
    """Every grounding in `text` written in `fmt` and `frame`, in text order, in absolute pixels.

    Returns:
        (groundings, reason): reason None when all markup was read, otherwise a key of
        PARSE_REASONS (the first problem in text order); what could be read is still returned.
        Never raises on the text; an unknown `fmt` (a configuration error) raises ValueError.
    """
    text = text if isinstance(text, str) else ""
    markups = _drop_drafts(text, fmt, scan(text, fmt))
    if not markups:
        return [], "no_groundings"
    out: list[Grounding] = []
    reason = None  # the first problem in text order
    for markup in markups:
        reason = reason or markup.problem
        for (phrase, kind), coords in markup.groups.items():
            pixels, inside = _to_pixels(coords, kind, frame)
            reason = reason or (None if inside else "out_of_frame")
            if pixels:
                out.append(Grounding(phrase, kind, pixels, markup.start, markup.end))  # type: ignore[arg-type]
    return out, reason


def _drop_drafts(text: str, fmt: str, markups: Sequence[Markup]) -> Sequence[Markup]:
    """Molmo and Qwen ground in their final answer: when markup follows the last closed think
    block, the markup inside it was a draft and is left out."""
    if fmt in ("molmo", "qwen"):
        cut = text.rfind("</think>")
        if cut >= 0 and any(m.start > cut for m in markups):
            return [m for m in markups if m.start > cut]
    return markups


def _to_pixels(coords: list[tuple[float, ...]], kind: str, frame: Frame) -> tuple[list[tuple[float, ...]], bool]:
    """Frame coordinates -> absolute pixels, and whether all of them lie in the frame.

    Plain Python floats: a grounding holds a handful of numbers, fewer than a numpy call is worth
    (the arithmetic is the IEEE double arithmetic of `Frame.from_frame`, so the results are equal).
    """
    ex, ey = frame.extent
    sx, sy = frame.units_per_pixel
    lx, ly = ex * (1 + 1e-9), ey * (1 + 1e-9)
    finite, inside, pixels = math.isfinite, True, []
    if kind == "point":
        cells = FRAME_DECIMALS[frame.kind] == 0  # an integer names a cell: read its centre
        for x, y in coords:
            inside = inside and 0 <= x <= lx and 0 <= y <= ly
            if cells:
                x, y = (x + 0.5 if x.is_integer() else x), (y + 0.5 if y.is_integer() else y)
            x, y = x / sx, y / sy
            # A number near the float limit in a normalised frame overflows: out of frame anyway.
            if finite(x) and finite(y):
                pixels.append((x, y))
    else:
        for x0, y0, x1, y1 in coords:
            inside = inside and 0 <= x0 <= lx and 0 <= y0 <= ly and 0 <= x1 <= lx and 0 <= y1 <= ly
            box = (x0 / sx, y0 / sy, x1 / sx, y1 / sy)
            if finite(box[0]) and finite(box[1]) and finite(box[2]) and finite(box[3]):
                pixels.append(box)
    return pixels, inside


def strip_groundings(text: str, fmt: str) -> str:
    """The text-only twin: markup removed (molmo keeps the wrapped phrase), spacing kept fluent.

    ivgr's <think>/<answer> wrappers stay. Where markup sat between words one space remains; no
    space is left before punctuation or at a line's start or end.

    One pass from the last markup to the first, so hostile text full of markup costs linear time:
    `tail` holds the finished text after the current cut as pieces, its first piece last.
    """
    tail: list[str] = []
    end = len(text)
    for markup in sorted(scan(text, fmt), key=lambda m: m.start, reverse=True):
        tail.append(text[markup.end : end])
        end = markup.start
        if markup.keep:
            tail.append(markup.keep)
        else:
            end = _mend(text, end, tail)
    tail.append(text[:end])
    return "".join(reversed(tail))


_NO_SPACE_BEFORE = set(".,;:!?)]}\n<") | {""}
_NO_SPACE_AFTER = set("([{\n") | {""}


def _mend(text: str, cut: int, tail: list[str]) -> int:
    """Fix the spacing where markup was cut out at `cut`: strip spaces and tabs on both sides of
    the cut (from `text[:cut]` and from the front of `tail`), then put back one space where
    words would otherwise run together. Returns where the text before the cut now ends."""
    left = cut
    while left and text[left - 1] in " \t":
        left -= 1
    had_space = left < cut
    while tail:
        head = tail.pop()
        stripped = head.lstrip(" \t")
        had_space = had_space or len(stripped) < len(head)
        if stripped:
            tail.append(stripped)
            break
    before, after = text[left - 1 : left], tail[-1][:1] if tail else ""
    if after in _NO_SPACE_BEFORE or before in _NO_SPACE_AFTER:
        return left
    if had_space or (before.isalnum() and after.isalnum()):
        tail.append(" ")
    return left
