"""Run the stages in this process, batch after batch: the reference the Ray runner must agree with."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Callable

from synth.core.records import ItemRecord
from synth.stages.base import Stage


def call_stage(stage: Stage, records: list[ItemRecord]) -> list[ItemRecord]:
    """Call a stage on a batch, check it kept one output per input, and record its time per record."""
    start = time.perf_counter()
    out = stage(records)
    elapsed = time.perf_counter() - start
    if len(out) != len(records):
        raise RuntimeError(f"stage {stage.name} returned {len(out)} records for {len(records)}")
    for record in out:
        record.timings[stage.name] = record.timings.get(stage.name, 0.0) + elapsed / max(len(out), 1)
    return out


class LocalExecutor:
    """Sets every stage up once, then pushes each batch through all of them in order."""

    def __init__(self, stages: list[Stage], on_stage_done: Callable[[str, int], None] | None = None):
        self.stages = stages
        self.on_stage_done = on_stage_done

    def run(self, batches: Iterable[list[ItemRecord]]) -> Iterator[list[ItemRecord]]:
        try:
            for stage in self.stages:
                stage.setup()
            for records in batches:
                for stage in self.stages:
                    records = call_stage(stage, records)
                    if self.on_stage_done:
                        self.on_stage_done(stage.name, len(records))
                yield records
        finally:
            for stage in self.stages:
                close = getattr(stage, "close", None)
                if close is not None:
                    close()
