"""Exclusion lists in every accepted layout, and dedup of images across sources."""

import hashlib
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth.export.hygiene import load_exclusions, plan_hygiene

A, B = hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()


@pytest.mark.parametrize(
    "name, content",
    [
        ("eval.txt", f"# eval images\n{A}\n\n{B.upper()}\n"),
        ("eval.json", json.dumps([A, B])),
        ("eval2.json", json.dumps([{"image_sha256": A}, {"image_sha256": B, "other": 1}])),
        ("eval3.json", json.dumps({"image_sha256": [A, B]})),
        ("eval.jsonl", json.dumps({"image_sha256": A}) + "\n" + json.dumps({"image_sha256": B}) + "\n"),
    ],
)
def test_exclusion_lists_read_in_every_layout(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    assert load_exclusions(path) == {A, B}


def test_exclusion_list_from_parquet(tmp_path):
    path = tmp_path / "eval.parquet"
    pq.write_table(pa.table({"image_sha256": [A, B], "question": ["q1", "q2"]}), path)
    assert load_exclusions(path) == {A, B}


def test_bad_exclusion_entries_name_the_file_and_entry(tmp_path):
    path = tmp_path / "eval.txt"
    path.write_text(f"{A}\nnot-a-hash\n")
    with pytest.raises(ValueError, match=r"eval.txt: entry 1 is 'not-a-hash'; expected a 64-digit hex sha256"):
        load_exclusions(path)
    pq.write_table(pa.table({"sha": [A]}), tmp_path / "x.parquet")
    with pytest.raises(ValueError, match="no image_sha256 column; found sha"):
        load_exclusions(tmp_path / "x.parquet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_exclusions(tmp_path / "missing.txt")


def test_dedup_keeps_the_source_of_the_first_id_and_all_its_rows():
    keys = [("b2", "img", "pixmo"), ("a1", "img", "countbench"), ("a3", "img", "countbench"), ("c", "other", "pixmo")]
    report = plan_hygiene(keys)
    assert report.duplicates == ["b2"] and report.excluded == []
    assert plan_hygiene(keys, dedup=False).dropped == set()


def test_an_excluded_image_does_not_claim_ownership():
    keys = [("a1", A, "countbench"), ("b2", A, "pixmo"), ("c3", B, "pixmo")]
    report = plan_hygiene(keys, exclude={A})
    assert report.excluded == ["a1", "b2"] and report.duplicates == []
