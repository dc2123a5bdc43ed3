"""Reward functions veRL and EasyR1 call, scoring rollouts against `synth export --format verl`.

veRL: set ``custom_reward_function.path`` to this file and ``custom_reward_function.name`` to
``compute_score``; veRL passes each row's ``extra_info``, whose ``targets`` JSON holds the row's
task, answer, image size, grounding format, frame and instances.

EasyR1: set ``worker.reward.reward_function=<this file>:easyr1_compute_score`` and
``data.answer_key=targets`` so that each rollout's ``ground_truth`` is the same JSON.

The score is a weighted sum of rewards (WEIGHTS): the answer, the format, and the geometry the
row was exported with (point F1 for points, iVGR's box reward for boxes); every component is
returned too, so a trainer can log them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any

from synth.rewards import score_all

#: Weight of each component in "score"; "geometry" is "point" or "box" by the export's geometry.
WEIGHTS = {"answer": 1.0, "format": 0.5, "geometry": 1.0}
_ROWS: OrderedDict[str, dict[str, Any]] = OrderedDict()
_ROWS_SIZE = 4096  # one RL step's prompts; the JSON is re-read if it falls out


def row_from_targets(targets: str | dict[str, Any]) -> dict[str, Any]:
    """A row dict the rewards accept, from an export's `targets` JSON (cached by the text).

    Raises:
        ValueError: `targets` is not the JSON an export writes (a data problem, not model text).
    """
    if isinstance(targets, dict):
        try:
            return _row(targets)
        except KeyError as exc:
            raise ValueError(f"not the targets of a synth export: {exc}") from exc
    hit = _ROWS.get(targets)
    if hit is not None:
        return hit
    try:
        row = _row(json.loads(targets))
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not the targets JSON of a synth export ({exc}): {str(targets)[:80]!r}") from exc
    _ROWS[targets] = row
    if len(_ROWS) > _ROWS_SIZE:
        _ROWS.popitem(last=False)
    return row


def _row(data: dict[str, Any]) -> dict[str, Any]:
    missing = [k for k in ("id", "image_width", "image_height", "grounding", "frame", "objects") if k not in data]
    if missing:
        raise KeyError(f"missing {missing}")
    return data


def score_rollout(text: str, targets: str | dict[str, Any]) -> dict[str, float]:
    """Every reward of one rollout plus the weighted "score"."""
    row = row_from_targets(targets)
    scores = score_all(text, row, row["grounding"], row["frame"])
    geometry = scores["point"] if row.get("geometry") == "point" else scores["box"]
    weighted = WEIGHTS["answer"] * scores["answer"] + WEIGHTS["format"] * scores["format"]
    return {"score": weighted + WEIGHTS["geometry"] * geometry, **scores}


def compute_score(
    data_source: str, solution_str: str, ground_truth: str, extra_info: dict[str, Any] | None = None, **_: Any
) -> dict[str, float]:
    """veRL's custom reward function signature."""
    if not extra_info or "targets" not in extra_info:
        raise ValueError(f"{data_source}: extra_info has no 'targets'; export the data with synth export --format verl")
    return score_rollout(solution_str, extra_info["targets"])


def easyr1_compute_score(reward_inputs: list[dict[str, Any]], **_: Any) -> list[dict[str, float]]:
    """EasyR1's batch reward function signature (needs data.answer_key=targets)."""
    return [score_rollout(item["response"], item["ground_truth"]) for item in reward_inputs]
