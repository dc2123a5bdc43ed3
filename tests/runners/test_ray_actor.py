"""The Ray runner's stage actor sets the torch threads its resources ask for before the stage
loads its model (Ray would start it with as many threads as its num_cpus)."""

from __future__ import annotations

import pytest

from synth.runners.ray_runner import _StageActor

pytestmark = pytest.mark.models  # torch


class _ThreadsAtSetup:
    """A stage double that notes torch's thread count when it is set up."""

    name = "double"

    def setup(self) -> None:
        import torch

        self.threads_at_setup = torch.get_num_threads()


def test_the_actor_sets_the_threads_before_the_stage_is_set_up():
    import torch

    before = torch.get_num_threads()
    wanted = 2 if before == 1 else 1
    try:
        assert _StageActor(_ThreadsAtSetup(), threads=wanted).stage.threads_at_setup == wanted
        assert _StageActor(_ThreadsAtSetup()).stage.threads_at_setup == wanted  # unset: left as it is
    finally:
        torch.set_num_threads(before)
