"""The spatial relation a question and its answer claim, and whether grounded boxes satisfy it.

Three question shapes are read (the ones CV-Bench, What'sUp and VSR style items use):
- yes/no: "Is the cup to the left of the plate?" with "yes" claims cup left-of plate; with "no"
  it claims the relation does not hold.
- where: "Where is the cup relative to the plate?" with "left" claims cup left-of plate.
- which: "Which is further left, the cup or the plate?" with "the cup" claims cup left-of plate.
Anything else (or a relation a 2-D box cannot show, such as front/behind) yields no claim, and
the check is skipped rather than guessed.

Geometry: boxes are XYXY absolute pixels; an object's position is the centre of the union box of
its instances. x grows rightwards and y downwards, so "above" means a smaller centre y.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from synth.core.answers import RELATION_SYNONYMS, normalize_relation, normalize_yes_no

#: Relations a pair of 2-D boxes can show; front/behind need depth and are not checked.
CHECKABLE = ("left", "right", "above", "below")

# "holding up the sign", "sitting down": too common as verbs to read as a relation.
_TOO_LOOSE = {"up", "down"}
_WHERE = re.compile(
    r"\bwhere\s+(?:is|are)\s+(?P<subject>.+?)\s+(?:relative to|in relation to|with respect to|"
    r"compared to|positioned relative to|located relative to)\s+(?P<reference>.+?)[?.!]*$",
    re.IGNORECASE,
)
_WHICH = re.compile(
    r"\bwhich\s+(?:one\s+|object\s+|of\s+(?:the|these|them)\s+)?(?:is|are)\s+(?P<relation>[a-z ]+?)\s*,\s*"
    r"(?:the\s+)?(?P<first>.+?)\s+or\s+(?:the\s+)?(?P<second>.+?)[?.!]*$",
    re.IGNORECASE,
)
_COMPARATIVE = re.compile(r"\b(?:further|farther|more|most|the)\b", re.IGNORECASE)
_YES_NO = re.compile(r"^\s*(?:is|are|does|do)\s+(?P<rest>.+?)[?.!]*\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Claim:
    """`subject` `relation` `reference` holds (or, with `holds=False`, does not hold)."""

    subject: str
    relation: str
    reference: str
    holds: bool = True


def question_objects(question: str) -> list[str]:
    """The two objects a spatial question names, in question order; [] for other questions."""
    which = _WHICH.search(question.strip())
    if which:
        return [_clean(which["first"]), _clean(which["second"])]
    where = _WHERE.search(question.strip())
    if where:
        return [_clean(where["subject"]), _clean(where["reference"])]
    match = _YES_NO.match(question)
    claim = _split_on_relation(match["rest"], holds=True) if match else None
    return [claim.subject, claim.reference] if claim else []


def parse_claim(question: str, answer: str) -> Claim | None:
    """The relation claim of a question/answer pair, or None when it is not one this module reads."""
    which = _WHICH.search(question.strip())
    if which:
        return _which_claim(which, answer)
    where = _WHERE.search(question.strip())
    if where:
        relation = normalize_relation(answer)
        if relation in CHECKABLE:
            return Claim(_clean(where["subject"]), relation, _clean(where["reference"]))
        return None
    yes_no = normalize_yes_no(answer)
    match = _YES_NO.match(question)
    if yes_no is None or match is None:
        return None
    return _split_on_relation(match["rest"], holds=yes_no == "yes")


def _which_claim(match: re.Match[str], answer: str) -> Claim | None:
    """"Which is further left, the cup or the plate?" + "the cup" -> Claim(cup, left, plate)."""
    relation = normalize_relation(_COMPARATIVE.sub(" ", match["relation"]))
    first, second = _clean(match["first"]), _clean(match["second"])
    if relation not in CHECKABLE:
        return None
    picks_first, picks_second = _names(answer, first), _names(answer, second)
    if picks_first == picks_second:
        return None
    winner, loser = (first, second) if picks_first else (second, first)
    return Claim(winner, relation, loser)


def _names(answer: str, phrase: str) -> bool:
    words = re.sub(r"[^a-z0-9 ]", " ", answer.lower()).split()
    target = re.sub(r"[^a-z0-9 ]", " ", phrase.lower()).split()
    return bool(target) and any(words[i : i + len(target)] == target for i in range(len(words)))


def _split_on_relation(text: str, holds: bool) -> Claim | None:
    """"the cup to the left of the plate" -> Claim(cup, left, plate)."""
    lowered = text.lower()
    best: tuple[int, int, str] | None = None
    for relation in CHECKABLE:
        for phrase in RELATION_SYNONYMS[relation]:
            if phrase in _TOO_LOOSE:
                continue
            for m in re.finditer(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", lowered):
                # Prefer the longest phrase, then the earliest: "to the left of" over "left".
                key = (m.end() - m.start(), -m.start())
                if best is None or key > (best[1] - best[0], -best[0]):
                    best = (m.start(), m.end(), relation)
    if best is None:
        return None
    start, end, relation = best
    subject, reference = _clean(text[:start]), _clean(text[end:])
    if not subject or not reference or normalize_relation(text[start:end]) != relation:
        return None
    return Claim(subject, relation, reference, holds)


def _clean(phrase: str) -> str:
    phrase = re.sub(r"^(?:located|positioned|placed|situated|sitting|standing)\s+", "", phrase.strip())
    phrase = re.sub(r"\s+(?:located|positioned|placed|situated|sitting|standing)$", "", phrase)
    phrase = re.sub(r"\b(?:in the (?:image|picture|photo))\b", "", phrase, flags=re.IGNORECASE)
    phrase = phrase.strip(" ,?.!")
    return re.sub(r"^(?:the|a|an)\s+", "", phrase, flags=re.IGNORECASE)


def union_box(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) XYXY boxes -> (4,) XYXY box around all of them."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.array([boxes[:, 0].min(), boxes[:, 1].min(), boxes[:, 2].max(), boxes[:, 3].max()])


def relation_holds(relation: str, subject_boxes: np.ndarray, reference_boxes: np.ndarray) -> bool:
    """Whether the subject's union-box centre lies `relation` of the reference's.

    Raises:
        ValueError: `relation` is not one of CHECKABLE, or a side has no box.
    """
    if relation not in CHECKABLE:
        raise ValueError(f"relation {relation!r} cannot be checked on boxes; choices: {', '.join(CHECKABLE)}")
    if len(np.asarray(subject_boxes).reshape(-1, 4)) == 0 or len(np.asarray(reference_boxes).reshape(-1, 4)) == 0:
        raise ValueError("relation check needs at least one box on each side")
    a, b = union_box(subject_boxes), union_box(reference_boxes)
    ax, ay = (a[0] + a[2]) / 2, (a[1] + a[3]) / 2
    bx, by = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    return {"left": ax < bx, "right": ax > bx, "above": ay < by, "below": ay > by}[relation]
