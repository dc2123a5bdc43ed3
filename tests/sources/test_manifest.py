"""JSONL, CSV and Parquet manifests: good entries become items, bad ones bad items that name line and field."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth.core.records import Item
from synth.sources.base import BadItem, SourceError
from synth.sources.manifest import ManifestOptions, iter_manifest

GOOD = [
    {"image": "a.png", "question": "How many apples?", "answer": 3, "id": "x1", "points": [[1, 2], [3.5, 4]], "label": "apple"},
    {"image": "sub/b.jpg", "question": "Is the cup left of the plate?", "answer": "yes", "task": "spatial",
     "boxes": [[0, 0, 10, 10], [20, 0, 30, 10]], "choices": ["yes", "no"]},
]


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _items(path: Path, **options: object) -> list[Item]:
    return list(iter_manifest(path, ManifestOptions(**options)))


def _check_good(items: list[Item]) -> None:
    a, b = items
    assert type(a) is Item and type(b) is Item
    assert (a.item_id, a.image_path, a.question, a.answer, a.task, a.label) == ("x1", "a.png", "How many apples?", "3", "counting", "apple")
    assert a.points == [[1.0, 2.0], [3.5, 4.0]]
    assert (b.task, b.answer, b.choices, b.image_path) == ("spatial", "yes", ["yes", "no"], "sub/b.jpg")
    assert b.boxes == [[0.0, 0.0, 10.0, 10.0], [20.0, 0.0, 30.0, 10.0]]
    assert len(b.item_id) == 20 and b.source == a.source


def test_jsonl_manifest(tmp_path):
    items = _items(_jsonl(tmp_path / "items.jsonl", GOOD))
    _check_good(items)
    assert items[0].source == "manifest:items.jsonl"


def test_csv_manifest_with_json_cells(tmp_path):
    path = tmp_path / "items.csv"
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, ["id", "image", "question", "answer", "task", "points", "boxes", "label", "choices"])
        writer.writeheader()
        for row in GOOD:
            writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    _check_good(_items(path))


def test_parquet_manifest_with_list_columns(tmp_path):
    path = tmp_path / "items.parquet"
    keys = sorted({k for r in GOOD for k in r})  # from_pylist takes its columns from the first row
    rows = [{k: r.get(k) for k in keys} | {"answer": str(r["answer"])} for r in GOOD]  # one type per column
    pq.write_table(pa.Table.from_pylist(rows), path)
    _check_good(_items(path))


def test_ids_are_stable_and_differ_by_entry(tmp_path):
    rows = [{"image": "a.png", "question": "q", "answer": "1"}] * 2
    first = _items(_jsonl(tmp_path / "m.jsonl", rows))
    again = _items(tmp_path / "m.jsonl")
    assert [i.item_id for i in first] == [i.item_id for i in again]
    assert first[0].item_id != first[1].item_id


def test_bad_entries_become_bad_items_naming_line_and_field(tmp_path):
    rows = [
        GOOD[0],
        {"image": "a.png", "answer": "2"},  # line 2: no question
        "this is not json",  # line 3
        {"image": "a.png", "question": "q", "answer": "1", "points": "[[1, 2, 3]]"},  # line 4
        {"image": 7, "question": ["q"], "answer": True},  # line 5: three wrong types
        "[1, 2]",  # line 6: JSON but not an object
        {"image": "a.png", "question": "q", "answer": "1", "boxes": [[5, 5, 1, 1]]},  # line 7: x1 < x0
        {"image": "c.png", "question": "q", "answer": "1", "id": "x1"},  # line 8: repeats id x1
        GOOD[1],
    ]
    items = _items(_jsonl(tmp_path / "items.jsonl", rows))
    assert len(items) == len(rows), "every line is accounted for"
    bad = {i: it.problem for i, it in enumerate(items) if isinstance(it, BadItem)}
    assert sorted(bad) == [1, 2, 3, 4, 5, 6, 7]
    assert bad[1] == "items.jsonl line 2: field 'question' is missing"
    assert bad[2].startswith("items.jsonl line 3: not valid JSON")
    assert "line 4" in bad[3] and "'points'" in bad[3] and "[x, y]" in bad[3]
    assert all(f"'{f}'" in bad[4] for f in ("image", "question", "answer"))
    assert "line 6" in bad[5] and "JSON object" in bad[5]
    assert "line 7" in bad[6] and "'boxes'" in bad[6]
    assert "line 8" in bad[7] and "repeats" in bad[7]
    ids = [it.item_id for it in items]
    assert len(set(ids)) == len(ids), "a repeated id is replaced, so every entry keeps a distinct id"


def test_csv_missing_column_and_bad_cell(tmp_path):
    path = tmp_path / "items.csv"
    path.write_text("image,question\na.png,How many?\nb.png,How many?\n")
    items = _items(path)
    assert all(isinstance(i, BadItem) for i in items)
    assert items[0].problem == "items.csv line 2: field 'answer' is missing"
    path.write_text('image,question,answer,points\na.png,q,1,"not json"\n')
    (item,) = _items(path)
    assert isinstance(item, BadItem) and "line 2" in item.problem and "'points' must be JSON" in item.problem


def test_invalid_utf8_line_is_a_bad_item_and_reading_goes_on(tmp_path):
    path = tmp_path / "items.jsonl"
    path.write_bytes(b'{"image": "a.png", "question": "\xff\xfe", "answer": "1"}\n' + json.dumps(GOOD[0]).encode() + b"\n")
    bad, good = _items(path)
    assert isinstance(bad, BadItem) and "UTF-8" in bad.problem and type(good) is Item


def test_unreadable_files_raise_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        _items(tmp_path / "missing.jsonl")
    (tmp_path / "m.txt").write_text("{}")
    with pytest.raises(SourceError, match="suffix"):
        _items(tmp_path / "m.txt")
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(SourceError, match="cannot read Parquet"):
        _items(tmp_path / "broken.parquet")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SourceError, match="no header"):
        _items(tmp_path / "empty.csv")


def test_format_option_overrides_the_suffix(tmp_path):
    path = _jsonl(tmp_path / "items.txt", GOOD)
    _check_good(_items(path, format="jsonl"))


def test_hostile_lines_are_bad_items_without_holding_them(tmp_path, monkeypatch):
    from synth.sources import manifest

    monkeypatch.setattr(manifest, "MAX_LINE_BYTES", 1000)
    path = tmp_path / "items.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    lines = [json.dumps(GOOD[0]), "x" * 5000, "", deep[:900], json.dumps(GOOD[1])]
    path.write_text("\n".join(lines) + "\n")
    items = _items(path)
    assert [type(i) for i in items] == [Item, BadItem, BadItem, Item], "the blank line is no entry"
    assert "line 2: longer than 1000 bytes" in items[1].problem
    assert "line 4: not valid JSON" in items[2].problem
    monkeypatch.setattr(manifest, "MAX_LINE_BYTES", 10**6)
    path.write_text(deep + "\n")
    (item,) = _items(path)
    assert isinstance(item, BadItem) and "not valid JSON" in item.problem
