"""The objects a trace relies on: phrases tied to every character span that mentions them.

Two ways to find them:
- `parse_objects`: deterministic. The phrases an item implies (its `label`, the "how many X"
  of a counting question, the two sides of a spatial question) are looked up in the trace; each
  one mentioned becomes an object. Annotation-teacher traces name the label, so this suffices.
- `objects_from_json`: the teacher's JSON answer to prompts/extract_objects.txt, constrained by
  `extract_schema` (vLLM structured outputs); its phrases are looked up the same way.
Both return `(objects, reason)`; reason is an extract reject code when nothing usable is found.
The counted object of a counting item expects the count of the gold answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from synth.core.answers import normalize_count, strip_think
from synth.core.records import GroundedObject, Item
from synth.core.phrases import find_mentions, label_names, same_object
from synth.grounding.relations import question_objects

#: Longest phrase the extractor may answer; names of objects are a few words.
MAX_PHRASE_CHARS = 80


def extract_schema(max_objects: int) -> dict[str, Any]:
    """JSON schema of the extractor's answer (sent as the request's `json_schema`).

    Bounded (at most `max_objects` entries, phrases of at most MAX_PHRASE_CHARS characters), so an
    answer the server constrains to it always closes within a modest token budget.
    """
    return {
        "type": "object",
        "properties": {
            "objects": {
                "type": "array",
                "maxItems": max_objects,
                "items": {
                    "type": "object",
                    "properties": {
                        "phrase": {"type": "string", "minLength": 1, "maxLength": MAX_PHRASE_CHARS},
                        "count": {"type": ["integer", "null"], "minimum": 0},
                        "counted": {"type": "boolean"},
                    },
                    "required": ["phrase", "count", "counted"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["objects"],
        "additionalProperties": False,
    }


_HOW_MANY = re.compile(r"\bhow\s+many\s+(?P<what>[a-z][a-z \-']*?)\s+(?:are|is|can|do|does|were|did|appear|in|on|there)\b",
                       re.IGNORECASE)
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


def implied_phrases(item: Item) -> list[tuple[str, bool]]:
    """Phrases the item implies, each with whether it is the counted object.

    A counting item's label is one name; another item's label may list several ("cup|laptop").
    """
    counting = item.task == "counting"
    names = label_names(item.label, item.task)
    match = _HOW_MANY.search(item.question)
    if match:
        names.append(match["what"].strip())
    names += question_objects(item.question)
    phrases: list[tuple[str, bool]] = []
    for name in names:
        if not any(same_object(p, name) for p, _ in phrases):
            phrases.append((name, counting and not phrases))
    return phrases


def build_object(trace: str, phrase: str, expected: int | None) -> GroundedObject | None:
    """The object for `phrase` if the trace mentions it; its phrase is the trace's own words."""
    spans = find_mentions(trace, phrase)
    if not spans:
        return None
    start, end = spans[0]
    return GroundedObject(phrase=trace[start:end], spans=spans, expected_count=expected)


def parse_objects(trace: str, item: Item, max_objects: int) -> tuple[list[GroundedObject], str | None]:
    """Objects found deterministically (see module docstring)."""
    count = normalize_count(item.answer)
    objects: list[GroundedObject] = []
    for phrase, counted in implied_phrases(item):
        obj = build_object(trace, phrase, count if counted else None)
        if obj is not None and not _overlaps(obj, objects):
            objects.append(obj)
    if not objects:
        return [], "no_objects"
    return objects[:max_objects], None


def load_json_answer(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object from model text: think blocks and fences removed, strict parse, then the
    outermost {...} block. Returns (value, None) or (None, reason).

    Raw control characters inside strings are read (JSON wants them escaped): a server's
    structured-output grammar lets a model write them, and the rest of such an answer is sound.
    """
    body = strip_think(text or "")
    fenced = _FENCE.search(body)
    if fenced:
        body = fenced.group(1)
    for attempt in (body.strip(), _outer_braces(body)):
        if not attempt:
            continue
        try:
            value = json.loads(attempt, strict=False)
        except (ValueError, RecursionError):  # not JSON, a number too long to convert, nesting too deep
            continue
        if isinstance(value, dict):
            return value, None
    return None, "no JSON object in the answer"


def _outer_braces(text: str) -> str:
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else ""


def objects_from_json(
    text: str, trace: str, item: Item, max_objects: int
) -> tuple[list[GroundedObject], str | None, str]:
    """Objects from the extractor's answer: (objects, reason, detail); reason None on success."""
    value, problem = load_json_answer(text)
    entries = value.get("objects") if value else None
    if not isinstance(entries, list):
        return [], "extract_unparseable", problem or "the JSON has no 'objects' list"
    count = normalize_count(item.answer) if item.task == "counting" else None
    objects: list[GroundedObject] = []
    missing: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("phrase"), str):
            return [], "extract_unparseable", f"an object entry is not {{'phrase': str, ...}}: {entry!r}"[:300]
        expected = count if entry.get("counted") and count is not None else _int_or_none(entry.get("count"))
        obj = build_object(trace, entry["phrase"], expected)
        if obj is None:
            missing.append(entry["phrase"])
        elif not _overlaps(obj, objects):
            objects.append(obj)
    if not objects:
        detail = f"no extracted phrase occurs in the trace (extracted: {missing})" if missing else "no objects extracted"
        return [], "no_objects", detail
    return objects[:max_objects], None, ""


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _overlaps(obj: GroundedObject, objects: list[GroundedObject]) -> bool:
    """Whether `obj` names an object already found, or its first mention is another's words."""
    return any(same_object(obj.phrase, o.phrase) or obj.spans[0] in o.spans for o in objects)
