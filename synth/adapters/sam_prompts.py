"""Prompts for the SAM-family segmenters: checks, coordinate frame, batching, the best mask.

`SamFamilySegmenter` is the `segment` call the MobileSAM, sam2 and transformers SAM adapters
share: check the inputs, embed the image once (and again only when different pixels come),
decode the prompts in batches of one shape, answer in the order of the prompts. `check_image`
is also the image contract of the detector.

Coordinate frames: prompts arrive in synth's canonical frame (absolute pixels of the original
image, pixel (c, r) covers [c, c+1) x [r, r+1), boxes on pixel edges). SAM-family prompt encoders
add 0.5 to every coordinate ("shift to the centre of the pixel"), i.e. they take pixel *indices*:
a point (x, y) becomes (x - 0.5, y - 0.5) and a box (x0, y0, x1, y1) the indices of its first and
last pixel, (x0, y0, x1 - 1, y1 - 1).
"""

from __future__ import annotations

import hashlib

import numpy as np

from synth.adapters.base import MaskResult, Prompt
from synth.adapters.lazy import WorkerLocal


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless `image` is (H, W, 3) uint8 RGB."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {image.shape} dtype {image.dtype}")


def check_prompts(prompts: list[Prompt], width: int, height: int) -> None:
    """Raise ValueError for a prompt without geometry or with arrays of the wrong shape."""
    for i, p in enumerate(prompts):
        if p.points is None and p.box is None:
            raise ValueError(f"prompt {i} ({p.source!r}) has neither points nor a box")
        if p.points is not None:
            pts = np.asarray(p.points)
            labels = np.ones(len(pts)) if p.labels is None else np.asarray(p.labels)
            if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0 or labels.shape != (len(pts),):
                raise ValueError(
                    f"prompt {i}: points must be (N, 2) with N >= 1 and labels (N,); got {pts.shape}, {labels.shape}"
                )
        if p.box is not None and np.asarray(p.box).shape != (4,):
            raise ValueError(f"prompt {i}: box must be (4,) XYXY, got shape {np.asarray(p.box).shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image must be non-empty, got {width}x{height}")


def sam_points(prompt: Prompt) -> tuple[np.ndarray, np.ndarray]:
    """(N, 2) float32 point indices for a SAM prompt encoder and (N,) int32 labels."""
    pts = np.asarray(prompt.points, dtype=np.float32).reshape(-1, 2) - 0.5
    labels = np.ones(len(pts), np.int32) if prompt.labels is None else np.asarray(prompt.labels, np.int32)
    return pts, labels


def sam_box(prompt: Prompt) -> np.ndarray:
    """(4,) float32 box of first/last pixel indices for a SAM prompt encoder."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(prompt.box, dtype=np.float64))
    return np.array([x0, y0, max(x0, x1 - 1.0), max(y0, y1 - 1.0)], dtype=np.float32)


def prompt_key(prompt: Prompt) -> tuple[bool, int]:
    """Prompts with the same key can be decoded in one batch: (has a box, number of points)."""
    n = 0 if prompt.points is None else int(np.asarray(prompt.points).reshape(-1, 2).shape[0])
    return (prompt.box is not None, n)


def prompt_batches(prompts: list[Prompt], batch_size: int) -> list[list[int]]:
    """Indices of `prompts` in decode batches: same key within a batch, at most `batch_size` each."""
    groups: dict[tuple[bool, int], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(prompt_key(p), []).append(i)
    return [idx[s : s + batch_size] for idx in groups.values() for s in range(0, len(idx), batch_size)]


def wants_multimask(prompt: Prompt) -> bool:
    """SAM's advice: a single click is ambiguous (part or whole), so ask for 3 masks and keep the best."""
    return prompt.box is None and prompt_key(prompt)[1] == 1


def best_masks(masks: np.ndarray, scores: np.ndarray) -> list[MaskResult]:
    """(B, C, H, W) bool masks and (B, C) scores -> one MaskResult per row, the highest-scoring mask."""
    best = np.argmax(scores, axis=1)
    return [MaskResult(mask=masks[b, k].astype(bool), score=float(scores[b, k])) for b, k in enumerate(best)]


def image_digest(image: np.ndarray) -> str:
    """A cheap identity of an image array, to reuse an embedding when the same image comes again."""
    h = hashlib.blake2b(digest_size=16)
    h.update(str((image.shape, image.dtype.str)).encode())
    h.update(np.ascontiguousarray(image).tobytes())
    return h.hexdigest()


class SamFamilySegmenter(WorkerLocal):
    """Base of the SAM-family segmenters: the `segment` call they share (see module docstring).

    A subclass sets `name` and `decode_batch_size`, lists its model attributes after these in
    `worker_local`, and implements `setup()`, `_embed(image)` (embed the image, or drop the stale
    embedding for `_decode` to rebuild) and `_decode(image, prompts)` for prompts of one key.
    """

    #: `_digest` identifies the image whose embedding the worker holds (see `image_digest`).
    worker_local = ("_torch", "_digest")
    decode_batch_size: int

    def setup(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must load its model in setup()")

    def forget_image(self) -> None:
        """Drop the cached image embedding, so the next call encodes again (for benchmarks)."""
        self._digest = None

    def segment(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        """One MaskResult per prompt, masks (H, W) bool at the original image size."""
        check_image(image)
        check_prompts(prompts, image.shape[1], image.shape[0])
        if not prompts:
            return []
        self.setup()
        digest = image_digest(image)
        if digest != self._digest:
            self._embed(image)
            self._digest = digest
        results: list[MaskResult | None] = [None] * len(prompts)
        for batch in prompt_batches(prompts, self.decode_batch_size):
            for i, res in zip(batch, self._decode(image, [prompts[i] for i in batch])):
                results[i] = res
        return [r for r in results if r is not None]

    def _embed(self, image: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} must embed an image in _embed()")

    def _decode(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        raise NotImplementedError(f"{type(self).__name__} must decode prompts in _decode()")
