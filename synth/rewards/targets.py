"""The true instances of a shard row, prepared once for scoring many texts against it.

A row is a dict as read from a rows shard (`pyarrow.Table.to_pylist()`): `objects` hold
`instances`, each with a COCO RLE `mask`, an XYXY `box` and an (x, y) `point`, all absolute
pixels of the original image. RL loops score k rollouts against one row, so the prepared targets
are cached by the row's `id` (a hash of item, config and sample, so one id means one content).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from synth.rewards.matching import RunTable, run_table
from synth.rewards.rle import rle_boundaries

_CACHE: OrderedDict[str, "Targets"] = OrderedDict()
_CACHE_SIZE = 4096  # rows in flight in one RL step are far fewer; bounds memory on long runs
_SPACES = re.compile(r"\s+")


def normalize_phrase(phrase: str) -> str:
    """Lower case, single spaces, no surrounding punctuation: how phrases are compared."""
    return _SPACES.sub(" ", phrase.strip().strip(".,;:!?\"'").lower())


@dataclass
class Targets:
    """True instances of one row, as arrays.

    Attributes:
        width: original image width in pixels.
        height: original image height in pixels.
        boxes: (N, 4) float64, XYXY pixel edges, absolute pixels of the original image.
        points: (N, 2) float64, (x, y) absolute pixels.
        boundaries: N arrays of cumulative RLE run ends (see `synth.rewards.rle`); None for an
            instance whose mask is missing, which then counts as its box.
        boundary_lists: the same as Python lists, for the plain-Python path of small tables.
        mask_sizes: N (h, w) pairs of the masks.
        instance_object: (N,) int, index of the object each instance belongs to.
        phrases: normalized phrase of each object.
        expected_counts: expected count of each object (None when unknown).
        task, answer, choices: the question's task, gold answer and answer choices.
    """

    width: int
    height: int
    boxes: np.ndarray
    points: np.ndarray
    boundaries: list[np.ndarray | None]
    boundary_lists: list[list[int] | None]
    mask_sizes: list[tuple[int, int]]
    instance_object: np.ndarray
    phrases: list[str]
    expected_counts: list[int | None]
    task: str = ""
    answer: str = ""
    choices: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def n_instances(self) -> int:
        """Number of true instances (read by every reward of every rollout, so computed once)."""
        return int(self.boxes.shape[0])

    @property
    def run_table(self) -> RunTable | None:
        """The masks' runs merged for one-lookup point hits (None: masks overlap or are missing)."""
        if "run_table" not in self.extra:
            self.extra["run_table"] = run_table(self.boundary_lists, self.mask_sizes)
        return self.extra["run_table"]

    @property
    def box_list(self) -> list[list[float]]:
        """`boxes` as Python lists (computed once)."""
        if "box_list" not in self.extra:
            self.extra["box_list"] = self.boxes.tolist()
        return self.extra["box_list"]


def targets_from_row(row: dict[str, Any]) -> Targets:
    """Prepared targets of a row, from the cache when the row's id was seen before.

    Raises:
        ValueError: the row lacks image_width/image_height or its objects are not lists of
            dicts (a wrong row is the caller's bug, unlike malformed model text).
    """
    key = row.get("id")
    if isinstance(key, str) and key:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    targets = _build(row)
    if isinstance(key, str) and key:
        _CACHE[key] = targets
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return targets


def clear_cache() -> None:
    """Forget every prepared row (for tests, or when ids are reused across outputs)."""
    _CACHE.clear()


def _build(row: dict[str, Any]) -> Targets:
    try:
        width, height = int(row["image_width"]), int(row["image_height"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"row {row.get('id')!r}: needs integer image_width and image_height ({exc})") from exc
    boxes: list[list[float]] = []
    points: list[list[float]] = []
    bounds: list[np.ndarray | None] = []
    sizes: list[tuple[int, int]] = []
    owner: list[int] = []
    phrases: list[str] = []
    expected: list[int | None] = []
    for index, obj in enumerate(row.get("objects") or []):
        if not isinstance(obj, dict):
            raise ValueError(f"row {row.get('id')!r}: objects[{index}] is {type(obj).__name__}, expected a dict")
        phrases.append(normalize_phrase(str(obj.get("phrase") or "")))
        count = obj.get("expected_count")
        expected.append(int(count) if count is not None else None)
        for inst in obj.get("instances") or []:
            boxes.append([float(v) for v in inst["box"]])
            points.append([float(v) for v in inst["point"]])
            mask = inst.get("mask")
            if mask and mask.get("counts"):
                bounds.append(rle_boundaries(mask))
                sizes.append((int(mask["size"][0]), int(mask["size"][1])))
            else:
                bounds.append(None)
                sizes.append((height, width))
            owner.append(index)
    return Targets(
        width=width,
        height=height,
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        points=np.asarray(points, dtype=np.float64).reshape(-1, 2),
        boundaries=bounds,
        boundary_lists=[None if b is None else b.tolist() for b in bounds],
        mask_sizes=sizes,
        instance_object=np.asarray(owner, dtype=np.int64),
        phrases=phrases,
        expected_counts=expected,
        task=str(row.get("task") or ""),
        answer=str(row.get("answer") or ""),
        choices=tuple(row.get("choices") or ()),
    )
