"""A folder of images with a questions file.

The questions file (default `questions.jsonl` inside the folder) maps image file names to
questions: either JSONL, one `{"file": "a.jpg", "question": ..., "answer": ...}` per line (`image`
or `file_name` may stand for `file`; an image may have several lines), or a JSON object
`{"a.jpg": {"question": ..., "answer": ...}, "b.jpg": [{...}, {...}]}`. File names are relative
to the folder. The other fields of `synth.sources.rows` (`id`, `label`, `points`, ...) may be given.
Images of the folder that no question names are skipped (and counted in the log).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from synth.config.base import Strict
from synth.core.records import Item
from synth.sources.base import SourceError, source_name
from synth.sources.manifest import Entry, iter_jsonl
from synth.sources.rows import RowParser

log = logging.getLogger(__name__)

_IMAGE_KEYS = ("file", "image", "file_name")
_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}


class FolderOptions(Strict):
    """Where the questions of an image folder are."""

    # Next to the images is where such a file is usually kept; a relative path is taken from the folder.
    questions: str = Field("questions.jsonl", description="questions file (.jsonl or .json), relative to the folder")
    # counting is what most grounded-reasoning sets ask; a per-entry `task` overrides it.
    task: str = Field("counting", description="task of entries without a `task` field")


def iter_folder(path: Path, options: FolderOptions) -> Iterator[Item]:
    """Items of the folder's questions file, in file order; bad entries come out as `BadItem`s."""
    if not path.is_dir():
        raise SourceError(f"image folder {path} does not exist or is not a folder")
    questions = path / options.questions
    if not questions.is_file():
        raise SourceError(f"questions file {questions} does not exist (set source.folder.questions)")
    parser = RowParser(source_name("folder", path), options.task)
    entries = _iter_json_mapping(questions) if questions.suffix.lower() == ".json" else iter_jsonl(questions, "questions file")
    named: set[str] = set()
    for index, where, row in entries:
        if isinstance(row, str):
            yield parser.bad(index, where, row)
            continue
        row = _with_image_key(row)
        if isinstance(row.get("image"), str):
            named.add(row["image"])
        yield parser.parse(row, index, where)
    _log_unnamed(path, named)


def _with_image_key(row: dict[str, Any]) -> dict[str, Any]:
    for key in _IMAGE_KEYS:
        if row.get(key) not in (None, ""):
            return {**row, "image": row[key]}
    return row


def _iter_json_mapping(path: Path) -> Iterator[Entry]:
    try:
        mapping = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        raise SourceError(f"cannot read questions file {path} as JSON: {exc}") from exc
    if not isinstance(mapping, dict):
        raise SourceError(f"questions file {path} must hold a JSON object {{file name: question}}, found {type(mapping).__name__}")
    index = 0
    for name, value in mapping.items():
        for k, entry in enumerate(value if isinstance(value, list) else [value]):
            index += 1
            where = f"{path.name} entry {name!r}" + (f" #{k + 1}" if isinstance(value, list) else "")
            if isinstance(entry, dict):
                yield index, where, {**entry, "file": name}
            else:
                yield index, where, f"expected an object with question and answer, found {type(entry).__name__}"


def _log_unnamed(path: Path, named: set[str]) -> None:
    images = {p.name for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES}
    unnamed = images - {Path(n).name for n in named}
    if unnamed:
        log.info("%d images in %s have no question and are skipped", len(unnamed), path)
