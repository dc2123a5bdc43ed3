"""What every stage is: a cheap, picklable constructor; `setup()` once per worker; batch in, batch out.

`__call__` takes a list of `ItemRecord`s and returns the same records, in order, one per input.
Per-record failures set `record.reject` or `candidate.reject` and never raise; infrastructure
failures (engine dead, bad config) raise.
"""

from __future__ import annotations

from typing import Protocol

from synth.core.records import ItemRecord


class Stage(Protocol):
    name: str

    def setup(self) -> None: ...

    def __call__(self, batch: list[ItemRecord]) -> list[ItemRecord]: ...


from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402


@dataclass
class RunContext:
    """What every stage of one run shares; picklable, built by the runner from the config."""

    config_sha256: str = ""
    output_dir: Path = Path("out")
    prompts_dir: Path = Path(__file__).resolve().parents[2] / "prompts"
    synth_version: str = ""
    extra: dict = field(default_factory=dict)
