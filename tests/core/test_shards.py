"""Shards and manifest: explicit schema, atomic commits, resume bookkeeping, clear read errors."""

from __future__ import annotations

import json
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth.core import shards as shards_module
from synth.core.rows import record_to_rows
from synth.core.schema import METADATA_VERSION_KEY, SchemaError, arrow_schema
from synth.core.shards import MANIFEST_NAME, ShardWriter, load_manifest, load_output, read_table
from synth.runners.summary import Summary
from tests.inspect.disc_rows import (
    CONFIG_SHA,
    CONTEXT,
    SEGMENTER,
    disc_record,
    read_rejected_record,
    write_disc_output,
)


def _rows_of(*records):
    rows, rejects = [], []
    for record in records:
        r, j = record_to_rows(record, CONTEXT, SEGMENTER)
        rows += r
        rejects += j
    return rows, rejects, [r.item.item_id for r in records]


def _files(folder):
    return sorted(p.name for p in folder.iterdir())


def test_round_trip_keeps_schema_and_values_with_all_null_optionals_first(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA, config={"k": 1})
    first = disc_record("a", k=2)
    for cand in first.candidates:
        cand.final_answer = None  # an all-null optional column in the first batch
    rows1, rejects1, ids1 = _rows_of(first, read_rejected_record("b"))  # rejects: sample_index all null
    writer.commit(rows1, rejects1, ids1)
    rows2, rejects2, ids2 = _rows_of(disc_record("c", k=3, rejected=(2,)))
    writer.commit(rows2, rejects2, ids2)

    for entry in writer.manifest["shards"]:
        kind, table = read_table(tmp_path / entry["path"])
        assert kind == entry["kind"] and table.num_rows == entry["rows"]
        assert table.schema.remove_metadata().equals(arrow_schema(kind).remove_metadata())
    out = load_output(tmp_path)
    assert out.rows.num_rows == 4 and out.rejects.num_rows == 2
    assert out.rows.column("final_answer").to_pylist() == [None, None, "3", "3"]
    back = out.rows.to_pylist()[2]
    assert back["objects"][0]["instances"][0]["box"] == rows2[0]["objects"][0]["instances"][0]["box"]
    assert back["image"]["bytes"] == rows2[0]["image"]["bytes"]
    assert out.rejects.column("sample_index").to_pylist() == [None, 2]


def test_shards_are_zstd_with_row_groups_of_about_100(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    records = [disc_record(f"i{n}", n=1, k=5) for n in range(50)]  # 250 rows
    writer.commit(*_rows_of(*records))
    (entry,) = writer.manifest["shards"]
    meta = pq.ParquetFile(tmp_path / entry["path"]).metadata
    assert meta.num_row_groups == 3 and meta.row_group(0).num_rows == 100
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_commit_leaves_no_tmp_and_manifest_lists_exactly_the_shards(tmp_path):
    writer = write_disc_output(tmp_path, n_items=5, commits=2)
    manifest = load_manifest(tmp_path)
    listed = sorted(e["path"] for e in manifest["shards"])
    assert _files(tmp_path) == sorted(listed + [MANIFEST_NAME])
    assert not any(name.endswith(".tmp") for name in _files(tmp_path))
    assert manifest["items_in"] == 5 and writer.done_item_ids == {f"item-{i}" for i in range(5)}
    assert manifest["rows"] == sum(e["rows"] for e in manifest["shards"] if e["kind"] == "rows")
    for entry in manifest["shards"]:
        assert entry["sha256"] == shards_module.file_sha256(tmp_path / entry["path"])


def test_crash_before_manifest_write_leaves_the_last_commit_as_it_was(tmp_path, monkeypatch):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    writer.commit(*_rows_of(disc_record("a")))
    before = (tmp_path / MANIFEST_NAME).read_text()

    def die(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", lambda src, dst, _real=os.replace: (
        die() if str(dst).endswith(MANIFEST_NAME) else _real(src, dst)))
    with pytest.raises(OSError, match="disk full"):
        writer.commit(*_rows_of(disc_record("b")))
    monkeypatch.undo()
    assert (tmp_path / MANIFEST_NAME).read_text() == before
    assert "b" not in writer.done_item_ids

    resumed = ShardWriter.open(tmp_path, CONFIG_SHA)
    assert resumed.done_item_ids == {"a"}
    assert _files(tmp_path) == sorted([MANIFEST_NAME, *(e["path"] for e in resumed.manifest["shards"])])
    assert set(load_output(tmp_path).rows.column("item_id").to_pylist()) == {"a"}


def test_resume_deletes_uncommitted_files_keeps_others_and_never_reuses_names(tmp_path):
    write_disc_output(tmp_path, n_items=3)
    first_names = {e["path"] for e in load_manifest(tmp_path)["shards"]}
    stray = tmp_path / "rows-a001-c00009.parquet"
    stray.write_bytes(b"half a shard")
    (tmp_path / "rejects-a002-c00001.parquet.tmp").write_bytes(b"x")
    (tmp_path / (MANIFEST_NAME + ".tmp")).write_text("{")
    (tmp_path / "summary.json").write_text("{}")
    (tmp_path / "notes.parquet").write_bytes(b"not ours")

    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    assert writer.done_item_ids == {"item-0", "item-1", "item-2"}
    assert _files(tmp_path) == sorted([MANIFEST_NAME, "notes.parquet", "summary.json", *first_names])
    writer.commit(*_rows_of(disc_record("item-3")))
    new = {e["path"] for e in writer.manifest["shards"]} - first_names
    assert new and all(name.startswith("rows-a002-") for name in new)


def test_resume_refuses_another_config_unless_overwrite(tmp_path):
    write_disc_output(tmp_path, n_items=2)
    with pytest.raises(ValueError, match="another config.*cccccccccccc.*dddddddddddd"):
        ShardWriter.open(tmp_path, "d" * 64)
    writer = ShardWriter.open(tmp_path, "d" * 64, overwrite=True)
    assert writer.done_item_ids == set()
    assert _files(tmp_path) == [MANIFEST_NAME]
    assert load_manifest(tmp_path)["config_sha256"] == "d" * 64


def test_an_empty_run_of_another_config_is_simply_replaced(tmp_path):
    ShardWriter.open(tmp_path, "d" * 64)  # opened, then died before committing anything
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    assert load_manifest(tmp_path)["config_sha256"] == CONFIG_SHA and writer.done_item_ids == set()


def test_commit_refuses_items_that_would_vanish_or_repeat(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    rows, rejects, _ = _rows_of(disc_record("a"))
    with pytest.raises(ValueError, match="'ghost'.*neither a row nor a reject"):
        writer.commit(rows, rejects, ["a", "ghost"])
    with pytest.raises(ValueError, match="'a'.*not listed"):
        writer.commit(rows, rejects, [])
    writer.commit(rows, rejects, ["a"])
    with pytest.raises(ValueError, match="'a'.*committed before"):
        writer.commit(rows, rejects, ["a"])


def test_summary_is_stored_and_survives_a_restart(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    assert writer.summary == {}
    summary = {**Summary().to_dict(), "items": 1}
    writer.commit(*_rows_of(disc_record("a")), summary=summary)
    writer.set_summary({**summary, "note": "set"})
    assert ShardWriter.open(tmp_path, CONFIG_SHA).summary == {**summary, "note": "set"}


def test_missing_committed_shard_is_an_error_on_resume(tmp_path):
    write_disc_output(tmp_path, n_items=2)
    victim = load_manifest(tmp_path)["shards"][0]["path"]
    (tmp_path / victim).unlink()
    with pytest.raises(ValueError, match=f"lists {victim}, which is missing"):
        ShardWriter.open(tmp_path, CONFIG_SHA)


# ----------------------------------------------------------------------------------------------
# Reading bad files


@pytest.fixture
def shard(tmp_path):
    write_disc_output(tmp_path / "out", n_items=2)
    return tmp_path / "out" / load_manifest(tmp_path / "out")["shards"][0]["path"]


def test_truncated_shard_is_named(shard):
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(SchemaError, match=f"{shard.name}: truncated"):
        read_table(shard)


def test_damaged_footer_length_is_refused_fast(shard):
    data = bytearray(shard.read_bytes())
    data[-8:-4] = (2**31 - 1).to_bytes(4, "little")
    shard.write_bytes(bytes(data))
    with pytest.raises(SchemaError, match=f"{shard.name}: truncated or damaged"):
        read_table(shard)


def test_damaged_bytes_inside_a_shard_are_named(shard):
    data = bytearray(shard.read_bytes())
    for i in range(200, len(data) - 4000, 97):  # scribble over pages and page headers
        data[i] ^= 0x5A
    shard.write_bytes(bytes(data))
    with pytest.raises(SchemaError, match=f"{shard.name}: unreadable Parquet file"):
        read_table(shard)


def test_non_parquet_file_is_named(tmp_path):
    path = tmp_path / "image.parquet"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(SchemaError, match="image.parquet: not a Parquet file"):
        read_table(path)
    (tmp_path / "empty.parquet").write_bytes(b"")
    with pytest.raises(SchemaError, match="empty.parquet: not a Parquet file"):
        read_table(tmp_path / "empty.parquet")


def test_foreign_parquet_is_not_a_synth_shard(tmp_path):
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"x": [1, 2]}), path)
    with pytest.raises(SchemaError, match="other.parquet: not a synth shard"):
        read_table(path)


def test_other_schema_version_is_refused_by_name(tmp_path, shard):
    table = pq.read_table(shard)
    meta = dict(table.schema.metadata)
    meta[METADATA_VERSION_KEY] = b"2"
    path = tmp_path / "v2.parquet"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(SchemaError, match="v2.parquet: synth schema version 2, this synth reads version 1"):
        read_table(path)


def test_deeply_nested_parquet_is_refused_quickly(tmp_path):
    nested = pa.int32()
    for _ in range(150):
        nested = pa.struct([pa.field("a", nested)])
    path = tmp_path / "deep.parquet"
    pq.write_table(pa.table({"x": pa.array([None], type=nested)}), path)
    start = time.monotonic()
    with pytest.raises(SchemaError, match="deep.parquet"):
        read_table(path)
    assert time.monotonic() - start < 5


def test_oversized_footer_metadata_is_refused_before_parsing(tmp_path):
    path = tmp_path / "fat.parquet"
    table = pa.table({"x": [1]}).replace_schema_metadata({"junk": "z" * 2_000_000})
    pq.write_table(table, path)
    with pytest.raises(SchemaError, match="fat.parquet: Parquet footer of .* exceeds the limit"):
        read_table(path, max_footer_bytes=1_000_000)


def test_manifest_of_another_version_and_paths_outside_are_refused(tmp_path):
    write_disc_output(tmp_path, n_items=2)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    manifest["shards"][0]["path"] = "../elsewhere.parquet"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="outside the folder"):
        load_output(tmp_path)
    manifest["schema_version"] = 2
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(SchemaError, match="schema version 2"):
        load_output(tmp_path)


def test_hugging_face_datasets_decodes_the_image_column(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    write_disc_output(tmp_path / "out", n_items=2)
    entry = next(e for e in load_manifest(tmp_path / "out")["shards"] if e["kind"] == "rows")
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "out" / entry["path"]),
                               cache_dir=str(tmp_path / "cache"), split="train")
    row = ds[0]
    assert row["image"].size == (64, 48)
    assert row["image"].convert("RGB").getpixel((8, 8)) == (220, 40, 40)
    assert row["objects"][0]["instances"][0]["box"] == [3.0, 3.0, 14.0, 14.0]


@pytest.mark.parametrize("summary", [{"stages": []}, {"items": 2, "rows": 2, "rejects": 0,
                                                      "stages": [{"stage": "read", "unit": "item", "in": 2, "out": 2}]}])
def test_a_manifest_whose_summary_a_resume_cannot_read_is_refused_by_name(tmp_path, summary):
    write_disc_output(tmp_path, n_items=2)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({**manifest, "summary": summary}))
    with pytest.raises(ValueError, match=r"summary\.(items|stages\[0\])"):
        load_manifest(tmp_path)
