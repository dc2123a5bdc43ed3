"""Teacher backend `annotation`: template reasoning traces written from a dataset's annotations.

For items whose annotations determine the answer, the trace can be written from them instead of
sampled from a model, the scene-graph route of SpatialVLM-style synthesis:

- counting: the item's points, boxes or masks (every counted object, as in PixMo-Count or COCO)
  and its `label`. The trace names each object with its location on a 3x3 grid of the image
  ("a coin near the top left, another coin in the center, ...") and ends with
  `<answer>N</answer>`, N the number of annotations. More than 12 objects are told by region
  ("4 coins near the top left, ...").
- spatial: two boxes with `label` naming both objects, "cup|laptop" (also ";" or ","), in box
  order. The trace places both objects and states the relation of the question's subject to the
  other one along the axis where their centres differ most (left/right or above/below), then
  answers as the question asks: an option, yes/no, or the relation word. Front/behind needs depth,
  which boxes do not give: such questions get a per-request error.

Several templates, the order objects are told in and the wording vary with the sample index
and the seed, so k samples are k different traces. The label phrase always appears verbatim so
the extract stage finds it. An item without annotations gets the per-request error
`no_annotations`. This is a real backend for annotated data; production runs on unannotated
images use a VLM through vLLM (`vllm_server`).
"""

from __future__ import annotations

import hashlib
import inspect
import random
import re
from dataclasses import dataclass

from synth.adapters.base import Completion, TeacherRequest, TeacherResponse
from synth.core.answers import normalize_relation, normalize_yes_no
from synth.core.records import Item

ORDINALS = ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
            "tenth", "eleventh", "twelfth"]
MAX_LISTED = 12
RELATION_WORDS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
YES_NO_START = re.compile(r"^\s*(is|are|does|do|can|was|were)\b", re.IGNORECASE)
WHICH_START = re.compile(r"^\s*which\b", re.IGNORECASE)
WHICH_AXIS = re.compile(r"\b(left|right|above|below|higher|lower|top|bottom)\b")


@dataclass
class AnnotatedRequest(TeacherRequest):
    """A TeacherRequest that carries its item, so annotation-driven backends can read it.

    `width`, `height` are the upright image's size in pixels (0 when unknown).
    """

    item: Item | None = None
    width: int = 0
    height: int = 0


def region(x: float, y: float, width: int, height: int) -> str:
    """Where (x, y) lies on a 3x3 grid of the image: "near the top left", "in the center", ..."""
    col = min(2, max(0, int(3 * x / max(width, 1))))
    row = min(2, max(0, int(3 * y / max(height, 1))))
    vertical, horizontal = ("top", "", "bottom")[row], ("left", "", "right")[col]
    if not vertical and not horizontal:
        return "in the center"
    if not vertical:
        return f"on the {horizontal}"
    return f"near the {vertical} {horizontal}".rstrip()


def object_centres(item: Item) -> list[tuple[float, float]]:
    """Centres (x, y) of the annotated objects, absolute pixels: points, else boxes, else masks."""
    if item.points:
        return [(float(p[0]), float(p[1])) for p in item.points]
    if item.boxes:
        return [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in item.boxes]
    if item.masks:
        from pycocotools import mask as mask_utils

        centres = []
        for rle in item.masks:
            x, y, w, h = mask_utils.toBbox(_rle_for_pycocotools(rle))
            centres.append((float(x + w / 2), float(y + h / 2)))
        return centres
    return []


def _rle_for_pycocotools(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode() if isinstance(counts, str) else counts}


def image_size(request: AnnotatedRequest) -> tuple[int, int]:
    """The image's (width, height): from the request, a mask's size, or the image header."""
    if request.width and request.height:
        return request.width, request.height
    item = request.item
    if item is not None and item.masks:
        h, w = item.masks[0]["size"]
        return int(w), int(h)
    if request.image_bytes:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(request.image_bytes)) as image:
            return image.size
    raise ValueError("the image size is unknown (no width/height, masks or image bytes)")


def singular(label: str) -> str:
    """A rough singular of an English noun phrase ("coins" -> "coin", "boxes" -> "box")."""
    if label.endswith("ies") and len(label) > 4:
        return label[:-3] + "y"
    if re.search(r"(ches|shes|xes|sses)$", label):
        return label[:-2]
    if label.endswith("s") and not label.endswith("ss"):
        return label[:-1]
    return label


def plural(label: str) -> str:
    """A rough plural ("coin" -> "coins", "box" -> "boxes", "person" -> "people")."""
    noun = singular(label)
    if noun.endswith("person"):
        return noun[:-6] + "people"
    if re.search(r"(ch|sh|x|s)$", noun):
        return noun + "es"
    if re.search(r"[^aeiou]y$", noun):
        return noun[:-1] + "ies"
    return noun + "s"


def article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


def _rng(seed: int, request_id: str, sample: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{request_id}:{sample}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# --- counting ----------------------------------------------------------------------------------

def counting_trace(label: str, centres: list[tuple[float, float]], width: int, height: int,
                   rng: random.Random) -> str:
    """A trace naming each object and its place, ending with `<answer>N</answer>`."""
    one, many, count = singular(label), plural(label), len(centres)
    order, how = rng.choice([
        (lambda c: (c[0], c[1]), "Scanning the image from left to right"),
        (lambda c: (c[1], c[0]), "Going through the image from top to bottom"),
        (lambda c: (int(3 * c[1] / max(height, 1)), c[0]), "Looking row by row"),
    ])
    places = [region(x, y, width, height) for x, y in sorted(centres, key=order)]
    opening = rng.choice([
        f"The question asks about {many}, so I look for each one.",
        f"I need to find all the {many} in the image.",
        f"Let me locate each of the {many} in the image.",
    ])
    if count > MAX_LISTED:
        groups: dict[str, int] = {}
        for place in places:
            groups[place] = groups.get(place, 0) + 1
        parts = [f"{n} {many if n > 1 else one} {place}" for place, n in groups.items()]
        body = f"{how}, I can see " + _join(parts) + "."
    else:
        parts = []
        for i, place in enumerate(places):
            if i == 0:
                parts.append(f"{article(one)} {place}")
            elif rng.random() < 0.5:
                parts.append(f"another {one} {place}")
            else:
                parts.append(f"a {ORDINALS[i]} {one} {place}")
        body = f"{how}, I can see " + _join(parts) + "."
    closing = rng.choice([
        f"That makes {count} {many if count != 1 else one} in total.",
        f"Counting them gives {count}.",
        f"So there {'is' if count == 1 else 'are'} {count} {many if count != 1 else one}.",
    ])
    return f"{opening} {body} {closing}\n<answer>{count}</answer>"


def _join(parts: list[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


# --- spatial -----------------------------------------------------------------------------------

def spatial_names(label: str | None) -> list[str]:
    """The two object names of a spatial item's label ("cup|laptop", "cup; laptop", "cup, laptop")."""
    if not label:
        return []
    return [name.strip() for name in re.split(r"[|;,]", label) if name.strip()]


def _subject_first(question: str, names: list[str]) -> bool:
    """Whether the question's subject is the first name (it is mentioned first, or only it is)."""
    lowered = question.lower()
    first, second = (lowered.find(singular(n.lower())) for n in names)
    if first < 0 or second < 0:
        return first >= 0 or second < 0
    return first <= second


def spatial_trace(item: Item, width: int, height: int, rng: random.Random) -> str:
    """A trace placing two boxed objects and stating their relation; raises ValueError if it cannot."""
    names = spatial_names(item.label)
    if len(names) != 2 or len(item.boxes) != 2:
        raise ValueError(f"a spatial item needs 2 boxes and a label naming 2 objects, found "
                         f"{len(item.boxes)} boxes and label {item.label!r}")
    centres = [((b[0] + b[2]) / 2, (b[1] + b[3]) / 2) for b in item.boxes]
    if not _subject_first(item.question, names):
        names, centres = names[::-1], centres[::-1]
    (ax, ay), (bx, by) = centres
    dx, dy = ax - bx, ay - by
    axis = _asked_axis(item) or ("x" if abs(dx) >= abs(dy) else "y")
    relation = ("left" if dx < 0 else "right") if axis == "x" else ("above" if dy < 0 else "below")
    subject, other = names
    places = [region(x, y, width, height) for x, y in centres]
    facts = rng.choice([
        f"I can see the {subject} {places[0]} and the {other} {places[1]}.",
        f"The {other} is {places[1]}, and the {subject} is {places[0]}.",
    ])
    statement = f"Comparing their centres, the {subject} is {RELATION_WORDS[relation]} the {other}."
    answer, conclusion = _spatial_answer(item, names, relation, dx, dy)
    return f"{facts} {statement} {conclusion}\n<answer>{answer}</answer>"


X_WORDS = re.compile(r"\b(left|right)\b")
Y_WORDS = re.compile(r"\b(above|below|higher|lower|top|bottom|under|beneath|over)\b")


def _asked_axis(item: Item) -> str | None:
    """"x" or "y" when the question and options speak of one axis only, else None (the dominant one)."""
    text = " ".join([item.question, *item.choices]).lower()
    horizontal, vertical = bool(X_WORDS.search(text)), bool(Y_WORDS.search(text))
    if horizontal == vertical:
        return None
    return "x" if horizontal else "y"


def _spatial_answer(item: Item, names: list[str], relation: str, dx: float, dy: float) -> tuple[str, str]:
    """The answer in the form the question wants, and the closing sentence.

    `names` is (subject, other); `dx`, `dy` are the subject's centre minus the other's.
    """
    question, choices = item.question, item.choices
    yes_no_options = bool(choices) and all(normalize_yes_no(c) is not None for c in choices)
    if WHICH_START.match(question) and not choices:
        word = WHICH_AXIS.search(question.lower())
        if word is None:
            raise ValueError(f"the question asks a relation boxes cannot decide: {question!r}")
        sign = {"left": -dx, "right": dx, "above": -dy, "higher": -dy, "top": -dy,
                "below": dy, "lower": dy, "bottom": dy}[word.group(1)]
        name = names[0] if sign > 0 else names[1]
        return name, f"So the answer is the {name}."
    if yes_no_options or (YES_NO_START.match(question) and not choices):
        asked = normalize_relation(question)
        if asked in (None, "front", "behind"):
            raise ValueError(f"the question asks a relation boxes cannot decide: {question!r}")
        holds = {"left": dx < 0, "right": dx > 0, "above": dy < 0, "below": dy > 0}[asked]
        answer = "yes" if holds else "no"
        if not choices:
            return answer, f"So the answer is {answer}."
        matches = [i for i, c in enumerate(choices) if normalize_yes_no(c) == answer]
    else:
        if normalize_relation(question) in ("front", "behind"):
            raise ValueError(f"the question asks about depth, which boxes cannot decide: {question!r}")
        if not choices:
            return relation, f"So the answer is {relation}."
        matches = [i for i, c in enumerate(choices) if normalize_relation(c) == relation]
    if len(matches) != 1:
        raise ValueError(f"not exactly one option among {choices} fits the relation {relation!r}")
    return item.choices[matches[0]], f"That matches option {chr(65 + matches[0])}."


# --- the backend -------------------------------------------------------------------------------

class AnnotationTeacher:
    """Writes template traces from annotations (module docstring); deterministic given the seed."""

    name = "annotation"
    model_name = "annotation-templates"

    def __init__(self, seed: int = 0):
        self.seed = seed

    @property
    def template_sha256(self) -> str:
        """sha256 of the template code, recorded as the prompt hash of annotation traces."""
        source = "".join(inspect.getsource(f) for f in (counting_trace, spatial_trace, _spatial_answer))
        return hashlib.sha256(source.encode()).hexdigest()

    def setup(self) -> None:
        """Nothing to load."""

    def close(self) -> None:
        """Nothing to release."""

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        """One response of `request.n` traces per request, in order."""
        return [self._respond(r) for r in requests]

    def _respond(self, request: TeacherRequest) -> TeacherResponse:
        item = getattr(request, "item", None)
        if item is None or not (item.points or item.boxes or item.masks):
            return TeacherResponse(request.request_id, error="the item has no points, boxes or masks",
                                   error_kind="no_annotations")
        try:
            width, height = image_size(request)
            texts = [self._trace(item, width, height, _rng(self.seed, request.request_id, i))
                     for i in range(request.n)]
        except (ValueError, KeyError, TypeError) as error:
            return TeacherResponse(request.request_id, error=str(error), error_kind="error")
        completions = [Completion(text=t, finish_reason="stop", completion_tokens=len(t.split())) for t in texts]
        return TeacherResponse(request.request_id, completions=completions)

    @staticmethod
    def _trace(item: Item, width: int, height: int, rng: random.Random) -> str:
        if item.task == "spatial":
            return spatial_trace(item, width, height, rng)
        centres = object_centres(item)
        label = (item.label or "object").strip()
        return counting_trace(label, centres, width, height, rng)

