"""Adapters travel to workers as recipes: a pickle carries paths and settings, never a loaded model."""

import pickle

import pytest

from synth.adapters.detector import HFDetector
from synth.adapters.hf_sam import HFSam3TextSegmenter, HFSamSegmenter
from synth.adapters.lazy import WorkerLocal, require
from synth.adapters.mobile_sam import MobileSamSegmenter
from synth.adapters.sam2_segmenter import Sam2Segmenter

ADAPTERS = [
    lambda: MobileSamSegmenter("weights/mobile_sam.pt", decode_batch_size=3),
    lambda: Sam2Segmenter("configs/sam2.1/sam2.1_hiera_t.yaml", "weights/sam2.pt", decode_batch_size=3),
    lambda: HFSamSegmenter("models/sam", decode_batch_size=3),
    lambda: HFSam3TextSegmenter("models/sam3"),
    lambda: HFDetector("owlv2", "models/owlv2"),
]


@pytest.mark.parametrize("make", ADAPTERS)
def test_pickle_keeps_the_recipe_and_drops_what_the_worker_loaded(make):
    adapter = make()
    assert isinstance(adapter, WorkerLocal) and adapter.worker_local
    for name in adapter.worker_local:
        assert getattr(adapter, name) is None, f"{name} is set before setup()"
        setattr(adapter, name, object())  # stands in for what setup() loads
    clone = pickle.loads(pickle.dumps(adapter))
    assert all(getattr(clone, name) is None for name in adapter.worker_local)
    recipe = {k: v for k, v in vars(adapter).items() if k not in adapter.worker_local}
    assert recipe and {k: v for k, v in vars(clone).items() if k not in adapter.worker_local} == recipe


def test_a_missing_package_names_the_pip_install():
    with pytest.raises(ImportError, match="the detector needs .*no_such_module.*install it with: pip install x"):
        require("no_such_module", "pip install x", "the detector")
