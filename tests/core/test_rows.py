"""Records become rows and rejects that match schemas/v1.json exactly."""

from __future__ import annotations

import hashlib
import json
from datetime import timezone

import pyarrow as pa
import pytest

from synth.core.records import ItemRecord
from synth.core.rows import record_to_rows, row_id, rows_to_table
from synth.core.schema import arrow_schema
from tests.inspect.disc_rows import CONFIG_SHA, CONTEXT, SEGMENTER, disc_record, read_rejected_record


def test_every_live_candidate_is_a_row_and_every_rejected_one_a_reject():
    record = disc_record("a", n=3, k=3, rejected=(1,))
    rows, rejects = record_to_rows(record, CONTEXT, SEGMENTER)
    assert [r["teacher"]["sample_index"] for r in rows] == [0, 2]
    assert [(j["sample_index"], j["stage"], j["reason"]) for j in rejects] == [(1, "ground", "count_mismatch")]
    assert rejects[0]["trace"] == record.candidates[1].text
    assert rejects[0]["final_answer"] == "3"


def test_row_keys_are_exactly_the_schema_columns():
    rows, rejects = record_to_rows(disc_record("a", rejected=(0,)), CONTEXT, SEGMENTER)
    assert list(rows[0]) == arrow_schema("rows").names
    assert list(rejects[0]) == arrow_schema("rejects").names


def test_row_id_is_sha256_of_item_config_and_sample_and_stable():
    first, _ = record_to_rows(disc_record("a", k=2), CONTEXT, SEGMENTER)
    again, _ = record_to_rows(disc_record("a", k=2), CONTEXT, SEGMENTER)
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert first[0]["id"] != first[1]["id"]
    expected = hashlib.sha256(json.dumps(["a", CONFIG_SHA, 1]).encode()).hexdigest()
    assert first[1]["id"] == expected == row_id("a", CONFIG_SHA, 1)
    # Concatenation ambiguity: ("a1", 2) and ("a", 12) must differ.
    assert row_id("a1", "x", 2) != row_id("a", "x", 12)


def test_row_carries_image_provenance_and_sampling_json():
    record = disc_record("a")
    row = record_to_rows(record, CONTEXT, SEGMENTER)[0][0]
    assert row["image"] == {"bytes": record.image_bytes, "path": "images/a.png"}
    assert (row["image_width"], row["image_height"]) == (64, 48)
    assert row["image_sha256"] == hashlib.sha256(record.image_bytes).hexdigest()
    assert json.loads(row["teacher"]["sampling"]) == {"temperature": 0.7, "n": 2}
    prov = row["provenance"]
    assert prov["segmenter"] == SEGMENTER and prov["config_sha256"] == CONFIG_SHA and prov["source"] == "discs"
    assert prov["created_at"].tzinfo is not None and prov["created_at"].utcoffset() == timezone.utc.utcoffset(None)
    inst = row["objects"][0]["instances"][0]
    assert isinstance(inst["mask"]["counts"], str) and inst["mask"]["size"] == [48, 64]


def test_item_reject_carries_the_item_as_json_to_retry_it():
    record = read_rejected_record("b")
    rows, rejects = record_to_rows(record, CONTEXT, SEGMENTER)
    assert rows == []
    (reject,) = rejects
    assert (reject["stage"], reject["reason"]) == ("read", "image_unreadable")
    assert reject["sample_index"] is None and reject["trace"] is None
    assert json.loads(reject["item"]) == record.item.to_json()
    assert reject["config_sha256"] == CONFIG_SHA


def test_live_item_without_candidates_is_refused_not_lost():
    record = disc_record("a")
    record.candidates = []
    with pytest.raises(ValueError, match="'a'.*no candidates"):
        record_to_rows(record, CONTEXT, SEGMENTER)


def test_rows_to_table_uses_the_explicit_schema_even_when_optional_columns_are_all_null():
    record = disc_record("a")
    for cand in record.candidates:
        cand.final_answer = None
        cand.objects[0].expected_count = None
    rows, _ = record_to_rows(record, CONTEXT, SEGMENTER)
    table = rows_to_table(rows, "rows")
    assert table.schema.equals(arrow_schema("rows"), check_metadata=True)
    assert table.column("final_answer").type == pa.string()
    rejects = record_to_rows(read_rejected_record("b"), CONTEXT, SEGMENTER)[1]
    rtable = rows_to_table(rejects, "rejects")
    assert rtable.column("sample_index").type == pa.int32()
    assert rtable.column("sample_index").null_count == 1


def test_rows_to_table_names_the_row_and_column_that_break_the_schema():
    rows, _ = record_to_rows(disc_record("a"), CONTEXT, SEGMENTER)
    bad = dict(rows[1], trace=None)
    with pytest.raises(ValueError, match=f"id={rows[1]['id']}.*'trace' is required"):
        rows_to_table([rows[0], bad], "rows")
    with pytest.raises(ValueError, match="unknown column.*'colour'"):
        rows_to_table([dict(rows[0], colour="red")], "rows")
    with pytest.raises(ValueError, match=f"id={rows[1]['id']}.*does not fit"):
        rows_to_table([rows[0], dict(rows[1], image_width="wide")], "rows")
    with pytest.raises(ValueError, match="'image' is required"):
        rows_to_table([dict(rows[0], image=None)], "rows")


def test_bytes_mask_counts_are_stored_as_text():
    record: ItemRecord = disc_record("a")
    inst = record.candidates[0].objects[0].instances[0]
    inst.mask = {"size": inst.mask["size"], "counts": inst.mask["counts"].encode("ascii")}
    row = record_to_rows(record, CONTEXT, SEGMENTER)[0][0]
    assert isinstance(row["objects"][0]["instances"][0]["mask"]["counts"], str)
