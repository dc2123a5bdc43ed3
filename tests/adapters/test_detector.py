"""OWLv2 and Grounding DINO through transformers, tiny random weights: wiring, shapes, frames."""

import numpy as np
import pytest

from tests.adapters import tiny_hf
from tests.grounding.scenes import disc_scene

pytestmark = pytest.mark.models


@pytest.fixture(scope="module", params=["owlv2", "grounding_dino"])
def detector(request, tmp_path_factory):
    from synth.adapters.detector import build_detector

    save = tiny_hf.save_owlv2 if request.param == "owlv2" else tiny_hf.save_grounding_dino
    folder = save(tmp_path_factory.mktemp(request.param))
    det = build_detector(request.param, str(folder))
    det.setup()
    return det


def test_one_detection_set_per_phrase_in_original_pixels(detector):
    image, _ = disc_scene([(60, 60)], width=200, height=100)
    found = detector.detect(image, ["red disc", "cat"], threshold=0.0)
    assert [d.phrase for d in found] == ["red disc", "cat"]
    total = sum(len(d.boxes) for d in found)
    assert total > 0, "threshold 0 keeps every query of the tiny model"
    for d in found:
        assert d.boxes.shape == (len(d.scores), 4) and d.boxes.dtype == np.float64
        assert (d.boxes >= 0).all() and (d.boxes[:, [0, 2]] <= 200).all() and (d.boxes[:, [1, 3]] <= 100).all()


def test_threshold_filters_and_no_phrase_means_no_work(detector):
    image, _ = disc_scene([(60, 60)], width=200, height=100)
    assert all(len(d.boxes) == 0 for d in detector.detect(image, ["red disc"], threshold=1.01))
    assert detector.detect(image, [], threshold=0.0) == []


def test_unknown_backend_is_refused():
    from synth.adapters.detector import HFDetector

    with pytest.raises(ValueError, match="owlv2, grounding_dino"):
        HFDetector("yolo", "somewhere")
