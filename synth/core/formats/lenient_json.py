"""Lenient JSON: JSON in model text read strictly first, then repaired, then with a truncated tail closed."""

from __future__ import annotations

import json
import re
from typing import Any

#: A Markdown code fence (```json ... ```), possibly left open at the end of the text.
FENCE = re.compile(r"```[ \t]*(?:json)?[ \t]*\n?(.*?)(?:```|\Z)", re.IGNORECASE | re.DOTALL)

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
        s = FENCE.sub(lambda m: m.group(1), s, count=1).strip()
    value = _loads_stripped(s)
    if value is not _FAIL:
        return value, None
    fixed = _SINGLE_QUOTED.sub(lambda m: json.dumps(m.group(1)), _TRAILING_COMMA.sub(r"\1", s))
    value = _loads(fixed)
    if value is not _FAIL:
        return value, "repaired"
    value = _close_truncated(fixed)
    return (None, "malformed") if value is _FAIL else (value, "truncated")


_FAIL = object()
# json.loads, minus its per-call set-up: rewards read a few short JSON values per text.
_SCAN_ONCE = json.JSONDecoder().scan_once
_JSON_SPACE = re.compile(r"[ \t\n\r]*")  # the whitespace JSON allows between tokens


def _loads(s: str) -> Any:
    """`json.loads(s)`, or _FAIL where it raises."""
    if s.startswith("\ufeff"):  # json.loads refuses a byte-order mark
        return _FAIL
    try:
        value, end = _SCAN_ONCE(s, _JSON_SPACE.match(s).end())  # type: ignore[union-attr]
    except (StopIteration, ValueError, RecursionError):
        return _FAIL
    return value if _JSON_SPACE.match(s, end).end() == len(s) else _FAIL  # type: ignore[union-attr]


def _loads_stripped(s: str) -> Any:
    """`_loads` of a string without surrounding whitespace: the value must fill all of it."""
    found = None if s.startswith("\ufeff") else json_value_at(s, 0)
    return found[0] if found is not None and found[1] == len(s) else _FAIL


def json_value_at(text: str, start: int) -> tuple[Any, int] | None:
    """(value, end) of the strict JSON value opening at text[start], or None when it is not one.

    For a value opening with a bracket, `end` is where `balanced_end` would stop: strict JSON
    closes every bracket it opens and hides brackets only inside strings.
    """
    try:
        return _SCAN_ONCE(text, start)  # type: ignore[no-any-return]
    except (StopIteration, ValueError, RecursionError):
        return None


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


# What `balanced_end` looks at: brackets, quotes, and a backslash with the character it escapes.
_JSON_SYNTAX = re.compile(r'\\.|["\[\]{}]', re.DOTALL)


def balanced_end(text: str, start: int, stop: int | None = None) -> int:
    """End of the JSON value opening at `start` (string-aware), or `stop` (the text's end)."""
    depth, in_string = 0, False
    stop = len(text) if stop is None else stop
    for m in _JSON_SYNTAX.finditer(text, start, stop):
        ch = m.group()
        if in_string:
            in_string = ch != '"'  # an escaped character (two long) never ends the string
            continue
        ch = ch[-1]  # outside strings a backslash means nothing; the character after it counts
        if ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
            if depth == 0:
                return m.end()
    return stop
