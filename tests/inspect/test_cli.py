"""`synth inspect` as a user runs it: summary, --json, --validate, --render, --report, bad paths."""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from synth.core.shards import MANIFEST_NAME


def _loose_box(record):
    record.candidates[0].objects[0].instances[0].box = [2.0, 3.0, 14.0, 14.0]


def test_summary_for_people(run_cli, disc_output):
    result = run_cli(disc_output)
    assert result.exit_code == 0, result.output
    assert re.search(r"rows\s+│\s+6", result.output)
    assert "ground/count_mismatch" in result.output and "tvg:pixel" in result.output
    assert "disc-teacher" in result.output and "box_painting_test_double" in result.output


def test_json_for_machines(run_cli, disc_output):
    result = run_cli(disc_output, "--json", "--validate")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["summary"]["rows"] == 6 and data["summary"]["rejects"] == 3
    assert data["validation"] == {"ok": True, "problems": []}


def test_validate_fails_naming_the_row_and_the_check(run_cli, broken_output):
    folder, bad_id = broken_output(_loose_box)
    result = run_cli(folder, "--validate")
    assert result.exit_code == 1
    assert f"row {bad_id}: objects[0] 'red discs' instance 0: box [2, 3, 14, 14] is not the tight box" in result.output
    data = json.loads(run_cli(folder, "--validate", "--json").stdout)
    assert data["validation"]["ok"] is False
    assert {p["where"] for p in data["validation"]["problems"]} == {f"row {bad_id}"}


def test_render_writes_pngs_of_the_samples(run_cli, disc_output, tmp_path):
    result = run_cli(disc_output, "--render", tmp_path / "renders", "--samples", 3)
    assert result.exit_code == 0, result.output
    pngs = sorted((tmp_path / "renders").glob("*.png"))
    assert len(pngs) == 3
    for png in pngs:
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width == 768 and image.height > 576


def test_report_is_written_without_network_references(run_cli, disc_output, tmp_path):
    report = tmp_path / "report.html"
    result = run_cli(disc_output, "--report", report, "--validate", "--samples", 2)
    assert result.exit_code == 0, result.output
    page = report.read_text()
    assert "<svg" in page and page.count("data:image/png;base64,") == 2
    assert not re.search(r"https?://", page)


def test_a_single_shard_can_be_inspected(run_cli, disc_output):
    shard = json.loads((disc_output / MANIFEST_NAME).read_text())["shards"][0]["path"]
    result = run_cli(disc_output / shard, "--json", "--validate")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["source"] == "shard"


def test_unreadable_inputs_exit_2_naming_the_file(run_cli, disc_output, tmp_path):
    shard = disc_output / json.loads((disc_output / MANIFEST_NAME).read_text())["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:1000])
    result = run_cli(shard)
    assert result.exit_code == 2 and f"{shard.name}: truncated" in result.output
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"a": [1]}), foreign)
    result = run_cli(foreign)
    assert result.exit_code == 2 and "foreign.parquet: not a synth shard" in result.output
    result = run_cli(tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere" in result.output
