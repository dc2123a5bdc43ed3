"""Parsing a generated text once into arrays every reward reads.

`parse_text` wraps `synth.core.formats.parse_groundings` so that nothing a model writes can raise:
a parser failure becomes a reason, like a malformed tag. The last parse is memoized, so calling
several rewards on the same text (as `score_all` and RL reward managers do) parses it once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from synth.core.answers import extract_final_answer
from synth.core.formats import FORMATS, Frame, parse_groundings, qwen_resized_frame, strip_groundings
from synth.rewards.targets import normalize_phrase

log = logging.getLogger(__name__)

#: Frame names accepted wherever a frame is given by name; "qwen-resized" means pixels of the
#: image after Qwen2-VL's smart resize (multiples of 28 within its pixel budget).
FRAME_NAMES = ("pixel", "norm1", "norm100", "norm1000", "qwen-resized")
_MOLMO_TAGS = re.compile(r"</?points?\b[^<>]*>", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """One text's groundings as arrays, in absolute pixels of the original image.

    Attributes:
        text: the text parsed ("" when it was not a string).
        fmt: its grounding format.
        groundings: the parser's `Grounding`s, in text order.
        reason: None when every tag parsed; the parser's (or our) reason otherwise.
        points: (P, 2) float64 (x, y) of every point grounding.
        boxes: (B, 4) float64 XYXY of every box grounding.
        phrase_counts: normalized phrase -> number of coordinates grounded for it.
        cache: figures computed from this parse by one reward and reused by another.
    """

    text: str = ""
    fmt: str = ""
    groundings: tuple = ()
    reason: str | None = None
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    phrase_counts: dict[str, int] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def plain_text(self) -> str:
        """The text without its grounding markup, for reading the final answer.

        A clean parse cuts out the markup spans the parser found (molmo keeps the phrase it
        wraps); otherwise `strip_groundings` rescans, since broken markup yields no spans.
        """
        if "plain" in self.cache:
            return self.cache["plain"]
        if self.reason is not None and self.reason != "no_groundings":
            plain = strip_markup(self.text, self.fmt)
        elif self.fmt == "molmo":
            plain = _MOLMO_TAGS.sub("", self.text)
        else:
            pieces, pos = [], 0
            for start, end in sorted({(g.start, g.end) for g in self.groundings}):
                pieces.append(self.text[pos:start])
                pos = max(pos, end)
            plain = " ".join(pieces + [self.text[pos:]]) if pieces else self.text
        self.cache["plain"] = plain
        return plain

    def final_answer(self) -> tuple[str | None, str | None]:
        """`extract_final_answer` of `plain_text()`, computed once."""
        if "final" not in self.cache:
            self.cache["final"] = extract_final_answer(self.plain_text())
        return self.cache["final"]


_MEMO: list[Any] = [None, None]  # [key, Parsed]: the last parse; a list so updates are one store


def frame_for(frame: Frame | str, width: int, height: int) -> Frame:
    """A `Frame` from a frame name (see FRAME_NAMES) and the original image size.

    Raises:
        ValueError: an unknown frame name (the caller's configuration, not model text).
    """
    if isinstance(frame, Frame):
        return frame
    if frame in ("pixel", "norm1", "norm100", "norm1000"):
        return Frame(frame, int(width), int(height))
    if frame in ("qwen-resized", "resized"):
        return qwen_resized_frame(int(width), int(height))
    raise ValueError(f"unknown frame {frame!r}; choices: {', '.join(FRAME_NAMES)}")


def parse_text(text: Any, fmt: str, frame: Frame) -> Parsed:
    """Parse `text` in grounding format `fmt` and `frame`; never raises on the text."""
    key = (text, fmt, frame)
    memo = _MEMO
    if memo[0] == key:
        return memo[1]
    parsed = _parse(text, fmt, frame)
    _MEMO[:] = [key, parsed]
    return parsed


def _parse(text: Any, fmt: str, frame: Frame) -> Parsed:
    if fmt not in FORMATS:
        raise ValueError(f"unknown grounding format {fmt!r}; choices: {', '.join(FORMATS)}")
    if not isinstance(text, str):
        return Parsed(fmt=fmt, reason=f"not_text: got {type(text).__name__}")
    try:
        groundings, reason = parse_groundings(text, fmt, frame)
    except Exception as exc:  # a parser bug must not stop an RL step; it scores 0 with a reason
        log.warning("parse_groundings(%s) raised %r on a text of %d chars", fmt, exc, len(text))
        return Parsed(text=text, fmt=fmt, reason=f"parser_error: {exc!r}")
    points: list[tuple[float, ...]] = []
    boxes: list[tuple[float, ...]] = []
    phrases: dict[str, int] = {}
    for g in groundings:
        (points if g.kind == "point" else boxes).extend(g.coords)
        name = normalize_phrase(g.phrase or "")
        phrases[name] = phrases.get(name, 0) + len(g.coords)
    return Parsed(text, fmt, tuple(groundings), reason, _array(points, 2), _array(boxes, 4), phrases)


def strip_markup(text: str, fmt: str) -> str:
    """`strip_groundings` that never raises (a bug there must not stop an RL step)."""
    try:
        return strip_groundings(text, fmt)
    except Exception:  # a stripping bug must not stop an RL step; read the text as it is
        return text


def _array(coords: list[tuple[float, ...]], width: int) -> np.ndarray:
    if not coords:
        return np.zeros((0, width))
    try:
        return np.asarray(coords, dtype=np.float64).reshape(-1, width)
    except (TypeError, ValueError):
        # Ragged or non-numeric coordinates: keep the well-shaped ones only.
        good = [c for c in coords if len(c) == width]
        return np.asarray(good, dtype=np.float64).reshape(-1, width)
