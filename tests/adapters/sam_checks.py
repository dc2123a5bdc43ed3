"""Checks every SAM-family adapter must pass, whatever its weights (random weights included)."""

from __future__ import annotations

import numpy as np

from synth.adapters.base import Prompt, Segmenter
from tests.grounding.scenes import disc_scene


def check_masks_come_back_at_the_original_size(segmenter, extra: tuple[Prompt, ...] = ()) -> None:
    """Prompts in original pixels of a 300x200 image give one (200, 300) bool mask each, scored.

    The prompts mix the shapes SAM decodes apart (one point, two points, boxes); the three boxes
    make two batches when the segmenter decodes two prompts at a time. `extra` adds prompts.
    """
    image, _ = disc_scene([(60, 60), (250, 150)], width=300, height=200)
    prompts = [
        Prompt(box=np.array([30.0, 30.0, 90.0, 90.0])),
        Prompt(points=np.array([[250.5, 150.5]]), labels=np.array([1])),
        Prompt(points=np.array([[10.0, 10.0], [250.5, 150.5]]), labels=np.array([0, 1])),
        Prompt(box=np.array([200.0, 100.0, 300.0, 200.0])),
        Prompt(box=np.array([0.0, 0.0, 300.0, 200.0])),
        *extra,
    ]
    results = segmenter.segment(image, prompts)
    assert isinstance(segmenter, Segmenter) and len(results) == len(prompts)
    for r in results:
        assert r.mask.shape == (200, 300) and r.mask.dtype == bool and np.isfinite(r.score)
