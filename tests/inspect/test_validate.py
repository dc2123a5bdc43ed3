"""`validate_output` passes a good output and names the row and the failure of a broken one."""

from __future__ import annotations

import json

import numpy as np
import pytest

from synth.core.geometry import mask_to_rle
from synth.core.rows import record_to_rows, row_id
from synth.core.shards import MANIFEST_NAME, ShardWriter, load_output
from synth.inspect.validate import validate_output
from tests.inspect.disc_rows import CONFIG_SHA, CONTEXT, SEGMENTER, disc_masks, disc_record


def _first_instance(record):
    return record.candidates[0].objects[0].instances[0]


def _taller_mask(record):
    mask = np.zeros((record.height + 2, record.width), dtype=bool)
    mask[:record.height] = disc_masks(1, record.width, record.height)[0]
    _first_instance(record).mask = mask_to_rle(mask)


def _box_outside(record):
    _first_instance(record).box = [3.0, 3.0, float(record.width + 5), 14.0]


def _loose_box(record):
    _first_instance(record).box = [2.0, 3.0, 14.0, 14.0]


def _point_outside(record):
    _first_instance(record).point = [0.5, 0.5]


def _span_off_phrase(record):
    record.candidates[0].objects[0].spans = [(0, 5)]


def _span_past_trace(record):
    n = len(record.candidates[0].text)
    record.candidates[0].objects[0].spans = [(n - 2, n + 10)]


def _wrong_sha(record):
    record.image_sha256 = "0" * 64


def _wrong_size(record):
    record.width = 65


def _garbage_image(record):
    record.image_bytes = b"not an image at all"
    record.image_sha256 = ""


IMAGE_BREAKERS = (_wrong_sha, _wrong_size, _garbage_image)
BREAKERS = [
    (_taller_mask, "mask size [50, 64] is not [image_height, image_width] = [48, 64]"),
    (_box_outside, "is not inside the 64x48 image"),
    (_loose_box, "box [2, 3, 14, 14] is not the tight box of its mask [3, 3, 14, 14]"),
    (_point_outside, "point [0.5, 0.5] lies outside its mask"),
    (_span_off_phrase, "span [0, 5) reads 'I loo', which does not name the phrase"),
    (_span_past_trace, "lies outside the trace"),
    (_wrong_sha, "image_sha256 does not match"),
    (_wrong_size, "image decodes to 64x48, row says image_width x image_height = 65x48"),
    (_garbage_image, "image bytes do not decode"),
]


def test_a_good_output_has_no_problem(disc_output):
    assert validate_output(load_output(disc_output)) == []


@pytest.mark.parametrize("breaker, message", BREAKERS, ids=[b.__name__ for b, _ in BREAKERS])
def test_a_broken_row_is_named_with_what_failed(broken_output, breaker, message):
    folder, bad_id = broken_output(breaker)
    problems = validate_output(load_output(folder))
    assert problems, "the broken row passed validation"
    wheres = {p.where for p in problems}
    # Image faults are the item's, so they show in both of item-0's rows; the rest only in trace 0's.
    item_rows = {f"row {row_id('item-0', CONFIG_SHA, s)}" for s in (0, 1)}
    assert f"row {bad_id}" in wheres and wheres <= item_rows
    if breaker not in IMAGE_BREAKERS:
        assert wheres == {f"row {bad_id}"}
    assert any(message in p.what for p in problems), [p.what for p in problems]


def test_the_same_checks_run_on_a_single_shard(broken_output):
    folder, bad_id = broken_output(_point_outside)
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    shard = next(e["path"] for e in manifest["shards"] if e["kind"] == "rows")
    problems = validate_output(load_output(folder / shard))
    assert [p.where for p in problems] == [f"row {bad_id}"]


def test_an_item_of_the_manifest_missing_from_the_shards_is_named(disc_output):
    manifest = json.loads((disc_output / MANIFEST_NAME).read_text())
    manifest["shards"][0]["item_ids"].append("item-lost")
    manifest["items_in"] += 1
    (disc_output / MANIFEST_NAME).write_text(json.dumps(manifest))
    problems = validate_output(load_output(disc_output))
    assert [(p.where, "item-lost" in p.what) for p in problems] == [("manifest", True)]


def test_counts_that_do_not_add_up_are_named(disc_output):
    manifest = json.loads((disc_output / MANIFEST_NAME).read_text())
    manifest["rows"] += 1
    manifest["summary"] = {"items": 5, "rows": 6, "rejects": 3,
                           "stages": [{"stage": "ground", "unit": "trace", "in": 8, "out": 6,
                                       "rejected": {"count_mismatch": 1}, "seconds": 1.0}]}
    (disc_output / MANIFEST_NAME).write_text(json.dumps(manifest))
    found = {(p.where, p.what) for p in validate_output(load_output(disc_output))}
    assert ("manifest", "rows is 7, the shards hold 6") in found
    assert ("summary ground/trace", "in 8 != out 6 + rejected 1") in found


def test_a_changed_shard_fails_its_hash(disc_output):
    manifest = json.loads((disc_output / MANIFEST_NAME).read_text())
    manifest["shards"][0]["sha256"] = "f" * 64
    (disc_output / MANIFEST_NAME).write_text(json.dumps(manifest))
    problems = validate_output(load_output(disc_output))
    assert [(p.where, p.what) for p in problems] == [
        (f"shard {manifest['shards'][0]['path']}", "sha256 differs from the manifest's")
    ]


def test_an_undocumented_reject_reason_is_named(tmp_path):
    writer = ShardWriter.open(tmp_path, CONFIG_SHA)
    rows, rejects = record_to_rows(disc_record("a", rejected=(1,)), CONTEXT, SEGMENTER)
    rejects[0]["reason"] = "bad_vibes"
    writer.commit(rows, rejects, ["a"])
    problems = validate_output(load_output(tmp_path))
    assert len(problems) == 1 and problems[0].where == "reject #0 (item a)"
    assert "unknown reject reason 'bad_vibes'" in problems[0].what
