"""Parsing a generated text once into arrays every reward reads.

`parse_text` wraps `synth.core.formats.parse_groundings` so that nothing a model writes can raise:
a parser failure becomes a reason, like a malformed tag. The last parse is memoized, so calling
several rewards on the same text (as `score_all` and RL reward managers do) parses it once.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
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
        points: (x, y) of every point grounding, as tuples (`points_array()` for numpy).
        boxes: XYXY of every box grounding, as tuples (`boxes_array()` for numpy).
        phrase_counts: normalized phrase -> number of coordinates grounded for it.
        cache: figures computed from this parse by one reward and reused by another.
    """

    text: str = ""
    fmt: str = ""
    groundings: tuple = ()
    reason: str | None = None
    points: list[tuple[float, ...]] = field(default_factory=list)
    boxes: list[tuple[float, ...]] = field(default_factory=list)
    phrase_counts: dict[str, int] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def points_array(self) -> np.ndarray:
        """`points` as a (P, 2) float64 array (computed once)."""
        if "points" not in self.cache:
            self.cache["points"] = _array(self.points, 2)
        return self.cache["points"]

    def boxes_array(self) -> np.ndarray:
        """`boxes` as a (B, 4) float64 array (computed once)."""
        if "boxes" not in self.cache:
            self.cache["boxes"] = _array(self.boxes, 4)
        return self.cache["boxes"]

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


# The last parse as one (key, Parsed) tuple: replacing it is a single store, so threads sharing
# the module never see the key of one text with the parse of another.
_MEMO: list[tuple[Any, Parsed] | None] = [None]


def frame_for(frame: Frame | str, width: int, height: int) -> Frame:
    """A `Frame` from a frame name (see FRAME_NAMES) and the original image size.

    Raises:
        ValueError: an unknown frame name (the caller's configuration, not model text).
    """
    if isinstance(frame, Frame):
        return frame
    return _named_frame(frame, int(width), int(height))


@lru_cache(maxsize=4096)
def _named_frame(frame: str, width: int, height: int) -> Frame:
    # Cached: every rollout of a prompt names the same frame, and smart resize is not free.
    if frame in ("pixel", "norm1", "norm100", "norm1000"):
        return Frame(frame, int(width), int(height))
    if frame in ("qwen-resized", "resized"):
        return qwen_resized_frame(int(width), int(height))
    raise ValueError(f"unknown frame {frame!r}; choices: {', '.join(FRAME_NAMES)}")


def parse_text(text: Any, fmt: str, frame: Frame) -> Parsed:
    """Parse `text` in grounding format `fmt` and `frame`; never raises on the text."""
    key = (text, fmt, frame)
    last = _MEMO[0]
    if last is not None and last[0] == key:
        return last[1]
    parsed = _parse(text, fmt, frame)
    _MEMO[0] = (key, parsed)
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
        # The parser returns well-shaped tuples; a ragged one (a parser bug) is left out.
        if g.kind == "point":
            points += [c for c in g.coords if len(c) == 2]
        else:
            boxes += [c for c in g.coords if len(c) == 4]
        name = _normalized(g.phrase or "")
        phrases[name] = phrases.get(name, 0) + len(g.coords)
    return Parsed(text, fmt, tuple(groundings), reason, points, boxes, phrases)


# Rollouts of one prompt name the same few phrases; normalizing is pure.
_normalized = lru_cache(maxsize=4096)(normalize_phrase)


def strip_markup(text: str, fmt: str) -> str:
    """`strip_groundings` that never raises (a bug there must not stop an RL step)."""
    try:
        return strip_groundings(text, fmt)
    except Exception:  # a stripping bug must not stop an RL step; read the text as it is
        return text


def _array(coords: list[tuple[float, ...]], width: int) -> np.ndarray:
    return np.asarray(coords, dtype=np.float64).reshape(-1, width)
