"""The run summary: every line adds up, and it survives the manifest round trip used by resume."""

from __future__ import annotations

from synth.core.records import Candidate, Item, ItemRecord, Reject
from synth.runners.summary import Summary


def _record(item_id: str, reject: Reject | None = None, candidates: list[Candidate] | None = None) -> ItemRecord:
    return ItemRecord(item=Item(item_id, "how many?", "3"), reject=reject, candidates=candidates or [])


def _batch() -> list[ItemRecord]:
    ok = Candidate(0, "three coins")
    wrong = Candidate(1, "two coins", reject=Reject("teach", "answer_wrong"))
    miscounted = Candidate(2, "three coins", reject=Reject("ground", "count_mismatch"))
    return [
        _record("a", candidates=[ok, wrong, miscounted]),
        _record("b", reject=Reject("read", "image_unreadable")),
        _record("c", reject=Reject("teach", "teacher_timeout")),
    ]


def test_lines_add_up_and_chain_into_rows():
    summary = Summary()
    summary.add(_batch(), rows=1, rejects=4)
    lines = {(line.stage, line.unit): line for line in summary.lines.values()}
    assert lines[("read", "item")].n_in == 3 and lines[("read", "item")].rejected == {"image_unreadable": 1}
    assert lines[("teach", "item")].n_in == 2 and lines[("teach", "item")].rejected == {"teacher_timeout": 1}
    assert lines[("teach", "trace")].n_in == 3 and lines[("teach", "trace")].n_out == 2
    assert lines[("ground", "trace")].rejected == {"count_mismatch": 1}
    assert lines[("annotate", "trace")].n_out == 1
    assert summary.balanced()


def test_unbalanced_when_rows_disagree():
    summary = Summary()
    summary.add(_batch(), rows=2, rejects=4)
    assert not summary.balanced()


def test_round_trip_through_dict_accumulates():
    first = Summary()
    first.add(_batch(), rows=1, rejects=4)
    resumed = Summary.from_dict(first.to_dict())
    resumed.add(_batch(), rows=1, rejects=4)
    assert resumed.items == 6 and resumed.rows == 2
    assert resumed.balanced()
