"""Fixtures of the inspect tests: disc outputs (good and deliberately broken) and a CLI runner."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from synth.cli.inspect_cmd import inspect_command
from synth.core.records import ItemRecord
from synth.core.rows import row_id
from tests.inspect.disc_rows import CONFIG_SHA, write_disc_output


@pytest.fixture
def disc_output(tmp_path: Path) -> Path:
    """A good output folder: 5 items (4 with rows, 1 rejected whole), committed in 2 batches."""
    out = tmp_path / "out"
    write_disc_output(out, n_items=5, commits=2)
    return out


@pytest.fixture
def broken_output(tmp_path: Path) -> Callable[[Callable[[ItemRecord], None]], tuple[Path, str]]:
    """Make an output whose row for item-0, trace 0 was broken by `breaker`; returns (folder, row id)."""

    def make(breaker: Callable[[ItemRecord], None]) -> tuple[Path, str]:
        out = tmp_path / "broken"
        write_disc_output(out, n_items=3, mutate=lambda records: breaker(records[0]))
        return out, row_id("item-0", CONFIG_SHA, 0)

    return make


@pytest.fixture
def run_cli() -> Callable[..., object]:
    """Invoke `synth inspect ARGS` on a small typer app that registers `inspect_command` as the lead does."""
    app = typer.Typer(add_completion=False)

    @app.callback()
    def main() -> None:
        """A stand-in for the synth app."""

    app.command("inspect")(inspect_command)
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(app, ["inspect", *map(str, args)])

    return invoke
