"""The offline demo set: questions with exact answers about drawn scenes and a real photograph.

Three kinds of item, mixed by `mix`:
- `counting`: a drawn scene with N shapes of one colour and kind among distractors that share the
  colour or the kind; "How many red discs are there?" -> "N". Points, boxes and masks are those
  of the N counted shapes, left to right.
- `spatial`: a drawn scene with two uniquely described shapes clearly apart along one axis (a gap
  between their boxes along it, their boxes overlapping across it, and that axis at least twice
  the other's centre offset, so exactly one relation holds and it is the dominant one). Three question styles: "Is the red disc to the left of the blue
  square?" -> yes/no; "Where is the red disc relative to the blue square?" -> left/right/above/
  below; "Is the red disc to the left or to the right of the blue square?" -> one of the choices
  ["left", "right"] (or ["above", "below"]). `label` names both, "red disc|blue square", in
  question order, which is also the order of the points, boxes and masks (the annotation
  teacher's convention).
- `coins`: scikit-image's coins photograph (24 coins) or a crop of it whose edges cut no coin;
  "How many coins are in the image?" (see `synth.sources.photos`).
Images travel as PNG bytes in `Item.image_bytes`. Item `i` depends only on (seed, i) and the
drawing options, so the set is the same on every machine and `limit` takes a prefix of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from synth.config.base import Strict
from synth.core.geometry import mask_to_rle, mask_to_xyxy, point_in_mask, rle_area, xyxy_to_xywh
from synth.core.phrases import label_names
from synth.core.records import Item
from synth.sources import photos, scenes
from synth.sources.images import encode_png

DemoKind = Literal["counting", "spatial", "coins"]
_COUNT_QUESTIONS = ("How many {}s are there?", "How many {}s are in the image?", "Count the {}s in the picture.")
_RELATIONS = {"x": ("left", "right"), "y": ("above", "below")}


class DemoOptions(Strict):
    """How many demo items, of which kinds, drawn how."""

    # 24 items keep the CPU demo to a few minutes with MobileSAM (2-4 s per image).
    items: int = Field(24, ge=1, description="number of items")
    seed: int = Field(0, description="seed of the drawings and questions (read.seed samples, this draws)")
    # Counting is the main task; spatial and the real photograph each get a share so all three show.
    mix: dict[DemoKind, float] = Field(
        default_factory=lambda: {"counting": 0.5, "spatial": 0.3, "coins": 0.2},
        description="relative share of each kind (counting, spatial, coins)",
    )
    # 512x384 is larger than SAM needs to see a 20-px shape and small enough to keep rows light.
    width: int = Field(512, ge=128, le=4096, description="width of drawn scenes in pixels")
    height: int = Field(384, ge=128, le=4096, description="height of drawn scenes in pixels")
    # 8 is about where counting benchmarks get hard for VLMs; more needs smaller shapes.
    max_count: int = Field(8, ge=1, le=30, description="most shapes counted in a counting scene")
    max_distractors: int = Field(5, ge=0, le=20, description="most other shapes in a scene")

    @field_validator("mix")
    @classmethod
    def _mix_has_weight(cls, mix: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
            raise ValueError(f"weights must be >= 0 and add up to more than 0, found {mix}")
        return mix


def kinds_in_order(options: DemoOptions) -> list[str]:
    """The kind of every item: shares by largest remainder, order shuffled by the seed."""
    total = sum(options.mix.values())
    exact = {k: options.items * w / total for k, w in options.mix.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: counts[k] - exact[k])[: options.items - sum(counts.values())]:
        counts[k] += 1
    kinds = [k for k in ("counting", "spatial", "coins") for _ in range(counts.get(k, 0))]
    np.random.default_rng([options.seed, 0x5EED]).shuffle(kinds)
    return kinds


def iter_demo(options: DemoOptions) -> Iterator[Item]:
    """The demo items, generated one at a time."""
    seen: dict[str, int] = {}
    for index, kind in enumerate(kinds_in_order(options)):
        seen[kind] = seen.get(kind, 0) + 1
        yield demo_item(options, index, kind, seen[kind] - 1)


def demo_item(options: DemoOptions, index: int, kind: str, ordinal: int = 0) -> Item:
    """Item `index` of the demo set, the `ordinal`-th of its `kind`; a pure function of its arguments."""
    rng = np.random.default_rng([options.seed, index])
    make = {"counting": _counting, "spatial": _spatial, "coins": _coins}[kind]
    image, masks, centres, fields = make(rng, options, ordinal)
    return Item(
        item_id=f"demo-{options.seed}-{index:05d}",
        image_path=f"demo/{kind}-{index:05d}.png",
        image_bytes=encode_png(image),
        masks=[mask_to_rle(m) for m in masks],
        boxes=[list(mask_to_xyxy(m)) for m in masks],
        points=[_interior_point(m, x, y) for m, (x, y) in zip(masks, centres)],
        source="demo",
        **fields,
    )


def _interior_point(mask: np.ndarray, x: float, y: float) -> list[float]:
    """The centre of the pixel holding (x, y), a point known to lie deep inside the drawn shape.

    Points come from the drawing, not from a distance transform: OpenCV's precise transform
    breaks near-ties differently from run to run, and the demo must be the same every time.
    """
    point = [float(np.floor(x)) + 0.5, float(np.floor(y)) + 0.5]
    if not point_in_mask(point, mask):
        raise ValueError(f"the demo's point {point} is not inside its shape")  # a drawing bug, not data
    return point


def _scene(rng: np.random.Generator, options: DemoOptions, specs: list, placed: list | None = None) -> list:
    for _ in range(50):
        shapes = scenes.place(rng, specs, options.width, options.height, placed)
        if shapes is not None:
            return shapes
    raise ValueError(f"could not place {len(specs)} shapes on a {options.width}x{options.height} demo image")


def _counting(rng: np.random.Generator, options: DemoOptions, ordinal: int) -> tuple:
    colour, kind = str(rng.choice(list(scenes.COLOURS))), str(rng.choice(scenes.SHAPES))
    n = int(rng.integers(1, options.max_count + 1))
    distractors = [_other(rng, (colour, kind)) for _ in range(int(rng.integers(0, options.max_distractors + 1)))]
    specs = [(colour, kind)] * n + distractors
    background = scenes.textured_background(rng, options.width, options.height)
    shapes = _scene(rng, options, specs)
    targets = sorted(shapes[:n], key=lambda s: (s.cx, s.cy))
    label = f"{colour} {kind}"
    question = str(rng.choice(_COUNT_QUESTIONS)).format(label)
    fields = dict(question=question, answer=str(n), task="counting", label=label)
    return scenes.render(background, shapes), [s.mask for s in targets], [(s.cx, s.cy) for s in targets], fields


def _other(rng: np.random.Generator, target: tuple[str, str]) -> tuple[str, str]:
    """A description other than `target`: same colour, same kind, or neither, a third each."""
    while True:
        choice = int(rng.integers(3))
        colour = target[0] if choice == 0 else str(rng.choice(list(scenes.COLOURS)))
        kind = target[1] if choice == 1 else str(rng.choice(scenes.SHAPES))
        if (colour, kind) != target:
            return colour, kind


def _spatial(rng: np.random.Generator, options: DemoOptions, ordinal: int) -> tuple:
    axis = str(rng.choice(["x", "y"]))
    a = (str(rng.choice(list(scenes.COLOURS))), str(rng.choice(scenes.SHAPES)))
    b = _other(rng, a)
    background = scenes.textured_background(rng, options.width, options.height)
    for _ in range(200):
        pair = _scene(rng, options, [a, b])
        if _clearly_apart(*pair, axis):
            break
    else:
        raise ValueError(f"could not draw two shapes apart on a {options.width}x{options.height} demo image")
    others = [o for o in (_other(rng, a) for _ in range(int(rng.integers(0, options.max_distractors + 1)))) if o != b]
    shapes = pair + _scene(rng, options, others, placed=pair)
    named = pair if rng.random() < 0.5 else pair[::-1]
    image = scenes.render(background, shapes)
    centres = [(s.cx, s.cy) for s in named]
    return image, [s.mask for s in named], centres, _spatial_question(rng, axis, *named)


def _clearly_apart(p: scenes.Shape, q: scenes.Shape, axis: str) -> bool:
    """Whether exactly one relation holds between the shapes, and plainly.

    Along `axis` the shapes' boxes are `RELATION_GAP` pixels apart; across it their boxes overlap
    (so "where is" has one answer, not "above and to the right"); and the centres' offset along
    `axis` is at least twice the offset across it, so whoever reads the scene by centres (the
    annotation teacher does) finds the same relation.
    """
    k = 0 if axis == "x" else 1
    bp, bq = mask_to_xyxy(p.mask), mask_to_xyxy(q.mask)
    gap = max(bq[k] - bp[k + 2], bp[k] - bq[k + 2])
    j = 1 - k
    overlap = min(bp[j + 2], bq[j + 2]) - max(bp[j], bq[j])
    along, across = (q.cx - p.cx, q.cy - p.cy) if axis == "x" else (q.cy - p.cy, q.cx - p.cx)
    return gap >= scenes.RELATION_GAP and overlap > 0 and abs(along) >= 2 * abs(across)


def _spatial_question(rng: np.random.Generator, axis: str, subject: scenes.Shape, other: scenes.Shape) -> dict:
    """A yes/no, open or two-option question about where `subject` is relative to `other`."""
    p, q = subject.name, other.name
    before = (subject.cx < other.cx) if axis == "x" else (subject.cy < other.cy)
    truth = _RELATIONS[axis][0 if before else 1]  # left / above, or right / below
    fields = dict(task="spatial", label=f"{p}|{q}")
    style = int(rng.integers(3))
    if style == 0:
        asked = _RELATIONS[axis][int(rng.integers(2))]
        phrase = f"to the {asked} of" if asked in ("left", "right") else asked
        return dict(fields, question=f"Is the {p} {phrase} the {q}?", answer="yes" if asked == truth else "no")
    if style == 1:
        return dict(fields, question=f"Where is the {p} relative to the {q}?", answer=truth)
    options = list(_RELATIONS[axis])
    if axis == "x":
        question = f"Is the {p} to the left or to the right of the {q}?"
    else:
        question = f"Is the {p} above or below the {q}?"
    return dict(fields, question=question, answer=truth, choices=options)


def _coins(rng: np.random.Generator, options: DemoOptions, ordinal: int) -> tuple:
    # The first coins item of a set is the whole photograph (24 coins); later ones are crops.
    if ordinal == 0:
        image, masks = photos.coins()
        image, masks = image.copy(), list(masks)
    else:
        image, masks = photos.coins_crop(rng)
    question = "How many coins are in the image?" if rng.random() < 0.5 else "How many coins are there?"
    # Coin masks are convex hulls, so their centroid lies inside them.
    centres = [(float(np.nonzero(m)[1].mean()), float(np.nonzero(m)[0].mean())) for m in masks]
    return image, masks, centres, dict(question=question, answer=str(len(masks)), task="counting", label="coin")


def demo_truth(options: DemoOptions) -> dict[str, Any]:
    """The demo set's instance masks as a COCO instances dict, the truth `synth eval` scores a
    demo run against: one image per item (`file_name` its image path), one category per object
    name ("red disc", "coin"), one annotation per drawn shape the item's question is about."""
    images, annotations, categories = [], [], {}
    for index, item in enumerate(iter_demo(options)):
        height, width = item.masks[0]["size"] if item.masks else (options.height, options.width)
        images.append({"id": index, "file_name": item.image_path, "height": height, "width": width})
        names = label_names(item.label, item.task)
        names = names if item.task == "spatial" else names * len(item.masks)  # spatial: one name per shape
        for name, rle, box in zip(names, item.masks, item.boxes):
            category = categories.setdefault(name, len(categories) + 1)
            annotations.append({
                "id": len(annotations) + 1, "image_id": index, "category_id": category, "segmentation": rle,
                "area": float(rle_area(rle)), "bbox": list(xyxy_to_xywh(box)), "iscrowd": 0,
            })
    return {"images": images, "annotations": annotations,
            "categories": [{"id": cid, "name": name} for name, cid in categories.items()]}
