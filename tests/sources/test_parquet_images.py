"""Parquet with embedded images (the CountBenchQA layout) becomes counting items that carry their image bytes."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synth.core.records import Item
from synth.sources.base import BadItem, SourceError
from synth.sources.parquet_images import ParquetOptions, iter_parquet_images
from tests.sources.imagefiles import png_bytes, rgb_array

IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def _countbench(path, images, numbers, questions=None):
    questions = questions or [f"How many dogs are in the image? ({n})" for n in numbers]
    table = pa.table(
        {
            "image": pa.array(images, type=IMAGE_STRUCT),
            "text": pa.array(["a caption"] * len(numbers)),
            "question": pa.array(questions),
            "number": pa.array(numbers, type=pa.int64()),
        }
    )
    pq.write_table(table, path)
    return path


def test_countbench_layout(tmp_path):
    data = [png_bytes(rgb_array(8 + i, 8)) for i in range(3)]
    path = _countbench(tmp_path / "test.parquet", [{"bytes": d, "path": f"{i}.png"} for i, d in enumerate(data)], [2, 5, 10])
    items = list(iter_parquet_images(path, ParquetOptions()))
    assert [type(i) for i in items] == [Item] * 3
    assert [i.answer for i in items] == ["2", "5", "10"]
    assert [i.image_bytes for i in items] == data
    assert [i.image_path for i in items] == ["0.png", "1.png", "2.png"]
    assert {i.task for i in items} == {"counting"} and items[0].source == "parquet:test.parquet"
    assert len({i.item_id for i in items}) == 3


def test_binary_image_column_and_folder_of_files(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for k in range(2):
        table = pa.table({"img": pa.array([png_bytes(rgb_array(6, 6))], pa.binary()), "q": ["How many?"], "answer": ["4"]})
        pq.write_table(table, folder / f"part-{k}.parquet")
    options = ParquetOptions(image_column="img", question_column="q", answer_column="answer")
    items = list(iter_parquet_images(folder, options))
    assert len(items) == 2 and all(type(i) is Item and i.image_bytes for i in items)
    assert items[0].item_id != items[1].item_id, "the same row index in two files gives two ids"


def test_rows_without_image_or_answer_are_bad_items(tmp_path):
    path = _countbench(tmp_path / "t.parquet", [{"bytes": None, "path": None}, {"bytes": b"x", "path": None}], [None, 3])
    first, second = iter_parquet_images(path, ParquetOptions())
    assert isinstance(first, BadItem) and "t.parquet row 1" in first.problem
    assert "'image'" in first.problem and "'number' is missing" in first.problem
    assert type(second) is Item  # undecodable bytes are the read stage's business (image_unreadable)


def test_missing_file_raises(tmp_path):
    with pytest.raises(SourceError, match="does not exist"):
        list(iter_parquet_images(tmp_path / "nope.parquet", ParquetOptions()))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match=r"no \*.parquet"):
        list(iter_parquet_images(tmp_path / "empty", ParquetOptions()))
