"""Progress of a run: live bars per stage on a terminal, plain log lines otherwise, nothing with --quiet."""

from __future__ import annotations

import logging
import sys
from typing import Any

log = logging.getLogger(__name__)


class RunProgress:
    """Counts records per stage and commits; draws them the way the output stream allows."""

    def __init__(self, stage_names: list[str], quiet: bool, total: int | None = None):
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        if self.live:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bars = Progress(
                TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                transient=False,
            )
            for name in [*stage_names, "written"]:
                self._tasks[name] = self._bars.add_task(name, total=total)

    def __enter__(self) -> RunProgress:
        if self._bars is not None:
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def stage_done(self, name: str, n: int) -> None:
        """`n` more records have passed stage `name`."""
        if self._bars is not None and name in self._tasks:
            self._bars.advance(self._tasks[name], n)

    def committed(self, items: int, rows: int, rejects: int, total_items: int) -> None:
        """A batch of finished items was written."""
        if self._bars is not None:
            self._bars.advance(self._tasks["written"], items)
        elif not self.quiet:
            log.info("committed %d items (%d rows, %d rejects); %d items done", items, rows, rejects, total_items)
