"""A folder of images with a questions file (JSONL lines or a JSON mapping) becomes items."""

from __future__ import annotations

import json

import pytest

from synth.core.records import Item
from synth.sources.base import BadItem, SourceError
from synth.sources.folder import FolderOptions, iter_folder
from tests.sources.imagefiles import png_bytes, rgb_array, write


@pytest.fixture
def folder(tmp_path):
    for name in ("a.png", "b.png", "unused.png"):
        write(tmp_path / "imgs" / name, png_bytes(rgb_array(8, 8)))
    return tmp_path / "imgs"


def test_jsonl_questions(folder):
    lines = [
        {"file": "a.png", "question": "How many?", "answer": 2},
        {"image": "a.png", "question": "What colour?", "answer": "red", "task": "vqa"},
        {"file_name": "b.png", "question": "How many?", "answer": "5", "label": "cup"},
        {"file": "b.png", "question": "No answer"},
    ]
    (folder / "questions.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    items = list(iter_folder(folder, FolderOptions()))
    assert [type(i) for i in items] == [Item, Item, Item, BadItem]
    assert [(i.image_path, i.answer, i.task) for i in items[:3]] == [("a.png", "2", "counting"), ("a.png", "red", "vqa"), ("b.png", "5", "counting")]
    assert items[2].label == "cup" and items[0].source == "folder:imgs"
    assert "questions.jsonl line 4" in items[3].problem and "'answer' is missing" in items[3].problem


def test_json_mapping_questions(folder):
    mapping = {"a.png": {"question": "How many?", "answer": "1"}, "b.png": [{"question": "Q1", "answer": "2"}, {"question": "Q2", "answer": "3"}], "c.png": "oops"}
    (folder / "q.json").write_text(json.dumps(mapping))
    items = list(iter_folder(folder, FolderOptions(questions="q.json")))
    assert [(i.image_path, i.answer) for i in items[:3]] == [("a.png", "1"), ("b.png", "2"), ("b.png", "3")]
    assert isinstance(items[3], BadItem) and "'c.png'" in items[3].problem
    assert len({i.item_id for i in items}) == 4


def test_missing_folder_or_questions_raise(tmp_path, folder):
    with pytest.raises(SourceError, match="not a folder"):
        list(iter_folder(tmp_path / "nope", FolderOptions()))
    with pytest.raises(SourceError, match="questions file"):
        list(iter_folder(folder, FolderOptions()))
