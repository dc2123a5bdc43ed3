"""The Ray runner refuses actor pools the cluster cannot hold together (they would wait forever)."""

from __future__ import annotations

import pytest

from synth.config.base import Resources
from synth.errors import SynthError
from synth.runners.ray_runner import check_pools_fit

TWO_CORES = {"CPU": 2.0, "memory": 1e10}


def test_light_stages_beside_one_heavy_stage_fit_two_cores():
    light = Resources(num_cpus=0.25)
    check_pools_fit({"read": light, "teach": light, "extract": light, "ground": Resources(), "annotate": light},
                    TWO_CORES)


def test_pools_needing_more_cpus_than_the_cluster_are_refused_with_the_sum_and_the_stages():
    pools = {"read": Resources(), "teach": Resources(), "ground": Resources(actors=2, num_cpus=0.5)}
    with pytest.raises(SynthError, match=r"need 3 CPU at once \(read 1×1, teach 1×1, ground 2×0.5\).*has 2"):
        check_pools_fit(pools, TWO_CORES)


def test_a_gpu_stage_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(SynthError, match="need 1 GPU.*has 0"):
        check_pools_fit({"ground": Resources(num_cpus=0.5, num_gpus=1)}, TWO_CORES)
