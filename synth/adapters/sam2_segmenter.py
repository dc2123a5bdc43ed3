"""SAM 2 / SAM 2.1 through the `sam2` package (Meta's reference implementation).

`build_sam2(config, checkpoint, device)` builds the model; `SAM2ImagePredictor` encodes the image
once per `segment` call (reused for the next call on the same image) and decodes each batch of
same-shaped prompts in one pass: points (B, N, 2) with labels (B, N), boxes (B, 4). Without a
checkpoint the architecture has random weights; that is only for wiring tests (the ground config
refuses it unless `allow_random_weights`). Prompt coordinates follow `synth.adapters.sam_prompts`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from synth.adapters.base import MaskResult, Prompt
from synth.adapters.lazy import MODELS_PIP, require
from synth.adapters.sam_prompts import SamFamilySegmenter, best_masks, sam_box, sam_points, wants_multimask

log = logging.getLogger(__name__)

SAM2_PIP = "SAM2_BUILD_CUDA=0 pip install --no-build-isolation sam2"


class Sam2Segmenter(SamFamilySegmenter):
    """Segmenter over the sam2 package's image predictor.

    Args:
        config: model config name inside the sam2 package, e.g. "configs/sam2.1/sam2.1_hiera_t.yaml".
        checkpoint: weights file; None builds random weights (wiring tests only).
        device: torch device string.
        decode_batch_size: prompts decoded together against one image embedding.
    """

    name = "sam2"
    worker_local = (*SamFamilySegmenter.worker_local, "_predictor")

    def __init__(
        self, config: str, checkpoint: str | None = None, device: str = "cpu", decode_batch_size: int = 16
    ) -> None:
        super().__init__()
        self.config, self.checkpoint = config, checkpoint
        self.device, self.decode_batch_size = device, decode_batch_size

    def setup(self) -> None:
        """Build SAM 2 once per worker."""
        if self._predictor is not None:
            return
        self._torch = require("torch", MODELS_PIP, "SAM 2")
        build = require("sam2.build_sam", SAM2_PIP, "the sam2 segmenter")
        predictor_mod = require("sam2.sam2_image_predictor", SAM2_PIP, "the sam2 segmenter")
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"segmenter.checkpoint: SAM 2 checkpoint {self.checkpoint} does not exist")
        if self.checkpoint is None:
            log.warning("SAM 2 built from %s WITHOUT a checkpoint: random weights, masks are meaningless", self.config)
        model = build.build_sam2(self.config, ckpt_path=self.checkpoint, device=self.device)
        self._predictor = predictor_mod.SAM2ImagePredictor(model)

    def _embed(self, image: np.ndarray) -> None:
        with self._torch.inference_mode():
            self._predictor.set_image(image)

    def _decode(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        coords = labels = boxes = None
        if prompts[0].points is not None:
            pts, lbl = zip(*(sam_points(p) for p in prompts))
            coords, labels = np.stack(pts), np.stack(lbl)
        if prompts[0].box is not None:
            boxes = np.stack([sam_box(p) for p in prompts])
        with self._torch.inference_mode():
            masks, scores, _ = self._predictor.predict(
                point_coords=coords, point_labels=labels, box=boxes,
                multimask_output=wants_multimask(prompts[0]), normalize_coords=True,
            )
        h, w = masks.shape[-2:]
        # The predictor drops the batch axis for a single prompt; restore (B, C, H, W).
        masks = np.asarray(masks).reshape(len(prompts), -1, h, w) > 0
        return best_masks(masks, np.asarray(scores).reshape(len(prompts), -1))
