"""Open-vocabulary detectors through transformers: OWLv2 and Grounding DINO, from a folder or hub id.

`detect(image, phrases, threshold)` returns one `Detections` per phrase. OWLv2 embeds the image
once and scores every phrase as a query in the same pass; Grounding DINO fuses text into its
image features, so it runs once per phrase ("phrase." as its caption). The processors' post-
processing turns boxes into XYXY absolute pixels of the original image (OWLv2 pads the image to a
square at the bottom/right, which its post-processing accounts for).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np

from synth.adapters.lazy import TRANSFORMERS_PIP, WorkerLocal, require, to_device
from synth.adapters.sam_prompts import check_image

log = logging.getLogger(__name__)


@dataclass
class Detections:
    """Boxes found for one phrase: `boxes` (N, 4) float XYXY absolute pixels, `scores` (N,) float."""

    phrase: str
    boxes: np.ndarray
    scores: np.ndarray


class HFDetector(WorkerLocal):
    """An open-vocabulary detector (see module docstring).

    Args:
        backend: "owlv2" or "grounding_dino".
        model_path: local folder or hub id holding the model and its processor.
        device: torch device string.
    """

    worker_local = ("_model", "_processor", "_torch")

    def __init__(self, backend: Literal["owlv2", "grounding_dino"], model_path: str, device: str = "cpu") -> None:
        super().__init__()
        if backend not in ("owlv2", "grounding_dino"):
            raise ValueError(f"detector.backend: unknown {backend!r}; choices: owlv2, grounding_dino")
        self.backend, self.model_path, self.device = backend, model_path, device
        self.name = f"detector:{backend}"

    def setup(self) -> None:
        """Load the detector once per worker."""
        if self._model is not None:
            return
        self._torch = require("torch", TRANSFORMERS_PIP, "the detector")
        transformers = require("transformers", TRANSFORMERS_PIP, "the detector")
        cls = transformers.Owlv2ForObjectDetection if self.backend == "owlv2" else transformers.GroundingDinoForObjectDetection
        self._model = cls.from_pretrained(self.model_path).to(self.device).eval()
        self._processor = transformers.AutoProcessor.from_pretrained(self.model_path)
        log.info("%s loaded from %s on %s", cls.__name__, self.model_path, self.device)

    def detect(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[Detections]:
        """Detections of each phrase with score >= threshold, in the order of `phrases`."""
        check_image(image)
        if not phrases:
            return []
        self.setup()
        with self._torch.inference_mode():
            if self.backend == "owlv2":
                return self._owlv2(image, phrases, threshold)
            return [self._grounding_dino(image, phrase, threshold) for phrase in phrases]

    def _owlv2(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[Detections]:
        enc = to_device(self._processor(text=[phrases], images=image, return_tensors="pt"), self.device)
        outputs = self._model(**enc)
        res = self._processor.image_processor.post_process_object_detection(
            outputs, threshold=threshold, target_sizes=[image.shape[:2]]
        )[0]
        boxes, scores = res["boxes"].float().cpu().numpy(), res["scores"].float().cpu().numpy()
        labels = res["labels"].cpu().numpy()
        return [
            Detections(p, _clip(boxes[labels == i], image), scores[labels == i]) for i, p in enumerate(phrases)
        ]

    def _grounding_dino(self, image: np.ndarray, phrase: str, threshold: float) -> Detections:
        caption = phrase.strip().rstrip(".").lower() + "."
        enc = to_device(self._processor(images=image, text=caption, return_tensors="pt"), self.device)
        outputs = self._model(**enc)
        res = self._processor.post_process_grounded_object_detection(
            outputs, enc["input_ids"], threshold=threshold, text_threshold=threshold, target_sizes=[image.shape[:2]]
        )[0]
        return Detections(phrase, _clip(res["boxes"].float().cpu().numpy(), image), res["scores"].float().cpu().numpy())


def _clip(boxes: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Boxes clipped to the image, as (N, 4) float64."""
    h, w = image.shape[:2]
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes, 0, [w, h, w, h])


def build_detector(backend: str, model_path: str, device: str = "cpu") -> HFDetector:
    """The detector adapter for the ground config's detector section (not yet set up)."""
    return HFDetector(backend, model_path, device)  # type: ignore[arg-type]
