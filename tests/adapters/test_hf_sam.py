"""transformers SAM / SAM 2 / SAM 3 adapters with tiny random-weight models loaded from folders."""

import numpy as np
import pytest

from synth.adapters.base import Prompt
from tests.adapters import tiny_hf
from tests.adapters.sam_checks import check_masks_come_back_at_the_original_size
from tests.grounding.scenes import disc_scene

pytestmark = pytest.mark.models

BUILDERS = {"sam": tiny_hf.save_sam, "sam2": tiny_hf.save_sam2, "sam3_tracker": tiny_hf.save_sam3_tracker}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def segmenter(request, tmp_path_factory):
    from synth.adapters.hf_sam import HFSamSegmenter

    folder = BUILDERS[request.param](tmp_path_factory.mktemp(request.param))
    seg = HFSamSegmenter(str(folder), decode_batch_size=2)
    seg.setup()
    assert seg.arch == request.param
    return seg


def test_prompts_in_original_pixels_give_masks_of_the_original_size(segmenter):
    point_and_box = Prompt(
        points=np.array([[60.5, 60.5]]), labels=np.array([1]), box=np.array([30.0, 30.0, 90.0, 90.0])
    )
    check_masks_come_back_at_the_original_size(segmenter, extra=(point_and_box,))


def test_image_is_embedded_once_across_batches_and_calls(segmenter, monkeypatch):
    image, _ = disc_scene([(60, 60)], width=160, height=120, seed=2)
    calls = []
    original = segmenter._model.get_image_embeddings
    monkeypatch.setattr(segmenter._model, "get_image_embeddings", lambda *a, **k: (calls.append(1), original(*a, **k))[1])
    boxes = [Prompt(box=np.array([10.0 + i, 10.0, 100.0, 100.0])) for i in range(5)]  # 3 batches of <= 2
    segmenter.segment(image, boxes)
    segmenter.segment(image, boxes[:1])
    assert len(calls) == 1


def test_text_sam3_returns_instances_per_phrase_at_original_size(tmp_path):
    from synth.adapters.hf_sam import HFSam3TextSegmenter

    folder = tiny_hf.save_sam3(tmp_path / "sam3")
    model = HFSam3TextSegmenter(str(folder))
    image, _ = disc_scene([(60, 60)], width=200, height=120)
    per_phrase = model.segment_text(image, ["red disc", "cat"], threshold=0.0)
    assert len(per_phrase) == 2
    for results in per_phrase:
        assert len(results) == 10  # every query of the tiny model passes threshold 0
        assert all(r.mask.shape == (120, 200) and r.mask.dtype == bool for r in results)
    assert model.segment_text(image, ["red disc"], threshold=1.01) == [[]]


def test_unknown_architecture_is_refused(tmp_path):
    from transformers import CLIPTextConfig

    from synth.adapters.hf_sam import HFSamSegmenter

    CLIPTextConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="expected one of sam, sam2"):
        HFSamSegmenter(str(tmp_path)).setup()
