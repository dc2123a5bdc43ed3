"""SAM-family models through transformers: SAM, SAM 2 and SAM 3 (tracker) for prompts, SAM 3 for text.

`HFSamSegmenter` loads the model a folder or hub id holds, by its config's `model_type`:
`sam` -> SamModel, `sam2` -> Sam2Model, `sam3_tracker` or `sam3` -> Sam3TrackerModel (SAM 3's
point/box-promptable interactive head), each with its processor. The image is embedded once per
`segment` call (reused for the next call on the same image); each batch of same-shaped prompts is
one decoder pass. The processor scales prompts from original pixels to the model's input and
scales masks back to the original size.

`HFSam3TextSegmenter` is the text-promptable SAM 3 (Sam3Model): a phrase in, its instance masks out
(the `text_sam` proposal source). The vision features are computed once per image.

Prompt coordinates follow `synth.adapters.sam_prompts` (SAM's prompt encoders take pixel indices).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from synth.adapters.base import MaskResult, Prompt
from synth.adapters.lazy import TRANSFORMERS_PIP, WorkerLocal, require, to_device
from synth.adapters.sam_prompts import (
    SamFamilySegmenter,
    best_masks,
    check_image,
    sam_box,
    sam_points,
    wants_multimask,
)

log = logging.getLogger(__name__)

#: model_type -> (model class, processor class) in transformers.
ARCHITECTURES: dict[str, tuple[str, str]] = {
    "sam": ("SamModel", "SamProcessor"),
    "sam2": ("Sam2Model", "Sam2Processor"),
    "sam3_tracker": ("Sam3TrackerModel", "Sam3TrackerProcessor"),
    "sam3": ("Sam3TrackerModel", "Sam3TrackerProcessor"),
}


class HFSamSegmenter(SamFamilySegmenter):
    """Segmenter over a transformers SAM / SAM 2 / SAM 3 tracker model (see module docstring).

    Args:
        model_path: local folder or hub id holding the model and its processor.
        device: torch device string.
        decode_batch_size: prompts decoded together against one image embedding.
    """

    name = "hf_sam"
    #: `_embeddings` is the embedding of the image `_digest` names, built by the first decode.
    worker_local = (*SamFamilySegmenter.worker_local, "_model", "_processor", "_embeddings")

    def __init__(self, model_path: str, device: str = "cpu", decode_batch_size: int = 16) -> None:
        super().__init__()
        self.model_path, self.device, self.decode_batch_size = model_path, device, decode_batch_size
        self.arch = ""

    def setup(self) -> None:
        """Load the model and processor once per worker."""
        if self._model is not None:
            return
        self._torch = require("torch", TRANSFORMERS_PIP, "transformers SAM")
        transformers = require("transformers", TRANSFORMERS_PIP, "transformers SAM")
        self.arch = transformers.AutoConfig.from_pretrained(self.model_path).model_type
        if self.arch not in ARCHITECTURES:
            raise ValueError(
                f"segmenter.model_path: {self.model_path} holds a {self.arch!r} model; "
                f"expected one of {', '.join(ARCHITECTURES)}"
            )
        model_cls, processor_cls = (getattr(transformers, n) for n in ARCHITECTURES[self.arch])
        self._model = model_cls.from_pretrained(self.model_path).to(self.device).eval()
        self._processor = processor_cls.from_pretrained(self.model_path)
        log.info("%s loaded from %s on %s", model_cls.__name__, self.model_path, self.device)

    def _embed(self, image: np.ndarray) -> None:
        # The processor makes the pixel values along with the prompts, so `_decode` embeds.
        self._embeddings = None

    def _encode(self, image: np.ndarray, prompts: list[Prompt]) -> dict[str, Any]:
        """The processor's tensors for one image and a batch of same-shaped prompts."""
        kwargs: dict[str, Any] = {}
        if prompts[0].points is not None:
            pts, lbl = zip(*(sam_points(p) for p in prompts))
            kwargs["input_points"] = [[p.tolist() for p in pts]]
            kwargs["input_labels"] = [[lb.tolist() for lb in lbl]]
        if prompts[0].box is not None:
            kwargs["input_boxes"] = [[sam_box(p).tolist() for p in prompts]]
        return to_device(self._processor(images=image, return_tensors="pt", **kwargs), self.device)

    def _decode(self, image: np.ndarray, prompts: list[Prompt]) -> list[MaskResult]:
        torch = self._torch
        enc = self._encode(image, prompts)
        with torch.inference_mode():
            if self._embeddings is None:
                self._embeddings = self._model.get_image_embeddings(enc["pixel_values"])
            out = self._model(
                image_embeddings=self._embeddings,
                input_points=enc.get("input_points"),
                input_labels=enc.get("input_labels"),
                input_boxes=enc.get("input_boxes"),
                multimask_output=wants_multimask(prompts[0]),
            )
        sizes = [enc["original_sizes"].cpu()]
        if "reshaped_input_sizes" in enc:  # SAM (v1) crops its padding with these
            sizes.append(enc["reshaped_input_sizes"].cpu())
        masks = self._processor.post_process_masks(out.pred_masks.cpu(), *sizes)[0]
        masks = np.asarray(masks, dtype=bool).reshape(len(prompts), -1, *masks.shape[-2:])
        return best_masks(masks, out.iou_scores[0].float().cpu().numpy().reshape(len(prompts), -1))


class HFSam3TextSegmenter(WorkerLocal):
    """Text-promptable SAM 3 (transformers Sam3Model): instance masks for a phrase.

    Args:
        model_path: local folder or hub id holding Sam3Model and its processor.
        device: torch device string.
    """

    name = "hf_sam3_text"
    worker_local = ("_model", "_processor", "_torch")

    def __init__(self, model_path: str, device: str = "cpu") -> None:
        super().__init__()
        self.model_path, self.device = model_path, device

    def setup(self) -> None:
        """Load SAM 3 once per worker."""
        if self._model is not None:
            return
        self._torch = require("torch", TRANSFORMERS_PIP, "SAM 3")
        transformers = require("transformers", TRANSFORMERS_PIP, "SAM 3")
        self._model = transformers.Sam3Model.from_pretrained(self.model_path).to(self.device).eval()
        self._processor = transformers.Sam3Processor.from_pretrained(self.model_path)

    def segment_text(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[list[MaskResult]]:
        """For each phrase, its instances scoring at least `threshold`: (H, W) bool masks, original size."""
        check_image(image)
        self.setup()
        torch = self._torch
        h, w = image.shape[:2]
        enc = to_device(self._processor(images=image, return_tensors="pt"), self.device)
        out: list[list[MaskResult]] = []
        with torch.inference_mode():
            vision = self._model.get_vision_features(pixel_values=enc["pixel_values"])
            for phrase in phrases:
                text = to_device(self._processor(text=phrase, return_tensors="pt"), self.device)
                pred = self._model(vision_embeds=vision, input_ids=text["input_ids"], attention_mask=text["attention_mask"])
                res = self._processor.post_process_instance_segmentation(
                    pred, threshold=threshold, mask_threshold=0.5, target_sizes=[(h, w)]
                )[0]
                masks = np.asarray(res["masks"].cpu(), dtype=bool).reshape(-1, h, w)
                out.append([MaskResult(m, float(s)) for m, s in zip(masks, res["scores"].float().cpu().numpy())])
        return out
