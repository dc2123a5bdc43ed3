"""Every export target and file type from a real output folder; veRL reward round trip; the CLI."""

import hashlib
import json

import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from synth.cli.export_cmd import export_command
from synth.core.formats import parse_groundings
from synth.export import TARGETS, RenderOptions, export_output
from synth.rewards import clear_cache
from synth.rewards.parsed import frame_for
from synth.rewards.verl import compute_score, easyr1_compute_score
from tests.export.conftest import EVAL_IMAGE, output_rows


def read_records(path):
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
def test_every_target_writes_one_record_per_kept_row(output_dir, tmp_path, target, file_type):
    report = export_output(output_dir, tmp_path / "x", target, RenderOptions("tvg", "norm1000"), file_type)
    records = read_records(tmp_path / "x" / f"{target}.{file_type}")
    # r4 holds r3's image through another source: dropped; the other five stay.
    assert [r["id"] for r in records] == ["r1-discs", "r2-boxes", "r3-shared-a", "r5-shared-a2", "r6-eval"]
    assert (report.rows_read, report.duplicates, report.written) == (6, 1, 5)
    image = records[0]["images"][0]
    if file_type == "jsonl":
        data = (tmp_path / "x" / image).read_bytes()
        assert image == f"images/{hashlib.sha256(data).hexdigest()}.png"
    else:
        assert hashlib.sha256(image["bytes"]).hexdigest() == output_rows()[0]["image_sha256"]
    saved = json.loads((tmp_path / "x" / "export.json").read_text())
    assert saved["report"]["written"] == 5 and saved["options"]["grounding"] == "tvg"


def test_trl_and_sharegpt_layouts(output_dir, tmp_path):
    export_output(output_dir, tmp_path / "trl", "trl", RenderOptions("qwen", "qwen-resized"))
    trl = read_records(tmp_path / "trl" / "trl.jsonl")[0]
    user, assistant = trl["messages"]
    assert user["content"] == [{"type": "image"}, {"type": "text", "text": "How many discs are there?"}]
    assert '"point_2d"' in assistant["content"][0]["text"]
    export_output(output_dir, tmp_path / "sg", "sharegpt", RenderOptions("molmo", "norm100"),
                  instruction="Point at what you count.")
    sg = read_records(tmp_path / "sg" / "sharegpt.jsonl")[0]
    assert sg["conversations"][0] == {"from": "human", "value": "<image>How many discs are there?\nPoint at what you count."}
    assert sg["conversations"][1]["value"].count("<points ") == 1
    info = json.loads((tmp_path / "sg" / "dataset_info.json").read_text())
    assert info["synth"]["file_name"] == "sharegpt.jsonl" and info["synth"]["formatting"] == "sharegpt"


def test_exclude_images_drops_evaluation_images_and_reports_them(output_dir, tmp_path):
    listing = tmp_path / "eval.txt"
    listing.write_text(hashlib.sha256(EVAL_IMAGE).hexdigest() + "\n")
    report = export_output(output_dir, tmp_path / "x", "dual", exclude_images=listing, dedup=False)
    ids = [r["id"] for r in read_records(tmp_path / "x" / "dual.jsonl")]
    assert "r6-eval" not in ids and "r4-shared-b" in ids
    assert (report.excluded, report.duplicates, report.written) == (1, 0, 5)


def test_dual_pairs_share_the_reasoning(output_dir, tmp_path):
    export_output(output_dir, tmp_path / "x", "dual", RenderOptions("ivgr", "qwen-resized"))
    pair = read_records(tmp_path / "x" / "dual.jsonl")[1]
    assert "<box>" in pair["grounded"] and "<box>" not in pair["text_only"]
    assert pair["text_only"] == "<think>The cup is left of the plate, so the answer is left.</think><answer>left</answer>"


@pytest.mark.parametrize("grounding, frame", [("tvg", "norm1000"), ("ivgr", "qwen-resized"), ("molmo", "norm100"),
                                              ("qwen", "pixel"), ("tvg", "norm1")])
def test_round_trip_export_parse_same_geometry(output_dir, tmp_path, grounding, frame):
    export_output(output_dir, tmp_path / "x", "coords", RenderOptions(grounding, frame), "parquet")
    rows = {r["id"]: r for r in output_rows()}
    for record in read_records(tmp_path / "x" / "coords.parquet"):
        row = rows[record["id"]]
        f = frame_for(frame, row["image_width"], row["image_height"])
        groundings, reason = parse_groundings(record["text"], grounding, f)
        assert reason is None
        parsed = [c for g in groundings for c in g.coords]
        assert len(parsed) == len(record["coord_values_px"])
        for (x, *rest), exact, start, end in zip(parsed, record["coord_values_px"], record["coord_start"],
                                                 record["coord_end"]):
            assert abs(x - exact[0]) <= 0.5 * row["image_width"] / f.extent[0] + 1e-6  # within rounding
            assert start < end <= len(record["text"])


def test_verl_rows_score_their_own_reference_as_correct(output_dir, tmp_path):
    export_output(output_dir, tmp_path / "x", "verl", RenderOptions("ivgr", "qwen-resized"))
    records = read_records(tmp_path / "x" / "verl.parquet")
    clear_cache()
    record = records[1]  # the spatial row: boxes
    assert record["problem"].startswith("<image>") and record["reward_model"]["ground_truth"] == "left"
    assert len(json.loads(record["boxes"])) == 2 and len(json.loads(record["masks"])) == 2
    scores = compute_score(record["data_source"], record["reference"], "left", record["extra_info"])
    assert scores["answer"] == scores["format"] == 1.0 and scores["box"] > 0.9
    assert scores["score"] == pytest.approx(1.0 + 0.5 + scores["box"])
    counting = compute_score(records[0]["data_source"], records[0]["reference"], "3", records[0]["extra_info"])
    assert counting["box"] > 0.9 and counting["score"] == pytest.approx(1.5 + counting["box"])  # ivgr: boxes
    wrong = compute_score(record["data_source"], "<think>no idea</think><answer>right</answer>", "left",
                          record["extra_info"])
    assert wrong["score"] == 0.5 * wrong["format"] == 0.0
    batch = easyr1_compute_score([{"response": record["reference"], "ground_truth": record["targets"]}])
    assert batch[0]["score"] == scores["score"]


def test_unrenderable_rows_are_skipped_and_named(tmp_path):
    from synth.core.shards import ShardWriter
    from tests.rewards.factory import three_discs_row

    bad = three_discs_row("bad")
    bad["objects"][0]["spans"] = [{"start": 500, "end": 510}]  # beyond the trace
    ShardWriter(tmp_path / "out", "c" * 64).commit([bad, three_discs_row("good")], [], ["bad", "good"])
    report = export_output(tmp_path / "out", tmp_path / "x", "trl")
    assert (report.render_failed, report.written) == (1, 1)
    assert report.render_failures[0].startswith("bad: object 'red discs': span (500, 510)")


def cli():
    app = typer.Typer()
    app.command()(export_command)
    app.command("other")(lambda: None)  # two commands, so the export one is addressed by name as in synth
    return app


def test_cli_exports_and_reports(output_dir, tmp_path):
    result = CliRunner().invoke(cli(), ["export-command", str(output_dir), "--to", str(tmp_path / "x"),
                                        "--format", "sharegpt", "--grounding", "qwen", "--frame", "qwen-resized"])
    assert result.exit_code == 0, result.output
    assert "exported 5 of 6 rows" in result.output and "1 duplicate images" in result.output
    assert (tmp_path / "x" / "sharegpt.jsonl").exists()


def test_cli_refuses_a_bad_frame_with_the_choices(output_dir, tmp_path):
    result = CliRunner().invoke(cli(), ["export-command", str(output_dir), "--to", str(tmp_path / "x"),
                                        "--frame", "norm10"])
    assert result.exit_code == 2
    assert "--frame: unknown 'norm10'; choices: pixel, norm1, norm100, norm1000, qwen-resized" in result.output
