"""The small interfaces models sit behind. Adapters import their heavy packages inside `setup()`.

Every array's shape and coordinate frame is stated: absolute pixels of the original upright image,
x before y, boxes XYXY with pixel edges (see `synth.core.geometry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass
class TeacherRequest:
    """One prompt to a teacher: chat messages plus the image, asking for `n` samples.

    `image_bytes` is the encoded image (PNG/JPEG); the backend resizes and ships it (data URL).
    `sampling` holds temperature, top_p, max_tokens, seed and the like.
    """

    request_id: str
    system: str
    user: str
    image_bytes: bytes | None = None
    n: int = 1
    sampling: dict[str, Any] = field(default_factory=dict)
    json_schema: dict[str, Any] | None = None


@dataclass
class Completion:
    """One sample of a teacher's answer."""

    text: str
    finish_reason: str = "stop"
    completion_tokens: int = 0


@dataclass
class TeacherResponse:
    """The samples for one request, or an error (a per-request failure, never an exception)."""

    request_id: str
    completions: list[Completion] = field(default_factory=list)
    prompt_tokens: int = 0
    error: str | None = None
    error_kind: str | None = None  # "timeout" | "error"


@runtime_checkable
class Teacher(Protocol):
    """Writes reasoning traces. `generate` keeps the order of `requests`."""

    name: str

    def setup(self) -> None: ...

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]: ...

    def close(self) -> None: ...


@dataclass
class Prompt:
    """One segmentation prompt for one instance.

    `points` is (N, 2) float (x, y) with `labels` (N,) int (1 foreground, 0 background); `box` is
    (4,) float XYXY. Either or both may be set. Absolute pixels of the original image.
    """

    points: np.ndarray | None = None
    labels: np.ndarray | None = None
    box: np.ndarray | None = None
    source: str = ""


@dataclass
class MaskResult:
    """The segmenter's answer to one prompt: `mask` (H, W) bool of the original image, a score."""

    mask: np.ndarray
    score: float


@runtime_checkable
class Segmenter(Protocol):
    """Segments prompts on an image. The image is encoded once per call to `segment`."""

    name: str

    def setup(self) -> None: ...

    def segment(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        """`image` is (H, W, 3) uint8 RGB; returns one result per prompt, in order."""
        ...
