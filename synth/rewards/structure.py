"""Format and answer rewards: is the text shaped right, and is its final answer correct."""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from typing import Any, Literal

from synth.core.answers import extract_final_answer, verify
from synth.core.formats import FORMATS, Frame
from synth.rewards.parsed import Parsed, strip_markup, frame_for, parse_text
from synth.rewards.result import RewardResult, zero
from synth.rewards.targets import Targets, targets_from_row

Structure = Literal["think_answer", "answer"]

#: The structure each format's renderings have: ivgr wraps the trace in <think>...</think>
#: <answer>...</answer>; the other formats are free reasoning that ends in a final answer (the
#: exporter can wrap them in think/answer too; then ask for "think_answer").
DEFAULT_STRUCTURE: dict[str, Structure] = {fmt: ("think_answer" if fmt == "ivgr" else "answer") for fmt in FORMATS}

# One think block then one answer block, nothing around them but whitespace.
THINK_ANSWER = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*\Z", re.DOTALL)
_TAG_NAMES = ("<think>", "</think>", "<answer>", "</answer>")
# Slack for coordinates a model rounds just past the image edge (e.g. 1000 in norm1000 of a
# 999.6 px edge): a fraction of a pixel is rounding, not a malformed tag.
_EDGE_SLACK_PX = 1.0


def check_structure(text: str, structure: Structure, final: tuple[str | None, str | None] | None = None) -> str | None:
    """None when `text` has the structure; otherwise the reason it does not.

    `final` is `extract_final_answer(text)` when the caller has it already.
    """
    if structure == "think_answer":
        for tag in _TAG_NAMES:
            if text.count(tag) != 1:
                return f"structure: expected one {tag}, found {text.count(tag)}"
        match = THINK_ANSWER.match(text)
        if match is None:
            return "structure: expected <think>...</think><answer>...</answer> and nothing else"
        if not match.group(2).strip():
            return "structure: empty <answer>"
        return None
    if structure == "answer":
        answer, reason = final or extract_final_answer(text)
        return None if answer is not None else f"structure: no final answer ({reason})"
    raise ValueError(f"unknown structure {structure!r}; choices: think_answer, answer")


def check_geometry(parsed: Parsed, width: int, height: int) -> str | None:
    """None when every grounded coordinate is finite, inside the image and boxes are ordered."""
    x_lo, y_lo, x_hi, y_hi = -_EDGE_SLACK_PX, -_EDGE_SLACK_PX, width + _EDGE_SLACK_PX, height + _EDGE_SLACK_PX
    finite = math.isfinite
    for g in parsed.groundings:
        for c in g.coords:
            # Points and boxes written out: this runs for every coordinate of every rollout.
            if len(c) == 2:
                x, y = c
                if not (finite(x) and finite(y)):
                    return f"tags: a {g.kind} has a non-finite coordinate"
                if not (x_lo <= x <= x_hi and y_lo <= y <= y_hi):
                    return f"tags: a {g.kind} lies outside the {width}x{height} image"
                continue
            if len(c) == 4:
                x0, y0, x1, y1 = c
                if not (finite(x0) and finite(y0) and finite(x1) and finite(y1)):
                    return f"tags: a {g.kind} has a non-finite coordinate"
                if not (x_lo <= x0 <= x_hi and x_lo <= x1 <= x_hi and y_lo <= y0 <= y_hi and y_lo <= y1 <= y_hi):
                    return f"tags: a {g.kind} lies outside the {width}x{height} image"
                if x1 <= x0 or y1 <= y0:
                    return "tags: a box has x1 <= x0 or y1 <= y0"
                continue
            if not all(map(finite, c)):
                return f"tags: a {g.kind} has a non-finite coordinate"
            if not all(x_lo <= x <= x_hi for x in c[0::2]) or not all(y_lo <= y <= y_hi for y in c[1::2]):
                return f"tags: a {g.kind} lies outside the {width}x{height} image"
    return None


def format_reward(
    text: Any,
    row: dict[str, Any],
    fmt: str,
    frame: Frame | str,
    structure: Structure | None = None,
    min_groundings: int = 1,
) -> RewardResult:
    """1.0 when the text has the structure and well-formed grounding tags of `fmt`, else 0.0.

    Structure: "think_answer" (exactly one <think>...</think> then one non-empty
    <answer>...</answer>, nothing else) or "answer" (a final answer can be read); by default
    the one of DEFAULT_STRUCTURE. Well-formed: the parser accepts every tag, at least `min_groundings` groundings are present,
    coordinates are finite and inside the image, boxes have positive extent.
    """
    targets = targets_from_row(row)
    parsed = parse_text(text, fmt, frame_for(frame, targets.width, targets.height))
    return format_from_parsed(text, parsed, targets, structure or DEFAULT_STRUCTURE[fmt], min_groundings)


def format_from_parsed(
    text: Any, parsed: Parsed, targets: Targets, structure: Structure = "think_answer", min_groundings: int = 1
) -> RewardResult:
    """`format_reward` on a text already parsed."""
    if not isinstance(text, str):
        return zero(f"not_text: got {type(text).__name__}")
    n = len(parsed.groundings)
    if structure == "answer":
        reason = check_structure(parsed.plain_text(), structure, parsed.final_answer())
    else:
        reason = check_structure(text, structure)
    if reason is None and parsed.reason is not None:
        reason = f"tags: {parsed.reason}"
    if reason is None and n < min_groundings:
        reason = f"tags: {n} groundings, expected at least {min_groundings}"
    if reason is None:
        reason = check_geometry(parsed, targets.width, targets.height)
    if reason is not None:
        return zero(reason, n_groundings=n)
    return RewardResult(1.0, None, {"n_groundings": n})


_VERIFIED: OrderedDict[tuple, bool] = OrderedDict()
_VERIFIED_SIZE = 65536  # rollouts of one prompt repeat a few answers ("3", "left"): most calls hit


def _verify(task: str, predicted: str, gold: str, choices: tuple[str, ...]) -> bool:
    """`verify`, memoized: it is pure, and normalizing relations or counts costs tens of microseconds."""
    key = (task, predicted, gold, choices)
    hit = _VERIFIED.get(key)
    if hit is None:
        hit = _VERIFIED[key] = verify(task, predicted, gold, choices)
        if len(_VERIFIED) > _VERIFIED_SIZE:
            _VERIFIED.popitem(last=False)
    return hit


def answer_reward(text: Any, row: dict[str, Any], fmt: str | None = None) -> RewardResult:
    """1.0 when the text's final answer verifies against the row's gold answer (teach's verifier).

    With `fmt`, the grounding markup of that format is stripped first, so the coordinates of a
    tag in the last sentence are not read as part of the answer.
    """
    if not isinstance(text, str):
        return zero(f"not_text: got {type(text).__name__}")
    plain = strip_markup(text, fmt) if fmt is not None else text
    return answer_from_final(extract_final_answer(plain), targets_from_row(row))


def answer_from_final(final: tuple[str | None, str | None], targets: Targets) -> RewardResult:
    """`answer_reward` from `extract_final_answer`'s result, with prepared targets."""
    predicted, reason = final
    try:
        if predicted is None:
            return zero(f"no_answer: {reason}")
        correct = _verify(targets.task, predicted, targets.answer, targets.choices)
    except Exception as exc:  # a verifier bug must not stop an RL step
        return zero(f"verifier_error: {exc!r}")
    details = {"predicted": predicted, "gold": targets.answer}
    return RewardResult(1.0, None, details) if correct else zero("wrong_answer", **details)

