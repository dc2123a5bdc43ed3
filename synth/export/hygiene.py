"""Train/eval hygiene: drop rows whose image belongs to an evaluation set, and duplicate images.

Exclusion lists name images by the sha256 of their bytes (the rows' `image_sha256`), in any of:
- a text file, one hex digest per line (blank lines and lines starting with # are skipped);
- a Parquet file with an `image_sha256` column;
- a JSON file: a list of digests, a list of objects with `image_sha256`, or an object with an
  `image_sha256` list; or JSON Lines of such objects.

Dedup: the same image (same `image_sha256`) reached through two sources (two datasets holding
one photograph) is kept for one source only, the source of the row whose `id` sorts first; rows
of other sources with that image are dropped. Rows of the kept source all stay: several traces or
several questions about one image are distinct examples, not duplicates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class HygieneReport:
    """What hygiene dropped: row ids by reason."""

    excluded: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def dropped(self) -> set[str]:
        return set(self.excluded) | set(self.duplicates)


def load_exclusions(path: str | Path) -> set[str]:
    """The image sha256 digests listed in `path` (lowercase hex).

    Raises:
        ValueError: the file holds an entry that is not a 64-digit hex sha256, or a JSON/Parquet
            layout without `image_sha256`; the message names the file and the entry.
        FileNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--exclude-images: {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        digests = _from_parquet(path)
    elif suffix in (".json", ".jsonl"):
        digests = _from_json(path)
    else:
        digests = [line.strip() for line in path.read_text().splitlines()]
        digests = [d for d in digests if d and not d.startswith("#")]
    out = set()
    for index, digest in enumerate(digests):
        value = str(digest).strip().lower()
        if not _HEX64.match(value):
            raise ValueError(f"{path}: entry {index} is {digest!r}; expected a 64-digit hex sha256")
        out.add(value)
    return out


def _from_parquet(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    if "image_sha256" not in names:
        raise ValueError(f"{path}: no image_sha256 column; found {', '.join(names)}")
    return [v for v in pq.read_table(path, columns=["image_sha256"]).column(0).to_pylist() if v]


def _from_json(path: Path) -> list[str]:
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(data, dict):
        if "image_sha256" not in data:
            raise ValueError(f"{path}: a JSON object needs an image_sha256 list; found keys {sorted(data)}")
        data = data["image_sha256"]
        data = data if isinstance(data, list) else [data]
    out = []
    for index, entry in enumerate(data):
        if isinstance(entry, dict):
            if "image_sha256" not in entry:
                raise ValueError(f"{path}: entry {index} has no image_sha256; found keys {sorted(entry)}")
            entry = entry["image_sha256"]
        out.append(entry)
    return out


def plan_hygiene(
    keys: Iterable[tuple[str, str, str]], exclude: set[str] | None = None, dedup: bool = True
) -> HygieneReport:
    """Decide which rows to drop from (id, image_sha256, source) of every row.

    Exclusion comes first: an excluded image never makes its source the owner of the image.
    """
    exclude = exclude or set()
    report = HygieneReport()
    owner: dict[str, str] = {}
    for row_id, sha, source in sorted(keys):
        if sha.lower() in exclude:
            report.excluded.append(row_id)
            continue
        if not dedup:
            continue
        kept = owner.setdefault(sha, source)
        if kept != source:
            report.duplicates.append(row_id)
    return report
