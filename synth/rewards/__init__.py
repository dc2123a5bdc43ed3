"""Rewards for a model's generated text scored against a synth shard row.

Pure functions (numpy and scipy only) for RL loops: every reward takes the generated text, the
row (a dict as read from a rows shard), the grounding format (tvg | ivgr | molmo | qwen) and the
coordinate frame (a `Frame` or a name: pixel | norm1 | norm100 | norm1000 | qwen-resized), and
returns a `RewardResult(score, reason, details)`. Nothing a model writes makes them raise:
malformed text scores 0 with a reason.

>>> from synth.rewards import score_all
>>> score_all(generated_text, row, "ivgr", "qwen-resized")  # doctest: +SKIP
{'format': 1.0, 'answer': 1.0, 'point': 0.0, ..., 'box': 0.83, 'box_hungarian': 0.8, 'count': 1.0}
"""

from __future__ import annotations

from typing import Any

from synth.core.formats import Frame
from synth.rewards.matching import DUPLICATE_IOU
from synth.rewards.parsed import FRAME_NAMES, Parsed, frame_for, parse_text
from synth.rewards.result import RewardResult
from synth.rewards.spatial import (
    box_from_parsed,
    box_hungarian_from_parsed,
    box_hungarian_reward,
    box_reward,
    count_from_parsed,
    count_reward,
    point_from_parsed,
    point_reward,
)
from synth.rewards.structure import (
    DEFAULT_STRUCTURE,
    Structure,
    answer_from_final,
    answer_reward,
    format_from_parsed,
    format_reward,
)
from synth.rewards.targets import Targets, clear_cache, targets_from_row

#: The keys `score_all` returns, in order.
SCORE_KEYS = ("format", "answer", "point", "point_precision", "point_recall", "box", "box_hungarian", "count")


def score_all(
    text: Any, row: dict[str, Any], fmt: str, frame: Frame | str, structure: Structure | None = None
) -> dict[str, float]:
    """Every reward of one text against one row, parsing the text once.

    `structure` is the format reward's (default: DEFAULT_STRUCTURE of `fmt`).

    Returns:
        A dict with the keys of SCORE_KEYS, each a float in [0, 1].
    """
    targets = targets_from_row(row)
    parsed = parse_text(text, fmt, frame_for(frame, targets.width, targets.height))
    point = point_from_parsed(parsed, targets)
    return {
        "format": format_from_parsed(text, parsed, targets, structure or DEFAULT_STRUCTURE[fmt]).score,
        "answer": answer_from_final(parsed.final_answer(), targets).score if isinstance(text, str) else 0.0,
        "point": point.score,
        "point_precision": float(point.details.get("precision", 0.0)),
        "point_recall": float(point.details.get("recall", 0.0)),
        "box": box_from_parsed(parsed, targets).score,
        "box_hungarian": box_hungarian_from_parsed(parsed, targets).score,
        "count": count_from_parsed(parsed, targets).score,
    }


__all__ = [
    "DEFAULT_STRUCTURE",
    "DUPLICATE_IOU",
    "FRAME_NAMES",
    "SCORE_KEYS",
    "Parsed",
    "RewardResult",
    "Structure",
    "Targets",
    "answer_reward",
    "box_hungarian_reward",
    "box_reward",
    "clear_cache",
    "count_reward",
    "format_reward",
    "frame_for",
    "parse_text",
    "point_reward",
    "score_all",
    "targets_from_row",
]
