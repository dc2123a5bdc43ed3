"""Parquet with embedded images, as Hugging Face datasets store them (the CountBenchQA layout).

Each row holds the image itself, either as Hugging Face's `{"bytes", "path"}` struct or as a binary
column, plus a question and an answer column (CountBenchQA: `image`, `question`, `number`). A row
whose struct has no bytes but a path reads the image from that path, relative to the Parquet
file's folder. `path` may be one file or a folder whose `*.parquet` files are read in name order
(a dataset's `data/` folder). Other fields of `synth.sources.rows` (`id`, `label`, `points`, ...)
are read when columns of those names exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from pydantic import Field

from synth.config.base import Strict
from synth.core.records import Item
from synth.sources.base import SourceError, source_name
from synth.sources.manifest import iter_parquet
from synth.sources.rows import RowParser


class ParquetOptions(Strict):
    """Which columns of an embedded-image Parquet file hold what (defaults: CountBenchQA)."""

    image_column: str = Field("image", description="column with the image ({bytes, path} struct or binary)")
    question_column: str = Field("question", description="column with the question text")
    # CountBenchQA keeps its gold count in `number`; set `answer` for sets that name it so.
    answer_column: str = Field("number", description="column with the gold answer (text or number)")
    # None: ids are hashes of file, row and image path, stable as long as the file is.
    id_column: Optional[str] = Field(None, description="column with item ids; None hashes file, row and image")
    # CountBenchQA and PixMo-Count are counting sets.
    task: str = Field("counting", description="task of rows without a `task` column")


def parquet_files(path: Path) -> list[Path]:
    """The Parquet files at `path`: the file itself, or a folder's `*.parquet` files in name order."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise SourceError(f"folder {path} holds no *.parquet file")
        return files
    if not path.exists():
        raise SourceError(f"Parquet file {path} does not exist")
    return [path]


def image_base(path: Path) -> Path:
    """The folder image paths of rows without bytes are relative to."""
    return path if path.is_dir() else path.parent


def iter_parquet_images(path: Path, options: ParquetOptions) -> Iterator[Item]:
    """Items of the Parquet file(s), in file and row order; bad rows come out as `BadItem`s."""
    columns = {
        "image": options.image_column,
        "question": options.question_column,
        "answer": options.answer_column,
        "id": options.id_column,
    }
    parser = RowParser(source_name("parquet", path), options.task, columns)
    for file in parquet_files(path):
        for index, where, row in iter_parquet(file):
            # The file name joins the row index, so rows of two files never share a hashed id.
            key = f"{file.name}:{index}"
            yield parser.bad(key, where, row) if isinstance(row, str) else parser.parse(row, key, where)
