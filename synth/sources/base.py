"""What every source shares: stable item ids, the marker for a bad entry, and the source error.

A source turns a dataset on disk (or the built-in demo) into a lazy stream of `Item`s. An entry
that cannot become an item (a missing field, a wrong type, a line that is not JSON) is not
dropped and does not stop the stream: it becomes a `BadItem`, which the read stage turns into a
`Reject("read", "bad_item", ...)`, so it is counted and lands in the rejects table. Only a file
that cannot be read at all raises `SourceError`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from synth.core.records import Item
from synth.errors import SynthError


class SourceError(SynthError):
    """A source cannot be read at all: the file is missing, unreadable or of the wrong layout."""


@dataclass
class BadItem(Item):
    """An entry that could not become an item; `problem` says where (file, line) and which field.

    It is still an `Item` (with the entry's id when it had a usable one) so that it travels through
    the run like any other and ends up in the rejects table.
    """

    problem: str = ""


def stable_item_id(source: str, index: int | str, image: str) -> str:
    """An id that stays the same across runs and machines for the same entry of the same source.

    `source` is the source's name (kind and file name, never an absolute path, so that a dataset
    moved to another folder keeps its ids); `index` is the entry's position; `image` its image path.
    80 bits of sha256 make a collision negligible for any dataset size synth meets.
    """
    digest = hashlib.sha256(f"{source}\x00{index}\x00{image}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:20]


def source_name(kind: str, path: Path) -> str:
    """The dataset an item came from, e.g. `manifest:items.jsonl` (the provenance `source` column)."""
    return f"{kind}:{path.name}"


def short_repr(value: object, limit: int = 60) -> str:
    """A value for an error message, cut to `limit` characters (entries can hold whole images)."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
