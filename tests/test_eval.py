"""`synth eval`: precision/recall at mask IoU, point-in-mask rate and count accuracy against COCO truth."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from synth.core.geometry import mask_to_point, mask_to_rle, mask_to_xyxy
from synth.core.records import Candidate, GroundedObject, Instance, Item, ItemRecord
from synth.core.rows import record_to_rows
from synth.core.shards import ShardWriter
from synth.eval import evaluate, match_instances
from synth.stages.base import RunContext
from tests.grounding.scenes import disc_mask, rect_mask

W, H = 200, 100
DISCS = [disc_mask(40, 50, 20, W, H), disc_mask(100, 50, 20, W, H), disc_mask(160, 50, 20, W, H)]
SQUARE = rect_mask(10, 10, 30, 30, W, H)


def _polygon(mask):
    """A COCO polygon of a mask's outline (truth given the way COCO gives most of it)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return [(c.reshape(-1, 2) + 0.5).flatten().tolist() for c in contours]


@pytest.fixture
def truth(tmp_path):
    anns = [dict(id=i + 1, image_id=1, category_id=1, segmentation=_polygon(m), iscrowd=0) for i, m in enumerate(DISCS)]
    anns.append(dict(id=9, image_id=1, category_id=2, segmentation=mask_to_rle(SQUARE), iscrowd=0))
    data = dict(images=[dict(id=1, file_name="val/scene.png", width=W, height=H)], annotations=anns,
                categories=[dict(id=1, name="red disc"), dict(id=2, name="blue square")])
    path = tmp_path / "truth.json"
    path.write_text(json.dumps(data))
    return path


def _instance(mask):
    return Instance(mask_to_rle(mask), list(mask_to_xyxy(mask)), list(mask_to_point(mask)), 0.9)


def _output(tmp_path, objects_per_row, image_path="val/scene.png"):
    item = Item("i1", "How many red discs are there?", "3", image_path=image_path)
    cands = [Candidate(k, "the red discs", final_answer="3", correct=True, objects=objs, grounded_trace="x",
                       grounded_format="tvg:norm1000") for k, objs in enumerate(objects_per_row)]
    record = ItemRecord(item=item, image_bytes=b"png", width=W, height=H, candidates=cands)
    rows, rejects = record_to_rows(record, RunContext(config_sha256="c"), "lookup")
    out = tmp_path / "out"
    ShardWriter.open(out, "c").commit(rows, rejects, ["i1"])
    return out


def test_perfect_grounding_scores_one_everywhere(tmp_path, truth):
    objs = [GroundedObject("red discs", [(4, 13)], 3, [_instance(m) for m in DISCS], "annotation")]
    report = evaluate(_output(tmp_path, [objs]), truth)
    assert (report.precision, report.recall, report.point_in_mask_rate, report.count_accuracy) == (1, 1, 1, 1)
    assert report.rows_matched == 1 and report.objects_matched == 1


def test_missing_extra_and_sloppy_instances_lower_the_figures(tmp_path, truth):
    shifted = np.roll(DISCS[1], 15, axis=1)  # IoU with the truth ~0.4: not a match at 0.5
    far = disc_mask(100, 10, 5, W, H)  # a spurious instance outside every disc
    counted = GroundedObject("red discs", [(4, 13)], 3, [_instance(DISCS[0]), _instance(shifted), _instance(far)])
    square = GroundedObject("blue square", [(0, 1)], None, [_instance(SQUARE)])
    unknown = GroundedObject("zebra", [(0, 1)], None, [_instance(SQUARE)])
    report = evaluate(_output(tmp_path, [[counted, square, unknown]]), truth)
    assert report.true_positives == 2 and report.predictions == 4 and report.truths == 4
    assert report.precision == 0.5 and report.recall == 0.5
    assert report.points == 4 and report.points_in_mask == 3  # the shifted disc's point still lies in a disc
    assert report.count_accuracy == 1.0  # 3 instances for 3 discs, even if one is poor
    assert report.objects == 3 and report.objects_matched == 2
    assert evaluate(_output(tmp_path / "b", [[counted]]), truth, iou_threshold=0.3).true_positives == 2


def test_wrong_counts_and_unknown_images_are_reported(tmp_path, truth):
    two = GroundedObject("red disc", [(4, 12)], 3, [_instance(DISCS[0]), _instance(DISCS[1])])
    report = evaluate(_output(tmp_path, [[two]]), truth)
    assert report.count_accuracy == 0.0
    report = evaluate(_output(tmp_path / "other", [[two]], image_path="elsewhere/nothing.png"), truth)
    assert report.rows_matched == 0 and report.unmatched_images == ["elsewhere/nothing.png"]
    assert report.precision is None


def test_images_match_by_base_name(tmp_path, truth):
    objs = [GroundedObject("red discs", [(4, 13)], 3, [_instance(m) for m in DISCS])]
    assert evaluate(_output(tmp_path, [objs], image_path="/data/coco/scene.png"), truth).rows_matched == 1


def test_match_instances_is_one_to_one():
    assert match_instances([DISCS[0], DISCS[0]], [DISCS[0]], 0.5) == 1
    assert match_instances([], DISCS, 0.5) == 0


def test_cli_prints_the_figures_and_writes_json(tmp_path, truth):
    import typer

    from synth.cli.eval_cmd import eval_command

    app = typer.Typer()
    app.command()(eval_command)
    objs = [GroundedObject("red discs", [(4, 13)], 3, [_instance(m) for m in DISCS])]
    out = _output(tmp_path, [objs])
    result = CliRunner().invoke(app, [str(out), "--truth", str(truth), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "instance precision @ IoU 0.5" in result.output and "1.000" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["recall"] == 1.0
    bad = CliRunner().invoke(app, [str(out), "--truth", str(tmp_path / "missing.json")])
    assert bad.exit_code == 2 and "missing.json does not exist" in " ".join(bad.output.split())
    (tmp_path / "points.json").write_text('{"images": [], "annotations": []}')
    not_coco = CliRunner().invoke(app, [str(out), "--truth", str(tmp_path / "points.json")])
    assert not_coco.exit_code == 2 and "lacks the list(s) categories" in " ".join(not_coco.output.split())
    no_truth = CliRunner().invoke(app, [str(out)])  # a shard of no demo run: a truth file is needed
    assert no_truth.exit_code == 2 and "--truth is needed" in no_truth.output
