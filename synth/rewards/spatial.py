"""Point, box and count rewards: the generated groundings against the row's true instances.

Predicted groundings of every phrase are pooled and compared with every instance of every
object of the row (the trace's groundings are its evidence, whatever words name them).
"""

from __future__ import annotations

from typing import Any

from synth.core.answers import normalize_count
from synth.core.formats import Frame
from synth.rewards.matching import (
    DUPLICATE_IOU,
    SMALL,
    BoxMatch,
    distinct_hits,
    hungarian_hits,
    match_boxes,
    point_hits,
    point_hits_small,
)
from synth.rewards.parsed import Parsed, frame_for, parse_text
from synth.rewards.result import RewardResult, zero
from synth.rewards.targets import Targets, targets_from_row


def _prepare(text: Any, row: dict[str, Any], fmt: str, frame: Frame | str) -> tuple[Parsed, Targets]:
    targets = targets_from_row(row)
    return parse_text(text, fmt, frame_for(frame, targets.width, targets.height)), targets


def point_reward(text: Any, row: dict[str, Any], fmt: str, frame: Frame | str) -> RewardResult:
    """F1 of predicted points against true instance masks, one point per instance (Hungarian).

    precision: share of predicted points matched to a distinct instance whose mask holds them;
    recall: share of true instances so matched; score: their F1.
    """
    return point_from_parsed(*_prepare(text, row, fmt, frame))


def point_from_parsed(parsed: Parsed, targets: Targets) -> RewardResult:
    """`point_reward` on a parsed text and prepared targets."""
    if parsed.reason is not None:
        return zero(f"unparseable: {parsed.reason}")
    n_pred, n_true = len(parsed.points), targets.n_instances
    if n_pred == 0:
        return zero("no_points", n_pred=0, n_true=n_true)
    if n_true == 0:
        return zero("no_true_instances", n_pred=n_pred, n_true=0)
    table = targets.run_table
    if table is not None:  # disjoint masks, the usual case: no hit table needed
        matched = distinct_hits(parsed.points, table)
    elif n_pred * n_true <= SMALL:
        matched = hungarian_hits(
            point_hits_small(parsed.points, targets.boundary_lists, targets.mask_sizes, targets.box_list)
        )
    else:
        hits = point_hits(parsed.points_array(), targets.boundaries, targets.mask_sizes, targets.boxes)
        matched = hungarian_hits(hits)
    precision, recall = matched / n_pred, matched / n_true
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    details = {"precision": precision, "recall": recall, "f1": f1, "matched": matched,
               "n_pred": n_pred, "n_true": n_true}
    return RewardResult(f1, None, details)


def box_reward(
    text: Any, row: dict[str, Any], fmt: str, frame: Frame | str, duplicate_iou: float = DUPLICATE_IOU
) -> RewardResult:
    """iVGR's box reward: 0.5 * (recall + precision) of best-match IoUs.

    recall = mean over true boxes of the best IoU any predicted box reaches; precision = mean
    over predicted boxes of their best IoU with a true box. Validity rule: if two predicted boxes
    overlap with IoU > `duplicate_iou` (0.9), the reward is 0 (reason "duplicate_boxes"), so
    repeating one good box cannot buy recall.
    """
    return box_from_parsed(*_prepare(text, row, fmt, frame), duplicate_iou=duplicate_iou)


def box_from_parsed(parsed: Parsed, targets: Targets, duplicate_iou: float = DUPLICATE_IOU) -> RewardResult:
    """`box_reward` on a parsed text and prepared targets."""
    checked = _box_inputs(parsed, targets)
    if isinstance(checked, RewardResult):
        return checked
    match = _match(parsed, targets, duplicate_iou)
    details = {"recall": match.recall, "precision": match.precision, "n_pred": len(parsed.boxes),
               "n_true": targets.n_instances}
    if match.duplicates:
        return zero("duplicate_boxes", **details)
    return RewardResult(0.5 * (match.recall + match.precision), None, details)


def box_hungarian_reward(text: Any, row: dict[str, Any], fmt: str, frame: Frame | str) -> RewardResult:
    """Mean IoU under one-to-one (Hungarian) matching of predicted and true boxes.

    The matched IoUs are summed and divided by max(predicted, true), so an unmatched box on
    either side counts as IoU 0; duplicates need no separate rule, a copy finds no partner.
    """
    return box_hungarian_from_parsed(*_prepare(text, row, fmt, frame))


def box_hungarian_from_parsed(parsed: Parsed, targets: Targets) -> RewardResult:
    """`box_hungarian_reward` on a parsed text and prepared targets."""
    checked = _box_inputs(parsed, targets)
    if isinstance(checked, RewardResult):
        return checked
    match = _match(parsed, targets, DUPLICATE_IOU)
    details = {"matched": match.matched, "n_pred": len(parsed.boxes), "n_true": targets.n_instances}
    return RewardResult(match.hungarian, None, details)


def _match(parsed: Parsed, targets: Targets, duplicate_iou: float) -> BoxMatch:
    # box_reward and box_hungarian_reward share one IoU table per (text, row); the row is checked
    # by identity since one text may be scored against several rows.
    cached = parsed.cache.get(("boxes", duplicate_iou))
    if cached is None or cached[0] is not targets:
        cached = (targets, match_boxes(parsed.boxes, targets.box_list, duplicate_iou))
        parsed.cache[("boxes", duplicate_iou)] = cached
    return cached[1]


def _box_inputs(parsed: Parsed, targets: Targets) -> RewardResult | None:
    if parsed.reason is not None:
        return zero(f"unparseable: {parsed.reason}")
    if not parsed.boxes:
        return zero("no_boxes", n_pred=0, n_true=targets.n_instances)
    if targets.n_instances == 0:
        return zero("no_true_instances", n_pred=len(parsed.boxes), n_true=0)
    return None


def count_reward(text: Any, row: dict[str, Any], fmt: str, frame: Frame | str) -> RewardResult:
    """1.0 when the number of grounded instances equals the gold count, else 0.0.

    The gold count is the answer read as a count for a counting task; for another task (or a
    counting answer that reads as no count) it is the number of true instances of the counted object. The counted object is
    the row object whose expected_count equals the gold count, else the first one. The predicted
    count is the number of coordinates grounded for that object's phrase, or, when no grounding
    carries that phrase, for the phrase with the most coordinates.
    """
    return count_from_parsed(*_prepare(text, row, fmt, frame))


def count_from_parsed(parsed: Parsed, targets: Targets) -> RewardResult:
    """`count_reward` on a parsed text and prepared targets."""
    if parsed.reason is not None:
        return zero(f"unparseable: {parsed.reason}")
    gold, target = _gold_count(targets)
    if gold is None:
        return zero("no_gold_count")
    counts = parsed.phrase_counts
    phrase_matched = target is not None and target in counts
    predicted = counts[target] if phrase_matched else max(counts.values(), default=0)
    details = {"predicted": predicted, "gold": gold, "phrase_matched": phrase_matched}
    if predicted == gold:
        return RewardResult(1.0, None, details)
    return zero("count_mismatch", **details)


def _gold_count(targets: Targets) -> tuple[int | None, str | None]:
    cached = targets.extra.get("gold_count")
    if cached is not None:
        return cached
    # Only a counting answer is a count: "no" to a yes/no question would read as 0.
    gold = normalize_count(targets.answer) if targets.task == "counting" else None
    index = None
    if gold is not None:
        index = next((i for i, c in enumerate(targets.expected_counts) if c == gold), None)
    if index is None and targets.phrases:
        index = 0
    if gold is None and index is not None:
        gold = int((targets.instance_object == index).sum())
    result = (gold, targets.phrases[index] if index is not None else None)
    targets.extra["gold_count"] = result
    return result
