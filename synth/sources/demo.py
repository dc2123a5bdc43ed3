"""The offline demo set: questions with exact answers about drawn scenes and a real photograph.

Three kinds of item, mixed by `mix`:
- `counting`: a drawn scene with N shapes of one colour and kind among distractors that share the
  colour or the kind; "How many red discs are there?" -> "N". Points, boxes and masks are those
  of the N counted shapes, left to right.
- `spatial`: a drawn scene with two uniquely described shapes clearly apart along one axis (their
  whole extents, not only their centres); "Is the red disc left of the blue square?" -> yes/no
  (choices yes, no) or "Which is further left, the red disc or the blue square?" -> "red disc"
  (choices the two names). Points, boxes and masks are the two named shapes, in question order.
- `coins`: scikit-image's coins photograph (24 coins) or a crop of it whose edges cut no coin;
  "How many coins are in the image?" (see `synth.sources.photos`).
Images travel as PNG bytes in `Item.image_bytes`. Item `i` depends only on (seed, i) and the
drawing options, so the set is the same on every machine and `limit` takes a prefix of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from synth.config.base import Strict
from synth.core.geometry import mask_to_rle_box_point
from synth.core.records import Item
from synth.sources import photos, scenes
from synth.sources.images import encode_png

DemoKind = Literal["counting", "spatial", "coins"]
_COUNT_QUESTIONS = ("How many {}s are there?", "How many {}s are in the image?", "Count the {}s in the picture.")
_RELATIONS = {"x": ("left of", "right of"), "y": ("above", "below")}
_WHICH = {"x": ("further left", "further right"), "y": ("higher up", "lower down")}


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
    image, masks, fields = make(rng, options, ordinal)
    geometry = [mask_to_rle_box_point(m) for m in masks]
    return Item(
        item_id=f"demo-{options.seed}-{index:05d}",
        image_path=f"demo/{kind}-{index:05d}.png",
        image_bytes=encode_png(image),
        masks=[g[0] for g in geometry],
        boxes=[list(g[1]) for g in geometry],
        points=[list(g[2]) for g in geometry],
        source="demo",
        **fields,
    )


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
    return scenes.render(background, shapes), [s.mask for s in targets], fields


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
        first, second = sorted(pair, key=lambda s: s.cx if axis == "x" else s.cy)  # first: left / upper
        apart = (second.cx - first.cx) if axis == "x" else (second.cy - first.cy)
        if apart >= first.radius + second.radius + scenes.RELATION_GAP:
            break
    else:
        raise ValueError(f"could not draw two shapes apart on a {options.width}x{options.height} demo image")
    others = [o for o in (_other(rng, a) for _ in range(int(rng.integers(0, options.max_distractors + 1)))) if o != b]
    shapes = pair + _scene(rng, options, others, placed=pair)
    named = [first, second] if rng.random() < 0.5 else [second, first]
    image = scenes.render(background, shapes)
    return image, [s.mask for s in named], _spatial_question(rng, axis, named, first)


def _spatial_question(rng: np.random.Generator, axis: str, named: list, first: scenes.Shape) -> dict:
    """Yes/no or which-one question about `named` (in question order); `first` is the left/upper one."""
    p, q = named[0].name, named[1].name
    if rng.random() < 0.5:
        towards_first = bool(rng.random() < 0.5)  # "left of"/"above" or "right of"/"below"
        relation = _RELATIONS[axis][0 if towards_first else 1]
        holds = (named[0] is first) == towards_first
        question = f"Is the {p} {relation} the {q}?"
        return dict(question=question, answer="yes" if holds else "no", task="spatial", choices=["yes", "no"])
    towards_first = bool(rng.random() < 0.5)
    word = _WHICH[axis][0 if towards_first else 1]
    winner = first if towards_first else next(s for s in named if s is not first)
    question = f"Which is {word}, the {p} or the {q}?"
    return dict(question=question, answer=winner.name, task="spatial", choices=[p, q])


def _coins(rng: np.random.Generator, options: DemoOptions, ordinal: int) -> tuple:
    # The first coins item of a set is the whole photograph (24 coins); later ones are crops.
    if ordinal == 0:
        image, masks = photos.coins()
        image, masks = image.copy(), list(masks)
    else:
        image, masks = photos.coins_crop(rng)
    question = "How many coins are in the image?" if rng.random() < 0.5 else "How many coins are there?"
    return image, masks, dict(question=question, answer=str(len(masks)), task="counting", label="coin")
