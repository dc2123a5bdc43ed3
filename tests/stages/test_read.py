"""The read stage end to end: a manifest full of good, odd and hostile images gives records or rejects, never a crash."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from pydantic import ValidationError

from synth.core.geometry import mask_to_rle, rle_to_mask
from synth.core.records import Item, ItemRecord
from synth.stages.base import RunContext
from synth.stages.read import ReadConfig, ReadStage, source_problems
from tests.sources.imagefiles import (
    animated_gif,
    encode,
    jpeg_with_orientation,
    png_bytes,
    png_header_only,
    rgb_array,
    write,
)


def _run(config: ReadConfig) -> list[ItemRecord]:
    stage = ReadStage(config, RunContext())
    stage.setup()
    records = [ItemRecord(item=i) for i in stage.iter_items()]
    out = stage(records)
    assert out == records, "one output per input, same order"
    return out


def _manifest(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _row(image, **extra):
    return {"image": image, "question": "How many?", "answer": "1", "id": str(image), **extra}


@pytest.fixture
def dataset(tmp_path):
    """A dataset folder with one image of every kind, a secret outside it, and a manifest naming them all."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    write(outside / "secret.png", png_bytes(rgb_array(9, 9)))
    files = {
        "good.png": png_bytes(rgb_array(40, 30)),
        "good.jpg": encode(Image.fromarray(rgb_array(40, 30)), "JPEG"),
        "rotated.jpg": jpeg_with_orientation(rgb_array(40, 20), 6),
        "cmyk.jpg": encode(Image.new("CMYK", (10, 10), (0, 255, 0, 0)), "JPEG"),
        "gray16.png": encode(Image.fromarray(np.full((6, 6), 32768, dtype=np.uint16)), "PNG"),
        "alpha.png": encode(Image.new("RGBA", (6, 6), (0, 0, 0, 0)), "PNG"),
        "gray.png": encode(Image.new("L", (6, 6), 90), "PNG"),
        "anim.gif": animated_gif([(255, 0, 0), (0, 255, 0)]),
        "truncated.png": png_bytes(rgb_array(200, 150))[:300],
        "truncated.jpg": encode(Image.fromarray(rgb_array(200, 150)), "JPEG")[:500],
        "zero.png": b"",
        "text.jpg": b"hello, I am not a picture",
        "png_named.jpg": png_bytes(rgb_array(8, 8)),
        "bomb.png": png_header_only(100_000, 100_000),
    }
    for name, content in files.items():
        write(data / "img" / name, content)
    os.symlink(outside / "secret.png", data / "img" / "link_out.png")
    os.symlink(data / "img" / "good.png", data / "img" / "link_in.png")
    os.mkfifo(data / "img" / "fifo.png")
    (data / "img" / "folder.png").mkdir()
    rows = [_row(f"img/{name}") for name in [*files, "link_out.png", "link_in.png", "fifo.png", "folder.png"]]
    rows += [_row("img/missing.png"), _row("../../etc/passwd"), _row("/etc/passwd"), _row("../outside/secret.png"),
             _row(str(data / "img" / "good.png")), {"image": "img/good.png", "question": "no answer", "id": "no-answer"}]
    _manifest(data / "items.jsonl", rows)
    return data


EXPECTED = {
    "img/good.png": None, "img/good.jpg": None, "img/rotated.jpg": None, "img/cmyk.jpg": None, "img/gray16.png": None,
    "img/alpha.png": None, "img/gray.png": None, "img/anim.gif": None, "img/png_named.jpg": None, "img/link_in.png": None,
    "img/truncated.png": "image_unreadable", "img/truncated.jpg": "image_unreadable", "img/zero.png": "image_unreadable",
    "img/text.jpg": "image_unreadable", "img/fifo.png": "image_unreadable", "img/folder.png": "image_unreadable",
    "img/bomb.png": "image_too_large", "img/link_out.png": "path_outside_root", "img/missing.png": "image_missing",
    "../../etc/passwd": "path_outside_root", "/etc/passwd": "path_outside_root", "../outside/secret.png": "path_outside_root",
    "no-answer": "bad_item",
}


def test_every_image_kind_gives_a_record_or_the_right_reject(dataset):
    records = {r.item.item_id: r for r in _run(ReadConfig(kind="manifest", path=dataset / "items.jsonl"))}
    absolute = str(dataset / "img" / "good.png")
    assert records.pop(absolute).alive, "an absolute path inside the root is fine"
    assert len(records) == len(EXPECTED)
    for item_id, reason in EXPECTED.items():
        record = records[item_id]
        found = record.reject.reason if record.reject else None
        assert found == reason, f"{item_id}: expected {reason}, got {found} ({record.reject})"
        if reason:
            assert record.reject.stage == "read" and record.reject.detail and record.image is None
        else:
            assert record.image.dtype == np.uint8 and record.image.shape == (record.height, record.width, 3)
            assert record.image_sha256 == hashlib.sha256(record.image_bytes).hexdigest()
            decoded = np.asarray(Image.open(io.BytesIO(record.image_bytes)).convert("RGB"))
            np.testing.assert_array_equal(decoded, record.image)
    last_line = len((dataset / "items.jsonl").read_text().splitlines())
    assert f"items.jsonl line {last_line}:" in records["no-answer"].reject.detail and "'answer'" in records["no-answer"].reject.detail


def test_decoded_images_are_upright_8bit_rgb(dataset):
    records = {r.item.item_id: r for r in _run(ReadConfig(kind="manifest", path=dataset / "items.jsonl"))}
    good = records["img/good.png"]
    assert good.image_bytes == (dataset / "img" / "good.png").read_bytes() and good.image_format == "png"
    assert records["img/good.jpg"].image_bytes == (dataset / "img" / "good.jpg").read_bytes()
    assert records["img/good.jpg"].image_format == "jpeg"
    rotated = records["img/rotated.jpg"]
    assert (rotated.width, rotated.height) == (20, 40) and rotated.image_format == "png"
    assert tuple(records["img/gray16.png"].image[0, 0]) == (128, 128, 128)
    assert tuple(records["img/alpha.png"].image[0, 0]) == (255, 255, 255)
    assert tuple(records["img/gray.png"].image[0, 0]) == (90, 90, 90)
    assert tuple(records["img/anim.gif"].image[0, 0]) == (255, 0, 0)
    assert records["img/png_named.jpg"].image_format == "png", "the content decides, not the extension"
    r, g, b = records["img/cmyk.jpg"].image[5, 5].astype(int)
    assert r > 230 and g < 25 and b > 230


def test_outside_root_is_read_only_when_allowed(dataset):
    config = ReadConfig(kind="manifest", path=dataset / "items.jsonl", allow_outside_root=True)
    records = {r.item.item_id: r for r in _run(config)}
    assert records["../outside/secret.png"].alive and records["img/link_out.png"].alive
    assert records["/etc/passwd"].reject.reason in ("image_unreadable", "image_missing")
    # A wider root instead of the switch: the secret's folder is inside the temporary folder.
    records = {r.item.item_id: r for r in _run(ReadConfig(kind="manifest", path=dataset / "items.jsonl", root=dataset.parent))}
    assert records["../outside/secret.png"].alive and records["../../etc/passwd"].reject.reason == "path_outside_root"


def test_a_small_max_pixels_refuses_ordinary_images(dataset):
    records = _run(ReadConfig(kind="manifest", path=dataset / "items.jsonl", max_pixels=500))
    assert next(r for r in records if r.item.item_id == "img/good.png").reject.reason == "image_too_large"
    assert next(r for r in records if r.item.item_id == "img/gray.png").alive  # 36 pixels


def test_oversize_images_are_downscaled_with_their_annotations(tmp_path):
    wide = np.zeros((40, 20_000, 3), dtype=np.uint8)
    write(tmp_path / "wide.png", png_bytes(wide))
    mask = np.zeros((40, 20_000), dtype=bool)
    mask[10:30, 5000:10000] = True
    row = _row("wide.png", points=[[7500.0, 20.0]], boxes=[[5000, 10, 10000, 30]], masks=[mask_to_rle(mask)])
    _manifest(tmp_path / "m.jsonl", [row])
    (record,) = _run(ReadConfig(kind="manifest", path=tmp_path / "m.jsonl"))
    assert (record.width, record.height) == (4096, 8) and record.image_format == "png"
    sx, sy = 4096 / 20_000, 8 / 40
    assert record.item.points == [[7500 * sx, 20 * sy]]
    assert record.item.boxes == [[5000 * sx, 10 * sy, 10000 * sx, 30 * sy]]
    small = rle_to_mask(record.item.masks[0])
    assert small.shape == (8, 4096) and small[2:6, 1030:2040].all() and not small[:, :1020].any()
    (rejected,) = _run(ReadConfig(kind="manifest", path=tmp_path / "m.jsonl", oversize="reject"))
    assert rejected.reject.reason == "image_too_large"


def test_annotations_in_another_frame_are_bad_items(tmp_path):
    # Stored 40x20 with orientation 6: upright it is 20 wide and 40 high.
    write(tmp_path / "r.jpg", jpeg_with_orientation(rgb_array(40, 20), 6))
    upright = np.zeros((40, 20), dtype=bool)
    stored = np.zeros((20, 40), dtype=bool)
    rows = [
        _row("r.jpg", id="upright", points=[[10, 35]], masks=[mask_to_rle(upright)]),
        _row("r.jpg", id="stored-frame-mask", masks=[mask_to_rle(stored)]),
        _row("r.jpg", id="point-outside", points=[[35, 10]]),
        _row("r.jpg", id="box-outside", boxes=[[0, 0, 40, 20]]),
    ]
    _manifest(tmp_path / "m.jsonl", rows)
    records = {r.item.item_id: r for r in _run(ReadConfig(kind="manifest", path=tmp_path / "m.jsonl"))}
    assert records["upright"].alive
    for name in ("stored-frame-mask", "point-outside", "box-outside"):
        assert records[name].reject.reason == "bad_item" and "upright" in records[name].reject.detail


def test_embedded_parquet_images_through_the_stage(tmp_path):
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = [{"bytes": png_bytes(rgb_array(12, 10)), "path": "x.png"}, {"bytes": b"garbage", "path": "y.png"}]
    table = pa.table({"image": pa.array(images, image_type), "question": ["How many?"] * 2, "number": [3, 4]})
    pq.write_table(table, tmp_path / "test.parquet")
    good, bad = _run(ReadConfig(kind="parquet", path=tmp_path / "test.parquet"))
    assert good.alive and (good.width, good.height) == (12, 10) and good.item.answer == "3"
    assert bad.reject.reason == "image_unreadable"


def test_demo_through_the_stage_keeps_its_png_bytes():
    records = _run(ReadConfig(kind="demo", limit=4))
    assert len(records) == 4 and all(r.alive for r in records)
    for r in records:
        assert r.image_bytes == r.item.image_bytes and r.image_format == "png"
        assert all(m["size"] == [r.height, r.width] for m in r.item.masks)


def test_coco_through_the_stage(tmp_path):
    write(tmp_path / "images" / "a.png", png_bytes(rgb_array(30, 20)))
    write(tmp_path / "images" / "b.png", png_bytes(rgb_array(20, 30)))  # the json says 30x20: wrong frame
    seg = [[2, 2, 8, 2, 8, 8, 2, 8]]
    coco = {
        "images": [{"id": 1, "file_name": "a.png", "width": 30, "height": 20}, {"id": 2, "file_name": "b.png", "width": 30, "height": 20}],
        "annotations": [{"id": k, "image_id": k, "category_id": 1, "segmentation": seg, "bbox": [2, 2, 6, 6], "iscrowd": 0} for k in (1, 2)],
        "categories": [{"id": 1, "name": "box"}],
    }
    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances.json").write_text(json.dumps(coco))
    config = ReadConfig(kind="coco", path=tmp_path / "annotations" / "instances.json", coco={"image_dir": "../images"}, root=tmp_path)
    good, wrong = _run(config)
    assert good.alive and good.item.question == "How many boxes are in the image?" and good.item.answer == "1"
    assert wrong.reject.reason == "bad_item" and "mask 0" in wrong.reject.detail


def test_items_without_an_image_are_bad_items():
    stage = ReadStage(ReadConfig(), RunContext())
    (record,) = stage([ItemRecord(item=Item(item_id="x", question="q", answer="1"))])
    assert record.reject.reason == "bad_item"


def test_limit_seed_and_shuffle_choose_the_items(dataset):
    path = dataset / "items.jsonl"
    first = [i.item_id for i in ReadStage(ReadConfig(kind="manifest", path=path, limit=3), RunContext()).iter_items()]
    assert first == ["img/good.png", "img/good.jpg", "img/rotated.jpg"]
    shuffled = ReadConfig(kind="manifest", path=path, limit=5, shuffle=True, seed=7)
    a = [i.item_id for i in ReadStage(shuffled, RunContext()).iter_items()]
    assert a == [i.item_id for i in ReadStage(shuffled, RunContext()).iter_items()] and len(a) == 5


def test_config_errors_and_pickling(tmp_path):
    with pytest.raises(ValidationError, match="needs a path"):
        ReadConfig(kind="manifest")
    with pytest.raises(ValidationError, match="extra"):
        ReadConfig(kind="demo", pth="x")
    with pytest.raises(ValidationError):
        ReadConfig(kind="hdf5", path="x")
    with pytest.raises(ValidationError):
        ReadConfig(oversize="crop")
    with pytest.raises(ValidationError, match="weights"):
        ReadConfig(demo={"mix": {"counting": 0}})
    stage = ReadStage(ReadConfig(kind="manifest", path=tmp_path / "m.jsonl"), RunContext())
    assert pickle.loads(pickle.dumps(stage)).config == stage.config


def test_source_problems_are_found_without_reading(tmp_path, dataset):
    assert source_problems(ReadConfig()) == []
    assert source_problems(ReadConfig(kind="manifest", path=dataset / "items.jsonl")) == []
    (missing,) = source_problems(ReadConfig(kind="manifest", path=tmp_path / "nope.jsonl"))
    assert missing.startswith("source.path:") and "does not exist" in missing
    (tmp_path / "m.xlsx").write_text("")
    (suffix,) = source_problems(ReadConfig(kind="manifest", path=tmp_path / "m.xlsx"))
    assert "suffix" in suffix
    (questions,) = source_problems(ReadConfig(kind="folder", path=dataset))
    assert questions.startswith("source.folder.questions:")
    (images,) = source_problems(ReadConfig(kind="coco", path=dataset / "items.jsonl", coco={"image_dir": "nowhere"}))
    assert images.startswith("source.coco.image_dir:")
