"""Trace formats: canonical geometry rendered into reasoning text, and read back from it.

A grounded trace is a *rendering* of the canonical geometry (absolute pixels of the original
image, see `synth.core.geometry`) in a format and a coordinate `Frame`:

- ``tvg`` ("Thinking with Visual Grounding"): one tag right after the phrase it grounds, holding
  every instance: ``the apples <point>[[12,40],[30,52]]</point>`` (points, for counting) or
  ``the cup <box>[[10,20,50,60]]</box>`` (boxes, for spatial questions). Always a list of lists.
- ``ivgr`` (iVGR): ``the ball <box>[50,80,120,150]</box>``, one tag per instance, the tags of one
  object written back to back; the whole text is ``<think>…</think><answer>…</answer>``. iVGR
  has no points, so ivgr renders boxes even when points are asked for.
- ``molmo``: the phrase itself is wrapped, ``<points x1="12.5" y1="40.1" x2=".." y2=".."
  alt="apples">apples</points>`` (one instance: ``<point x=".." y=".." alt="..">..</point>``).
  Molmo has no boxes, so molmo renders points even when boxes are asked for.
- ``qwen`` (Qwen2.5-VL / Qwen3-VL grounding JSON): a JSON list right after the phrase, inline
  rather than in a code fence so the sentence stays one line:
  ``the cups [{"bbox_2d": [10, 20, 50, 60], "label": "cups"}]`` or ``{"point_2d": [x, y], ...}``.
  The parser reads inline lists, bare objects and ```` ```json ```` fences alike.

Frames and precision: ``pixel`` (original pixels) and ``resized`` (pixels of a resized image,
Qwen2.5-VL's and iVGR's frame) and ``norm1000`` (Qwen3-VL) are written as integers; ``norm1``
with 3 decimals, ``norm100`` (Molmo) with 1. In an integer frame a box edge is rounded to the
nearest integer, while a point is written as the index of the cell that holds it (floor) and
read back as that cell's centre, so a pixel-centre point survives the pixel frame exactly and
never lands on a cell edge. Every round trip is exact to half a unit of the rendered precision.

Parsing never raises on model text. Offsets refer to the text as given. Grounded traces ground
inside their reasoning, so markup in think blocks counts; only for molmo and qwen, whose models
ground in their final answer, markup inside a closed think block is dropped as a draft when
markup also follows it. Code fences are looked into.
JSON is read strictly first, then repaired (trailing commas, single quotes, a truncated tail).
Phrases come from the markup where the format carries them (molmo ``alt``, qwen ``label``);
for tvg and ivgr they are guessed from the words just before the tag (up to four, after the
last determiner, number or clause break), which is a best effort.
"""

from __future__ import annotations

import bisect
import html
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from synth.core.records import GroundedObject

FORMATS = ("tvg", "ivgr", "molmo", "qwen")
FRAME_KINDS = ("pixel", "norm1", "norm100", "norm1000", "resized")
#: Decimals of a rendered coordinate in each frame; 0 means integers.
FRAME_DECIMALS = {"pixel": 0, "norm1": 3, "norm100": 1, "norm1000": 0, "resized": 0}
#: The reasons `parse_groundings` may return (None means every grounding was read).
PARSE_REASONS = {
    "no_groundings": "the text holds no grounding markup of the format",
    "malformed": "some markup could not be read even after repair (the rest is returned)",
    "truncated": "markup was cut off (the complete part is returned)",
    "out_of_frame": "a coordinate lies outside the frame (it is returned as written)",
}
_ARITY = {"point": 2, "box": 4}


@dataclass(frozen=True)
class Frame:
    """Coordinate frame of a rendering.

    Attributes:
        kind: pixel | norm1 | norm100 | norm1000 | resized.
        width: original image width in pixels.
        height: original image height in pixels.
        resized_width: for kind "resized", the width of the resized image the model sees.
        resized_height: for kind "resized", its height.
    """

    kind: Literal["pixel", "norm1", "norm100", "norm1000", "resized"]
    width: int
    height: int
    resized_width: int | None = None
    resized_height: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FRAME_KINDS:
            raise ValueError(f"Frame.kind: unknown {self.kind!r}; choices: {', '.join(FRAME_KINDS)}")
        if not (self.width > 0 and self.height > 0):
            raise ValueError(f"Frame: width and height must be positive, got {self.width}x{self.height}")
        if self.kind == "resized" and not ((self.resized_width or 0) > 0 and (self.resized_height or 0) > 0):
            raise ValueError(
                "Frame(kind='resized') needs positive resized_width and resized_height, "
                f"got {self.resized_width}x{self.resized_height}"
            )

    @property
    def extent(self) -> tuple[float, float]:
        """(x, y) size of the whole image in frame units."""
        if self.kind == "resized":
            return float(self.resized_width), float(self.resized_height)  # type: ignore[arg-type]
        full = {"pixel": None, "norm1": 1.0, "norm100": 100.0, "norm1000": 1000.0}[self.kind]
        return (float(self.width), float(self.height)) if full is None else (full, full)

    def _scale(self, n: int) -> np.ndarray:
        if n % 2:
            raise ValueError(f"Frame: coordinates must come in (x, y) pairs, got a last axis of {n}")
        ex, ey = self.extent
        return np.resize(np.array([ex / self.width, ey / self.height]), n)

    def to_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2k) absolute pixels (x, y, x, y, ...) -> frame coordinates, unrounded."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy * self._scale(xy.shape[-1])

    def from_frame(self, xy: np.ndarray) -> np.ndarray:
        """(..., 2k) frame coordinates -> absolute pixels of the original image."""
        xy = np.asarray(xy, dtype=np.float64)
        return xy / self._scale(xy.shape[-1])


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


def format_name(fmt: str, frame_kind: str) -> str:
    """The `grounded_format` column value, e.g. "tvg:norm1000"."""
    _check_format(fmt)
    if frame_kind not in FRAME_KINDS:
        raise ValueError(f"unknown frame kind {frame_kind!r}; choices: {', '.join(FRAME_KINDS)}")
    return f"{fmt}:{frame_kind}"


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown trace format {fmt!r}; choices: {', '.join(FORMATS)}")


def qwen_smart_resize(
    height: int, width: int, factor: int = 28, min_pixels: int = 56 * 56, max_pixels: int = 14 * 14 * 4 * 1280
) -> tuple[int, int]:
    """The (height, width) Qwen2-VL / Qwen2.5-VL's processor resizes an image to.

    Both sides become multiples of `factor` nearest to the original, then the pair is scaled
    (keeping the aspect ratio) into [min_pixels, max_pixels]: down with floor, up with ceil.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"qwen_smart_resize: image size must be positive, got {height}x{width}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"qwen_smart_resize: aspect ratio must be at most 200, got {height}x{width}")
    h, w = round(height / factor) * factor, round(width / factor) * factor
    if h * w > max_pixels:
        shrink = math.sqrt(height * width / max_pixels)
        h = max(factor, math.floor(height / shrink / factor) * factor)
        w = max(factor, math.floor(width / shrink / factor) * factor)
    elif h * w < min_pixels:
        grow = math.sqrt(min_pixels / (height * width))
        h, w = math.ceil(height * grow / factor) * factor, math.ceil(width * grow / factor) * factor
    return h, w


def qwen_resized_frame(width: int, height: int, **resize: int) -> Frame:
    """The "resized" frame of Qwen2.5-VL for an original image (`resize`: qwen_smart_resize's knobs)."""
    h, w = qwen_smart_resize(height, width, **resize)
    return Frame("resized", width, height, w, h)


# --- rendering ------------------------------------------------------------------------------


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
    _check_format(fmt)
    if geometry not in _ARITY:
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
        xy = np.asarray(values, dtype=np.float64).reshape(len(values), _ARITY[kind])
    except (TypeError, ValueError):
        raise ValueError(f"object {obj.phrase!r}: instance {kind}s are not {_ARITY[kind]} numbers each") from None
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


# --- scanning: markup found in text, in frame units -----------------------------------------


@dataclass
class _Markup:
    """One piece of grounding markup: where it is, what replaces it when stripped, what it says."""

    start: int
    end: int
    keep: str = ""  # text left in its place by strip_groundings (molmo keeps the phrase)
    items: list[tuple[str, str, tuple[float, ...]]] = field(default_factory=list)  # (phrase, kind, coords)
    problem: str | None = None


def _numbers(value: Any, arity: int) -> bool:
    """Whether `value` is `arity` finite numbers (JSON integers can be too large for a float)."""
    if not isinstance(value, (list, tuple)) or len(value) != arity:
        return False
    try:
        return all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    except OverflowError:
        return False


def _coords(value: Any, arity: int) -> tuple[list[tuple[float, ...]], bool]:
    """Coordinate tuples in `value` (one tuple or a list of them) and whether all of it was usable."""
    if _numbers(value, arity):
        return [tuple(float(v) for v in value)], True
    if not isinstance(value, list) or not value:
        return [], False
    good = [tuple(float(v) for v in row) for row in value if _numbers(row, arity)]
    return good, len(good) == len(value)


_TAG_OPEN = re.compile(r"<(point|box)>", re.IGNORECASE)
_SPACES = re.compile(r"\s*")
_TAG_CLOSE = {kind: re.compile(rf"</{kind}\s*>", re.IGNORECASE) for kind in _ARITY}


def _closing(text: str, opens: list[re.Match], close: re.Pattern) -> list[re.Match | None]:
    """Each opening tag's closing tag; None when none follows before the next opening tag.

    Found with one pass over the text, so a text of many unclosed tags stays linear.
    """
    closes = list(close.finditer(text))
    starts = [c.start() for c in closes]
    out: list[re.Match | None] = []
    for i, m in enumerate(opens):
        j = bisect.bisect_left(starts, m.end())
        limit = opens[i + 1].start() if i + 1 < len(opens) else len(text)
        out.append(closes[j] if j < len(closes) and closes[j].start() < limit else None)
    return out


def _at_end(text: str, pos: int) -> bool:
    """Whether only whitespace follows `pos`: markup cut off there was truncated, not mangled."""
    return _SPACES.match(text, pos).end() == len(text)  # type: ignore[union-attr]


def _scan_tags(text: str, merge_adjacent: bool) -> list[_Markup]:
    """tvg and ivgr tags; ivgr's back-to-back tags of one kind form one grounding."""
    found: list[_Markup] = []
    opens = list(_TAG_OPEN.finditer(text))
    pairs = {kind: _closing(text, opens, close) for kind, close in _TAG_CLOSE.items()}
    for i, m in enumerate(opens):
        kind = m.group(1).lower()
        close, problem = pairs[kind][i], None
        if close is None:  # the coordinates are the bracketed value right after the tag, if any
            body = _SPACES.match(text, m.end()).end()  # type: ignore[union-attr]
            limit = opens[i + 1].start() if i + 1 < len(opens) else len(text)
            body_end = _balanced_end(text, body, limit) if text.startswith("[", body) else m.end()
            end, problem = body_end, ("truncated" if _at_end(text, body_end) else "malformed")
        else:
            body_end, end = close.start(), close.end()
        value, why = parse_json_lenient(text[m.end() : body_end])
        coords, complete = _coords(value, _ARITY[kind])
        problem = problem or (why if why in ("truncated", "malformed") else None) or (None if complete else "malformed")
        prev = found[-1] if found else None
        if merge_adjacent and prev and prev.end == m.start() and prev.items and prev.items[0][1] == kind:
            prev.items += [(prev.items[0][0], kind, c) for c in coords]
            prev.end, prev.problem = end, prev.problem or problem
        else:
            phrase = _phrase_before(text, m.start())
            found.append(_Markup(m.start(), end, "", [(phrase, kind, c) for c in coords], problem))
    return found


_MOLMO_OPEN = re.compile(r"<(points?)\b([^<>]*)(>|\Z)", re.IGNORECASE)  # may be cut off at the end
_MOLMO_CLOSE = re.compile(r"</points?\s*>", re.IGNORECASE)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _scan_molmo(text: str) -> list[_Markup]:
    """Molmo's <point x= y=> and <points x1= y1= ...> elements."""
    found = []
    opens = list(_MOLMO_OPEN.finditer(text))
    for m, close in zip(opens, _closing(text, opens, _MOLMO_CLOSE)):
        attrs = {k.lower(): a if a or not b else b for k, a, b in _ATTR.findall(m.group(2))}
        problem = None
        if not m.group(3) or close is None:
            end, inner = m.end(), ""
            problem = "truncated" if _at_end(text, m.end()) else "malformed"
        else:
            end, inner = close.end(), text[m.end() : close.start()]
        points, complete = _molmo_points(attrs)
        phrase = html.unescape(attrs.get("alt", "")).strip() or inner.strip()
        problem = problem or (None if complete else "malformed")
        found.append(_Markup(m.start(), end, inner, [(phrase, "point", p) for p in points], problem))
    return found


def _molmo_points(attrs: dict[str, str]) -> tuple[list[tuple[float, ...]], bool]:
    pairs = [("x", "y")] if "x" in attrs or "y" in attrs else []
    index = sorted({int(k[1:]) for k in attrs if re.fullmatch(r"[xy]\d+", k)})
    pairs += [(f"x{i}", f"y{i}") for i in index]
    points, complete = [], bool(pairs)
    for kx, ky in pairs:
        try:
            x, y = float(attrs[kx]), float(attrs[ky])
        except (KeyError, ValueError):
            complete = False
            continue
        if math.isfinite(x) and math.isfinite(y):
            points.append((x, y))
        else:
            complete = False
    return points, complete


_FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)(?:```|\Z)", re.IGNORECASE | re.DOTALL)
# An object that names a geometry key within its first 200 characters, maybe opening a list.
_QWEN_START = re.compile(r"(?:\[\s*)?\{(?=[^{}]{0,200}?[\"']?(?:bbox_2d|point_2d)[\"']?\s*:)")
_QWEN_OBJECT = re.compile(r"\{[^{}]*\}")
_QWEN_KEYS = (("bbox_2d", "box"), ("point_2d", "point"))


def _scan_qwen(text: str) -> list[_Markup]:
    """Qwen JSON groundings: fenced blocks, inline lists and bare objects."""
    fenced = [m for m in _FENCE.finditer(text) if _QWEN_START.search(m.group(1))]
    found = [_read_qwen(text, m.start(), m.end(), m.group(1)) for m in fenced]
    fences, k, pos = [(f.start, f.end) for f in found], 0, 0
    for m in _QWEN_START.finditer(text):
        while k < len(fences) and fences[k][1] <= m.start():
            k += 1
        if m.start() < pos or (k < len(fences) and fences[k][0] <= m.start()):
            continue  # inside a fence or a list already read
        pos = _balanced_end(text, m.start())
        found.append(_read_qwen(text, m.start(), pos, text[m.start() : pos]))
    return sorted(found, key=lambda f: f.start)


def _read_qwen(text: str, start: int, end: int, body: str) -> _Markup:
    value, why = parse_json_lenient(body)
    values = value if isinstance(value, list) else [value]
    if value is None:  # unreadable as a whole: read the objects one by one
        values = [parse_json_lenient(o)[0] for o in _QWEN_OBJECT.findall(body)]
        why = "malformed"
    items, complete = [], True
    for obj in values:
        key, kind = next(((k, v) for k, v in _QWEN_KEYS if isinstance(obj, dict) and k in obj), (None, None))
        if key is None:
            complete = complete and isinstance(obj, dict)  # a stray non-object is a defect
            continue
        coords, ok = _coords(obj[key], _ARITY[kind])  # type: ignore[index]
        complete = complete and ok
        label = obj.get("label")
        phrase = label.strip() if isinstance(label, str) else _phrase_before(text, start)
        items += [(phrase, kind, c) for c in coords]
    problem = why if why in ("truncated", "malformed") else (None if complete and items else "malformed")
    return _Markup(start, end, "", items, problem)


def _balanced_end(text: str, start: int, stop: int | None = None) -> int:
    """End of the JSON value opening at `start` (string-aware), or `stop` (the text's end)."""
    depth, in_string, escaped = 0, False, False
    stop = len(text) if stop is None else stop
    for i in range(start, stop):
        ch = text[i]
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), (in_string and (escaped or ch != '"'))
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
    return stop


# --- lenient JSON ---------------------------------------------------------------------------

_TRAILING_COMMA = re.compile(r",\s*([\]}])")
_SINGLE_QUOTED = re.compile(r"'([^'\\\"]*)'")


def parse_json_lenient(text: str) -> tuple[Any, str | None]:
    """Read JSON from model text: strict, then repaired, then with a truncated tail closed.

    Returns:
        (value, reason): reason None when strict JSON read, "repaired" after fixing trailing
        commas or single quotes, "truncated" after closing brackets cut off at the end, and
        (None, "malformed") when nothing worked. Never raises.
    """
    s = text.strip()
    if s.startswith("```"):
        s = _FENCE.sub(lambda m: m.group(1), s, count=1).strip()
    value = _loads(s)
    if value is not _FAIL:
        return value, None
    fixed = _SINGLE_QUOTED.sub(lambda m: json.dumps(m.group(1)), _TRAILING_COMMA.sub(r"\1", s))
    value = _loads(fixed)
    if value is not _FAIL:
        return value, "repaired"
    value = _close_truncated(fixed)
    return (None, "malformed") if value is _FAIL else (value, "truncated")


_FAIL = object()


def _loads(s: str) -> Any:
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        return _FAIL


def _close_truncated(s: str) -> Any:
    """Close the brackets (and string) left open at the end, dropping an unfinished last element."""
    for _ in range(16):  # each round drops one more trailing element
        opened = _open_brackets(s)
        if opened is None:
            return _FAIL
        in_string, stack = opened
        if not stack:
            return _FAIL
        head = (s + '"' if in_string else s).rstrip().rstrip(",:").rstrip()
        value = _loads(head + "".join(reversed(stack)))
        if value is not _FAIL:
            return value
        cut = max(s.rfind(","), s.rfind("[", 0, len(s) - 1), s.rfind("{", 0, len(s) - 1))
        if cut <= 0:
            return _FAIL
        s = s[:cut] if s[cut] == "," else s[: cut + 1]
    return _FAIL


def _open_brackets(s: str) -> tuple[bool, list[str]] | None:
    """(inside a string at the end, closers still owed), or None for a mismatched closer."""
    stack: list[str] = []
    in_string = escaped = False
    for ch in s:
        if in_string:
            escaped, in_string = (not escaped and ch == "\\"), (escaped or ch != '"')
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            stack.append("]" if ch == "[" else "}")
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
    return in_string, stack


# --- phrases, parsing, stripping ------------------------------------------------------------

_CLAUSE_BREAK = re.compile(r"[.!?;:,()\[\]{}<>\n\"]")
_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_NOT_PHRASE = frozenset(
    "a an the this that these those each every all both some any its their his her my our your "
    "of in on at to by with from and or is are was were be see sees count counted there here i we "
    "it they them which what where one two three four five six seven eight nine ten".split()
)


def _phrase_before(text: str, pos: int) -> str:
    """The words just before `pos` that likely name the grounded object (best effort)."""
    chunk = text[max(0, pos - 160) : pos]
    breaks = list(_CLAUSE_BREAK.finditer(chunk))
    words = _WORD.findall(chunk[breaks[-1].end() :] if breaks else chunk)
    tail: list[str] = []
    for word in reversed(words):
        if word.lower() in _NOT_PHRASE or word.isdigit() or len(tail) == 4:
            break
        tail.append(word)
    return " ".join(reversed(tail)) or (words[-1] if words else "")


def _scan(text: str, fmt: str) -> list[_Markup]:
    _check_format(fmt)
    if fmt == "molmo":
        return _scan_molmo(text)
    if fmt == "qwen":
        return _scan_qwen(text)
    return _scan_tags(text, merge_adjacent=fmt == "ivgr")


def parse_groundings(text: str, fmt: str, frame: Frame) -> tuple[list[Grounding], str | None]:
    """Every grounding in `text` written in `fmt` and `frame`, in text order, in absolute pixels.

    Returns:
        (groundings, reason): reason None when all markup was read, otherwise a key of
        PARSE_REASONS (the first problem in text order); what could be read is still returned.
        Never raises on the text; an unknown `fmt` (a configuration error) raises ValueError.
    """
    text = text if isinstance(text, str) else ""
    markups = _drop_drafts(text, fmt, _scan(text, fmt))
    if not markups:
        return [], "no_groundings"
    out: list[Grounding] = []
    reasons: list[str | None] = []
    for markup in markups:
        reasons.append(markup.problem)
        groups: dict[tuple[str, str], list[tuple[float, ...]]] = {}
        for phrase, kind, coords in markup.items:
            groups.setdefault((phrase, kind), []).append(coords)
        for (phrase, kind), coords in groups.items():
            pixels, inside = _to_pixels(coords, kind, frame)
            reasons.append(None if inside else "out_of_frame")
            if pixels:
                out.append(Grounding(phrase, kind, pixels, markup.start, markup.end))  # type: ignore[arg-type]
    return out, next((r for r in reasons if r), None)


def _drop_drafts(text: str, fmt: str, markups: list[_Markup]) -> list[_Markup]:
    """Molmo and Qwen ground in their final answer: when markup follows the last closed think
    block, the markup inside it was a draft and is left out."""
    if fmt in ("molmo", "qwen"):
        cut = text.rfind("</think>")
        if cut >= 0 and any(m.start > cut for m in markups):
            return [m for m in markups if m.start > cut]
    return markups


def _to_pixels(coords: list[tuple[float, ...]], kind: str, frame: Frame) -> tuple[list[tuple[float, ...]], bool]:
    """Frame coordinates -> absolute pixels, and whether all of them lie in the frame."""
    xy = np.asarray(coords, dtype=np.float64)
    ex, ey = frame.extent
    limit = np.resize(np.array([ex, ey]), xy.shape[-1])
    inside = bool(((xy >= 0) & (xy <= limit * (1 + 1e-9))).all())
    if kind == "point" and FRAME_DECIMALS[frame.kind] == 0:
        xy = xy + 0.5 * (xy == np.floor(xy))  # an integer names a cell: read its centre
    with np.errstate(over="ignore"):
        pixels = frame.from_frame(xy)
    # A number near the float limit in a normalised frame overflows; such a row was out of frame.
    return [tuple(float(v) for v in row) for row in pixels if np.isfinite(row).all()], inside


def strip_groundings(text: str, fmt: str) -> str:
    """The text-only twin: markup removed (molmo keeps the wrapped phrase), spacing kept fluent.

    ivgr's <think>/<answer> wrappers stay. Where markup sat between words one space remains; no
    space is left before punctuation or at a line's start or end.
    """
    for markup in sorted(_scan(text, fmt), key=lambda m: m.start, reverse=True):
        text = text[: markup.start] + markup.keep + text[markup.end :]
        if not markup.keep:
            text = _mend(text, markup.start)
    return text


_NO_SPACE_BEFORE = set(".,;:!?)]}\n<") | {""}
_NO_SPACE_AFTER = set("([{\n") | {""}


def _mend(text: str, i: int) -> str:
    """Fix the spacing where something was cut out at `i`."""
    left, right = text[:i].rstrip(" \t"), text[i:].lstrip(" \t")
    had_space = len(left) < i or len(right) < len(text) - i
    before, after = left[-1:], right[:1]
    if after in _NO_SPACE_BEFORE or before in _NO_SPACE_AFTER:
        return left + right
    if had_space or (before.isalnum() and after.isalnum()):
        return left + " " + right
    return left + right


def parse_format_name(name: str) -> tuple[str, str]:
    """Split a `grounded_format` value ("tvg:norm1000") into (format, frame kind)."""
    fmt, _, kind = name.partition(":")
    format_name(fmt, kind)  # validates both parts with the choices in its message
    return fmt, kind

