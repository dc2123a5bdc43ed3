"""The summary counts what a user would check first: rows, rejects, objects, formats, pass rates."""

from __future__ import annotations

import json

from synth.core.records import Reject
from synth.core.shards import MANIFEST_NAME, load_output
from synth.inspect.summary import summarize
from tests.inspect.disc_rows import write_disc_output


def test_summary_of_a_folder(disc_output):
    s = summarize(load_output(disc_output))
    # Items 0..3 have 1..4 discs and 2 traces each; odd items lose trace 1; item 4 is rejected whole.
    assert (s["source"], s["rows"], s["rejects"]) == ("folder", 6, 3)
    assert s["items"] == {"seen": 5, "with_rows": 4, "rejected_whole": 1, "in_manifest": 5}
    assert s["rejects_by_stage"] == {"ground": 2, "read": 1}
    assert s["rejects_by_reason"] == {"ground/count_mismatch": 2, "read/image_unreadable": 1}
    assert s["objects_per_row"]["histogram"] == {"1": 6}
    assert s["instances_per_row"] == {"min": 1, "mean": 2.333, "max": 4, "histogram": {"1": 2, "2": 1, "3": 2, "4": 1}}
    assert s["instance_area_fraction"]["instances"] == 14
    assert s["grounded_formats"] == {"tvg:pixel": 6}
    assert s["teacher_models"] == {"disc-teacher": 6}
    assert s["segmenters"] == {"box_painting_test_double": 6}
    assert s["pass_rate"]["items"] == 4 and s["pass_rate"]["mean"] == 1.0
    json.dumps(s)  # machines read it: it must be plain JSON


def test_pass_rate_of_items_whose_every_trace_was_rejected(tmp_path):
    def all_wrong(records):
        for cand in records[0].candidates:
            cand.reject = Reject("teach", "answer_wrong", "said 7")
        records[1].candidates[0].reject = Reject("ground", "empty_mask")
        records[1].candidates[1].reject = Reject("teach", "answer_wrong")

    write_disc_output(tmp_path, n_items=3, mutate=all_wrong)
    s = summarize(load_output(tmp_path))
    assert s["rows"] == 0 and s["pass_rate"]["items"] == 2
    assert s["pass_rate"]["histogram"]["0.0-0.1"] == 1 and s["pass_rate"]["histogram"]["0.5-0.6"] == 1


def test_summary_of_a_single_shard(disc_output):
    manifest = json.loads((disc_output / MANIFEST_NAME).read_text())
    shard = next(e["path"] for e in manifest["shards"] if e["kind"] == "rejects")
    s = summarize(load_output(disc_output / shard))
    assert s["source"] == "shard" and s["rows"] == 0 and s["rejects"] == 1
    assert s["items"]["in_manifest"] is None and s["objects_per_row"]["mean"] is None
