"""Object phrases in text: every mention of a phrase, and whether two phrases name the same thing.

Matching is case-insensitive, on word boundaries, and tolerant of number on the last word
("coin" finds "coins", "berries" finds "berry"), because a trace says "3 coins" about the label
"coin". Spans are `(start, end)` character offsets, end exclusive.
"""

from __future__ import annotations

import re

_IRREGULAR = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "foot": "feet", "tooth": "teeth", "goose": "geese", "knife": "knives", "leaf": "leaves",
    "shelf": "shelves", "wolf": "wolves", "loaf": "loaves", "ox": "oxen", "die": "dice",
}
_IRREGULAR_SINGULAR = {plural: singular for singular, plural in _IRREGULAR.items()}
#: Words whose plural is the same ("3 sheep"), so no variant is made.
_INVARIANT = {"sheep", "fish", "deer", "series", "species", "aircraft", "scissors", "pants"}
_DETERMINERS = {"the", "a", "an", "this", "that", "these", "those", "each", "every", "all", "some"}


def singular(word: str) -> str:
    """A best-effort singular of an English noun ("boxes" -> "box", "berries" -> "berry")."""
    w = word.lower()
    if w in _INVARIANT or len(w) < 3:
        return w
    if w in _IRREGULAR_SINGULAR:
        return _IRREGULAR_SINGULAR[w]
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("ches", "shes", "sses", "xes", "zes")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


def plural(word: str) -> str:
    """A best-effort plural of an English noun ("box" -> "boxes", "berry" -> "berries")."""
    w = word.lower()
    if w in _INVARIANT:
        return w
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if w.endswith("y") and len(w) > 2 and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    if w.endswith(("ch", "sh", "s", "x", "z")):
        return w + "es"
    return w + "s"


def normalize_phrase(phrase: str) -> str:
    """Lowercase words without leading determiners, last word singular: "The Red Apples" -> "red apple"."""
    words = re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*", phrase.lower())
    while words and words[0] in _DETERMINERS:
        words = words[1:]
    if words:
        words[-1] = singular(words[-1])
    return " ".join(words)


def phrase_variants(phrase: str) -> list[str]:
    """The phrase with its last word in singular and plural, longest first, normalized."""
    base = normalize_phrase(phrase)
    if not base:
        return []
    head, _, last = base.rpartition(" ")
    prefix = head + " " if head else ""
    forms = {prefix + last, prefix + plural(last)}
    return sorted(forms, key=len, reverse=True)


def find_mentions(text: str, phrase: str) -> list[tuple[int, int]]:
    """Every non-overlapping mention of `phrase` (either number) in `text`, in order of position."""
    variants = phrase_variants(phrase)
    if not variants:
        return []
    words = [r"\s+".join(re.escape(w) for w in v.split(" ")) for v in variants]
    pattern = re.compile(r"(?<![\w-])(?:" + "|".join(words) + r")(?![\w-])", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def same_object(a: str, b: str) -> bool:
    """Whether two phrases name the same kind of object: equal after normalizing, or one is the
    other's head with modifiers ("red coin" and "coins"; not "coin" and "coin purse")."""
    na, nb = normalize_phrase(a), normalize_phrase(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    short, long = sorted((na, nb), key=len)
    return long.endswith(" " + short)


def label_names(label: str | None, task: str) -> list[str]:
    """The object names an item's label gives: a counting label is one name; another task's label
    may list several, in annotation order ("cup|laptop", "cup; laptop", "cup and laptop")."""
    if not label or not label.strip():
        return []
    if task == "counting":
        return [label.strip()]
    return [n for n in re.split(r"\s*(?:[|;,]|\band\b)\s*", label.strip()) if n]
