"""The one result type every reward returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RewardResult:
    """A reward for one generated text.

    Attributes:
        score: the reward in [0, 1].
        reason: None when the text could be scored; otherwise a short code saying why the score
            is 0 (e.g. ``"no_boxes"``, ``"duplicate_boxes"``, ``"unparseable: ..."``).
        details: the figures behind the score (precision, recall, counts, ...), plain Python.
    """

    score: float
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


def zero(reason: str, **details: Any) -> RewardResult:
    """A zero reward that says why."""
    return RewardResult(0.0, reason, details)  # `details` is a fresh dict on every call
