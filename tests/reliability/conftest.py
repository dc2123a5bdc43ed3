"""Shared by the reliability tests: one clean demo run, the reference the faulted runs must equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.runs import synth_run

#: Demo items of the SIGKILL and Ray-worker tests: few, because MobileSAM encodes each in 2-4 s.
DEMO_ITEMS = 5
DEMO_SETS = [f"source.demo.items={DEMO_ITEMS}", "output.commit_every=1"]


@pytest.fixture(scope="session")
def clean_demo(tmp_path_factory) -> Path:
    """The demo run (local runner, one item per commit) with nothing going wrong."""
    out = tmp_path_factory.mktemp("clean_demo") / "out"
    synth_run("pipelines/demo.yaml", out, DEMO_SETS)
    return out
