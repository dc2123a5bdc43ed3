"""Per-stage accounting of a run: in, out, rejected by reason, time; every line adds up.

Items flow through read and teach; from teach on, the unit is the trace (an item yields k).
So the table has an item line for read and teach, then trace lines for teach and the stages after
it. For every line, `in == out + sum(rejected)`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from synth.core.records import ItemRecord

TRACE_STAGES = ("extract", "ground", "annotate")


@dataclass
class StageCounts:
    """One line of the summary."""

    stage: str
    unit: str
    n_in: int = 0
    n_out: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def balanced(self) -> bool:
        return self.n_in == self.n_out + sum(self.rejected.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "unit": self.unit,
            "in": self.n_in,
            "out": self.n_out,
            "rejected": dict(sorted(self.rejected.items())),
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageCounts:
        return cls(
            data["stage"], data["unit"], data["in"], data["out"], Counter(data["rejected"]), data["seconds"]
        )


class Summary:
    """Counts accumulated over the committed batches of a run (and of the runs it resumes)."""

    def __init__(self) -> None:
        self.lines: dict[tuple[str, str], StageCounts] = {}
        for stage, unit in [("read", "item"), ("teach", "item"), ("teach", "trace")]:
            self.lines[(stage, unit)] = StageCounts(stage, unit)
        for stage in TRACE_STAGES:
            self.lines[(stage, "trace")] = StageCounts(stage, "trace")
        self.items = 0
        self.rows = 0
        self.rejects = 0

    def add(self, records: list[ItemRecord], rows: int, rejects: int) -> None:
        """Count a batch of finished records and the rows and rejects written for them."""
        self.items += len(records)
        self.rows += rows
        self.rejects += rejects
        for record in records:
            self._count_item(record)
            self._count_traces(record)
            for stage, seconds in record.timings.items():
                # Time goes on the stage's first line (read and teach: the item line).
                line = self.lines.get((stage, "item")) or self.lines.get((stage, "trace"))
                if line is not None:
                    line.seconds += seconds

    def _count_item(self, record: ItemRecord) -> None:
        read, teach = self.lines[("read", "item")], self.lines[("teach", "item")]
        read.n_in += 1
        if record.reject is not None and record.reject.stage == "read":
            read.rejected[record.reject.reason] += 1
            return
        read.n_out += 1
        teach.n_in += 1
        if record.reject is not None:
            teach.rejected[record.reject.reason] += 1
        else:
            teach.n_out += 1

    def _count_traces(self, record: ItemRecord) -> None:
        if record.reject is not None:
            return
        order = ["teach", *TRACE_STAGES]
        for candidate in record.candidates:
            failed_at = order.index(candidate.reject.stage) if candidate.reject else len(order)
            for i, stage in enumerate(order[: failed_at + 1]):
                line = self.lines[(stage, "trace")]
                line.n_in += 1
                if i == failed_at:
                    line.rejected[candidate.reject.reason] += 1  # type: ignore[union-attr]
                else:
                    line.n_out += 1

    def balanced(self) -> bool:
        """Whether every line adds up and the trace lines chain into the rows written."""
        lines_ok = all(line.balanced() for line in self.lines.values())
        return lines_ok and self.lines[("annotate", "trace")].n_out == self.rows

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "rows": self.rows,
            "rejects": self.rejects,
            "stages": [line.to_dict() for line in self.lines.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Summary:
        summary = cls()
        if not data:
            return summary
        summary.items, summary.rows, summary.rejects = data["items"], data["rows"], data["rejects"]
        for raw in data["stages"]:
            line = StageCounts.from_dict(raw)
            summary.lines[(line.stage, line.unit)] = line
        return summary

    def rich_table(self) -> Any:
        """The summary as a rich Table (the CLI prints it)."""
        from rich.table import Table

        table = Table(title=f"{self.items} items -> {self.rows} rows, {self.rejects} rejects")
        for column in ("stage", "unit", "in", "out", "rejected", "seconds"):
            table.add_column(column, justify="left" if column in ("stage", "unit", "rejected") else "right")
        for line in self.lines.values():
            rejected = ", ".join(f"{reason} {n}" for reason, n in sorted(line.rejected.items())) or "-"
            table.add_row(line.stage, line.unit, str(line.n_in), str(line.n_out), rejected, f"{line.seconds:.1f}")
        return table
