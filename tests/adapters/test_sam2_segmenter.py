"""SAM 2 through the sam2 package, random weights: the wiring, shapes and coordinate frames.

No SAM 2 checkpoint can be had on this machine; the real architecture with random weights shows
that prompts go in and masks come out in the original image's frame and size. Mask quality is
MobileSAM's test's business.
"""

import numpy as np
import pytest

from synth.adapters.base import Prompt
from tests.adapters.sam_checks import check_masks_come_back_at_the_original_size
from tests.grounding.scenes import disc_scene

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def sam2():
    pytest.importorskip("sam2")
    from synth.adapters.sam2_segmenter import Sam2Segmenter

    segmenter = Sam2Segmenter("configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint=None, decode_batch_size=2)
    segmenter.setup()
    return segmenter


def test_prompts_in_original_pixels_give_masks_of_the_original_size(sam2):
    check_masks_come_back_at_the_original_size(sam2)


def test_single_prompt_and_empty_list(sam2):
    image, _ = disc_scene([(60, 60)], width=160, height=120)
    (only,) = sam2.segment(image, [Prompt(box=np.array([10.0, 10.0, 100.0, 100.0]))])
    assert only.mask.shape == (120, 160)
    assert sam2.segment(image, []) == []


def test_image_encoded_once_for_repeated_calls(sam2, monkeypatch):
    image, _ = disc_scene([(60, 60)], width=160, height=120, seed=4)
    calls = []
    original = sam2._predictor.set_image
    monkeypatch.setattr(sam2._predictor, "set_image", lambda *a, **k: (calls.append(1), original(*a, **k)))
    for _ in range(3):
        sam2.segment(image, [Prompt(box=np.array([10.0, 10.0, 100.0, 100.0]))])
    assert len(calls) == 1


def test_missing_checkpoint_file_is_named():
    pytest.importorskip("sam2")
    from synth.adapters.sam2_segmenter import Sam2Segmenter

    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        Sam2Segmenter("configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint="nowhere.pt").setup()


def test_missing_package_names_the_pip_install(monkeypatch):
    import sys

    from synth.adapters.sam2_segmenter import Sam2Segmenter

    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)  # what an absent package looks like
    with pytest.raises(ImportError, match="pip install --no-build-isolation sam2"):
        Sam2Segmenter("configs/sam2.1/sam2.1_hiera_t.yaml").setup()
