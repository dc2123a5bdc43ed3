"""Scanning: grounding markup found in model text, in frame units, with what is wrong with it.

One scanner per format family (tvg/ivgr tags, molmo elements, qwen JSON); each returns `Markup`
pieces in text order. `parse` turns them into pixels and `strip_groundings` cuts them out.
"""

from __future__ import annotations

import bisect
import html
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from synth.core.formats.frames import ARITY, check_format
from synth.core.formats.lenient_json import FENCE, balanced_end, json_value_at, parse_json_lenient


@dataclass
class Markup:
    """One piece of grounding markup: where it is, what replaces it when stripped, what it says."""

    start: int
    end: int
    keep: str = ""  # text left in its place by strip_groundings (molmo keeps the phrase)
    # (phrase, kind) -> coordinate tuples in frame units, in the order written; no empty lists.
    groups: dict[tuple[str, str], list[tuple[float, ...]]] = field(default_factory=dict)
    problem: str | None = None


def _coord_tuple(value: Any, arity: int) -> tuple[float, ...] | None:
    """`value` as `arity` finite floats, or None (JSON integers can be too large for a float)."""
    if not isinstance(value, (list, tuple)) or len(value) != arity:
        return None
    if not _JSON_NUMBERS.issuperset(map(type, value)):  # JSON gives exact types; others one by one
        for v in value:
            if not isinstance(v, _REAL) or isinstance(v, bool):
                return None
    try:
        out = tuple(map(float, value))
    except OverflowError:
        return None
    return out if all(map(math.isfinite, out)) else None


_REAL = (int, float)
_JSON_NUMBERS = frozenset(_REAL)


def _coords(value: Any, arity: int) -> tuple[list[tuple[float, ...]], bool]:
    """Coordinate tuples in `value` (one tuple or a list of them) and whether all of it was usable."""
    one = _coord_tuple(value, arity)
    if one is not None:
        return [one], True
    if not isinstance(value, list) or not value:
        return [], False
    rows = [_coord_tuple(row, arity) for row in value]
    good = [row for row in rows if row is not None]
    return good, len(good) == len(value)


# Non-negative JSON numbers whose integer part is short (float() of the digits then equals
# float() of the JSON integer), in lists written the way render_trace writes them: "[x,y,x,y]"
# or "[[x,y],[x,y]]", no spaces.
_NUMBER = r"(?:0|[1-9][0-9]{0,8})(?:\.[0-9]+)?"
_FLAT_NUMBERS = re.compile(rf"\[{_NUMBER}(?:,{_NUMBER})*\]")
_NESTED_NUMBERS = re.compile(rf"\[\[{_NUMBER}(?:,{_NUMBER})*\](?:,\[{_NUMBER}(?:,{_NUMBER})*\])*\]")


def _plain_numbers(body: str, arity: int) -> tuple[list[tuple[float, ...]], bool] | None:
    """`_coords(json.loads(body), arity)` for a body of plain numbers, else None.

    A tag body is read per tag of every rollout; this skips the JSON reader and its type checks
    for the form render_trace writes (float() of such a number equals float() of its JSON value).
    """
    if _FLAT_NUMBERS.fullmatch(body):
        row = body[1:-1].split(",")
        return ([tuple(map(float, row))], True) if len(row) == arity else ([], False)
    if _NESTED_NUMBERS.fullmatch(body):
        rows = [r.split(",") for r in body[2:-2].split("],[")]
        good = [tuple(map(float, r)) for r in rows if len(r) == arity]
        return good, len(good) == len(rows)
    return None


# Opening and closing tags in one pass: group 1 names an opening tag, group 2 a closing one.
_TAG = re.compile(r"<(?:(point|box)|/(point|box)\s*)>", re.IGNORECASE)
_SPACES = re.compile(r"\s*")


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


def _paired_tags(text: str) -> list[tuple[re.Match, str, re.Match | None, int]]:
    """(opening tag, kind, its closing tag or None, where the next opening tag starts) in order.

    A closing tag belongs to the nearest opening tag of its kind before it with no other opening
    tag in between; one pass, so a text of many unclosed tags stays linear.
    """
    tags = list(_TAG.finditer(text))
    out: list[tuple[re.Match, str, re.Match | None, int]] = []
    for i, m in enumerate(tags):
        kind = m.group(1)
        if kind is None:
            continue
        kind, close, k = kind.lower(), None, i + 1
        while k < len(tags) and tags[k].group(1) is None:
            if close is None and tags[k].group(2).lower() == kind:
                close = tags[k]
            k += 1
        out.append((m, kind, close, tags[k].start() if k < len(tags) else len(text)))
    return out


# A whole tag whose body holds no "<", or a lone tag; when every match is a whole tag with
# matching kinds, the pairing of `_paired_tags` is plain: each tag closes right after its body.
_WHOLE_TAG = re.compile(r"<(point|box)>([^<]*)</(point|box)\s*>|<(?:point|box)>|</(?:point|box)\s*>", re.IGNORECASE)
_TagSpan = tuple[int, str, int, int, int, str | None]  # start, kind, body start, body end, end, problem


def _tag_spans(text: str) -> list[_TagSpan]:
    """Every opening tag with its kind, body and end, and the problem of an unclosed one."""
    spans: list[_TagSpan] = []
    for m in _WHOLE_TAG.finditer(text):  # the usual case: well-formed tags, one regex pass
        kind, _, close = m.groups()
        if kind is None or (kind != close and kind.lower() != close.lower()):
            break
        start, end = m.span()
        body_start, body_end = m.span(2)
        spans.append((start, kind.lower(), body_start, body_end, end, None))
    else:
        return spans
    spans = []
    for m, kind, close, limit in _paired_tags(text):
        if close is None:  # the coordinates are the bracketed value right after the tag, if any
            body = _SPACES.match(text, m.end()).end()  # type: ignore[union-attr]
            body_end = balanced_end(text, body, limit) if text.startswith("[", body) else m.end()
            problem = "truncated" if _at_end(text, body_end) else "malformed"
            spans.append((m.start(), kind, m.end(), body_end, body_end, problem))
        else:
            spans.append((m.start(), kind, m.end(), close.start(), close.end(), None))
    return spans


def _scan_tags(text: str, merge_adjacent: bool) -> list[Markup]:
    """tvg and ivgr tags; ivgr's back-to-back tags of one kind form one grounding."""
    found: list[Markup] = []
    for start, kind, body_start, body_end, end, problem in _tag_spans(text):
        body, why = text[body_start:body_end], None
        read = _plain_numbers(body, ARITY[kind])
        if read is None:
            value, why = parse_json_lenient(body)
            read = _coords(value, ARITY[kind])
        coords, complete = read
        problem = problem or (why if why in ("truncated", "malformed") else None) or (None if complete else "malformed")
        prev = found[-1].groups if found else None  # a tag's markup holds one group at most
        key = next(iter(prev)) if prev else None
        if merge_adjacent and key and found[-1].end == start and key[1] == kind:
            prev[key] += coords  # type: ignore[index]
            found[-1].end, found[-1].problem = end, found[-1].problem or problem
        else:
            groups = {(_phrase_before(text, start), kind): coords} if coords else {}
            found.append(Markup(start, end, "", groups, problem))
    return found


_MOLMO_OPEN = re.compile(r"<(points?)\b([^<>]*)(>|\Z)", re.IGNORECASE)  # may be cut off at the end
_MOLMO_CLOSE = re.compile(r"</points?\s*>", re.IGNORECASE)
_ATTR = re.compile(r"([A-Za-z_][\w-]*)\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


def _scan_molmo(text: str) -> list[Markup]:
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
        found.append(Markup(m.start(), end, inner, {(phrase, "point"): points} if points else {}, problem))
    return found


def _molmo_points(attrs: dict[str, str]) -> tuple[list[tuple[float, ...]], bool]:
    """The finite (x, y) pairs of a molmo element's attributes, and whether every pair read."""
    pairs = [("x", "y")] if "x" in attrs or "y" in attrs else []
    # Keys of the form [xy]<decimal digits> (isdecimal is exactly regex \d), e.g. x1, y1, x2.
    index = sorted({int(k[1:]) for k in attrs if k[0] in "xy" and k[1:].isdecimal()})
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


# An object that names a geometry key within its first 200 characters, maybe opening a list.
_QWEN_START = re.compile(r"(?:\[\s*)?\{(?=[^{}]{0,200}?[\"']?(?:bbox_2d|point_2d)[\"']?\s*:)")
_QWEN_OBJECT = re.compile(r"\{[^{}]*\}")
_QWEN_KEY = re.compile(r"(?:bbox_2d|point_2d)[\"']?\s*:")


def _qwen_starts(text: str) -> list[int]:
    """Where `_QWEN_START.finditer` matches start, found from the keys backwards.

    Scanning forwards, the regex looks ahead up to 200 characters from every "{"; there are few
    keys, and each belongs to the last "{" before it when no brace lies between and the key
    starts within 200 characters (201 after a quote) of it.
    """
    out, last = [], -1
    for key in _QWEN_KEY.finditer(text):
        w = key.start()
        brace = text.rfind("{", max(0, w - 202), w)
        if brace < 0 or brace == last or "}" in text[brace + 1 : w]:
            continue
        gap = w - brace - 1
        if gap > 201 or (gap == 201 and text[w - 1] not in "\"'"):
            continue
        last, i = brace, brace
        while i > 0 and text[i - 1].isspace():  # str.isspace is the regex's \s
            i -= 1
        out.append(i - 1 if i > 0 and text[i - 1] == "[" else brace)
    return out


def _scan_qwen(text: str) -> list[Markup]:
    """Qwen JSON groundings: fenced blocks, inline lists and bare objects."""
    fenced = [m for m in FENCE.finditer(text) if _QWEN_START.search(m.group(1))]
    found = [_read_qwen(text, m.start(), m.end(), *parse_json_lenient(m.group(1))) for m in fenced]
    fences, k, pos = [(f.start, f.end) for f in found], 0, 0
    for start in _qwen_starts(text):
        while k < len(fences) and fences[k][1] <= start:
            k += 1
        if start < pos or (k < len(fences) and fences[k][0] <= start):
            continue  # inside a fence or a list already read
        read = json_value_at(text, start)
        if read is None:  # not JSON as it stands: its balanced extent, repaired
            pos = balanced_end(text, start)
            found.append(_read_qwen(text, start, pos, *parse_json_lenient(text[start:pos])))
        else:
            value, pos = read
            found.append(_read_qwen(text, start, pos, value, None))
    return sorted(found, key=lambda f: f.start)


def _read_qwen(text: str, start: int, end: int, value: Any, why: str | None) -> Markup:
    """The markup at text[start:end], whose JSON `parse_json_lenient` read as (value, why)."""
    values = value if isinstance(value, list) else [value]
    if value is None:  # unreadable as a whole: read the objects one by one
        values = [parse_json_lenient(o)[0] for o in _QWEN_OBJECT.findall(text, start, end)]
        why = "malformed"
    groups: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    complete = True
    for obj in values:
        if not isinstance(obj, dict):
            complete = False  # a stray non-object is a defect
            continue
        if "bbox_2d" in obj:  # the box wins when an object names both
            key, kind = "bbox_2d", "box"
        elif "point_2d" in obj:
            key, kind = "point_2d", "point"
        else:
            continue
        coords, ok = _coords(obj[key], ARITY[kind])  # type: ignore[index]
        complete = complete and ok
        label = obj.get("label")
        phrase = label.strip() if isinstance(label, str) else _phrase_before(text, start)
        if coords:
            groups.setdefault((phrase, kind), []).extend(coords)  # type: ignore[arg-type]
    problem = why if why in ("truncated", "malformed") else (None if complete and groups else "malformed")
    return Markup(start, end, "", groups, problem)


# Everything up to the last clause break (greedy, so one match finds the last one).
_UP_TO_BREAK = re.compile(r".*[.!?;:,()\[\]{}<>\n\"]", re.DOTALL)
_WORD = re.compile(r"[^\W\d_][\w'-]*|\d+")
_NOT_PHRASE = frozenset(
    "a an the this that these those each every all both some any its their his her my our your "
    "of in on at to by with from and or is are was were be see sees count counted there here i we "
    "it they them which what where one two three four five six seven eight nine ten".split()
)


def _phrase_before(text: str, pos: int) -> str:
    """The words just before `pos` that likely name the grounded object (best effort)."""
    start = max(0, pos - 160)
    clause = _UP_TO_BREAK.match(text, start, pos)
    return _phrase_in(text[clause.end() if clause else start : pos])


@lru_cache(maxsize=4096)  # rollouts of one prompt repeat the clause before each tag
def _phrase_in(clause: str) -> str:
    """The last words of `clause`: up to four, after the last determiner, number or stop word."""
    words = _WORD.findall(clause)
    tail: list[str] = []
    for word in reversed(words):
        if word.lower() in _NOT_PHRASE or word.isdigit() or len(tail) == 4:
            break
        tail.append(word)
    return " ".join(reversed(tail)) or (words[-1] if words else "")


def scan(text: str, fmt: str) -> Sequence[Markup]:
    """The markup of `fmt` in `text`, in text order (ValueError for an unknown `fmt`).

    The last scan is kept: rewards parse a text and then strip the same text to read its final
    answer, and scanning broken markup (JSON repair) is the costly part of both. Callers must not
    change what it returns.
    """
    check_format(fmt)
    last = _LAST_SCAN[0]
    if last is not None and last[0] is text and last[1] == fmt:
        return last[2]
    if fmt == "molmo":
        found = _scan_molmo(text)
    elif fmt == "qwen":
        found = _scan_qwen(text)
    else:
        found = _scan_tags(text, merge_adjacent=fmt == "ivgr")
    entry = (text, fmt, tuple(found))
    _LAST_SCAN[0] = entry  # one store, so threads never see a torn entry
    return entry[2]


# (text, fmt, markups) of the last scan; the text is matched by identity, which costs nothing.
_LAST_SCAN: list[tuple[str, str, tuple[Markup, ...]] | None] = [None]
