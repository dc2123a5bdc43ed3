"""Tiny images with known instances, and clearly named test doubles for the segmenter and teacher.

The doubles stand in for models only in unit tests of the code around them:
- `LookupSegmenter` answers a prompt with the true mask its point (or box centre) falls in, the
  way a perfect SAM would; it counts how often it is called.
- `ScriptedTeacher` returns prepared texts in order and keeps the requests it was sent.
"""

from __future__ import annotations

import cv2
import numpy as np

from synth.adapters.base import Completion, MaskResult, Prompt, TeacherRequest, TeacherResponse
from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy
from synth.core.records import Candidate, Item, ItemRecord


def disc_mask(cx: float, cy: float, r: float, width: int, height: int) -> np.ndarray:
    """(H, W) bool disc tested at pixel centres."""
    ys, xs = np.mgrid[0:height, 0:width]
    return (xs + 0.5 - cx) ** 2 + (ys + 0.5 - cy) ** 2 <= r * r


def rect_mask(x0: int, y0: int, x1: int, y1: int, width: int, height: int) -> np.ndarray:
    """(H, W) bool rectangle covering columns x0..x1-1 and rows y0..y1-1."""
    mask = np.zeros((height, width), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A mottled mid-grey (H, W, 3) uint8 background, so segmenting is not trivially flat."""
    rng = np.random.default_rng(seed)
    coarse = rng.normal(0, 1, (height // 16 + 2, width // 16 + 2, 3)).astype(np.float32)
    mottle = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC) * 8
    return np.clip(160 + mottle + rng.normal(0, 2, (height, width, 1)), 120, 200).astype(np.uint8)


def paint(background: np.ndarray, masks: list[np.ndarray], colours: list[tuple[int, int, int]]) -> np.ndarray:
    image = background.copy()
    for mask, colour in zip(masks, colours):
        image[mask] = colour
    return image


def disc_scene(
    centres: list[tuple[float, float]], r: float = 30, width: int = 320, height: int = 240, seed: int = 0
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Red discs on a textured background: the image and the true masks, in `centres` order."""
    masks = [disc_mask(cx, cy, r, width, height) for cx, cy in centres]
    return paint(textured(width, height, seed), masks, [(210, 40, 40)] * len(masks)), masks


def annotated_item(masks: list[np.ndarray], item_id: str = "item-0", label: str = "red disc", **fields) -> Item:
    """A counting item whose annotations are the true instances (masks, boxes, points)."""
    fields.setdefault("question", f"How many {label}s are there?")
    fields.setdefault("answer", str(len(masks)))
    return Item(
        item_id=item_id,
        label=label,
        masks=[mask_to_rle(m) for m in masks],
        boxes=[list(mask_to_xyxy(m)) for m in masks],
        points=[list(mask_to_point(m)) for m in masks],
        **fields,
    )


def record_for(item: Item, image: np.ndarray, traces: list[str]) -> ItemRecord:
    """A record as the teach stage leaves it: decoded image, one live candidate per trace."""
    h, w = image.shape[:2]
    candidates = [Candidate(sample_index=i, text=t, final_answer=item.answer, correct=True) for i, t in enumerate(traces)]
    return ItemRecord(item=item, image=image, width=w, height=h, candidates=candidates)


class LookupSegmenter:
    """Test double: the true mask under the prompt's positive point (else its box centre), or empty."""

    name = "lookup-double"

    def __init__(self, truth: list[np.ndarray], score: float = 0.9) -> None:
        self.truth, self.score = truth, score
        self.calls = 0
        self.prompts_seen = 0

    def setup(self) -> None:
        pass

    def segment(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        self.calls += 1
        self.prompts_seen += len(prompts)
        return [MaskResult(self._lookup(image, p), self.score) for p in prompts]

    def _lookup(self, image: np.ndarray, prompt: Prompt) -> np.ndarray:
        if prompt.points is not None:
            x, y = np.asarray(prompt.points, float).reshape(-1, 2)[0]
        else:
            x0, y0, x1, y1 = np.asarray(prompt.box, float)
            x, y = (x0 + x1) / 2, (y0 + y1) / 2
        h, w = image.shape[:2]
        r, c = min(max(int(y), 0), h - 1), min(max(int(x), 0), w - 1)
        for mask in self.truth:
            if mask[r, c]:
                return mask.copy()
        return np.zeros(image.shape[:2], bool)


class ScriptedTeacher:
    """Test double: answers each request with the next scripted text (or an error for None)."""

    name = "scripted-double"

    def __init__(self, texts: list[str | None]) -> None:
        self.texts = list(texts)
        self.requests: list[TeacherRequest] = []

    def setup(self) -> None:
        pass

    def close(self) -> None:
        pass

    def generate(self, requests: list[TeacherRequest]) -> list[TeacherResponse]:
        out = []
        for request in requests:
            self.requests.append(request)
            text = self.texts.pop(0) if self.texts else None
            if text is None:
                out.append(TeacherResponse(request.request_id, error="scripted failure", error_kind="error"))
            else:
                out.append(TeacherResponse(request.request_id, [Completion(text)]))
        return out
