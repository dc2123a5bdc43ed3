"""Which items of a source a run reads: a seeded fraction, a shuffle, a limit.

- `fraction` < 1 keeps an item when a hash of (seed, item_id) falls below it: the same items for
  the same seed whatever the order or the limit, decided one item at a time (streaming).
- Without `shuffle`, `limit` takes the first items in source order (streaming).
- With `shuffle` and a `limit`, a seeded reservoir keeps a uniform random sample of `limit` items
  (memory for `limit` items), then shuffles it. With `shuffle` and no limit, every item is held in
  memory to be shuffled: mind sources that embed image bytes.
Bad entries are items too: they count toward the limit and end up as rejects.
"""

from __future__ import annotations

import hashlib
import itertools
import random
from collections.abc import Iterable, Iterator

from synth.core.records import Item


def keep_fraction(item_id: str, seed: int, fraction: float) -> bool:
    """Whether the item is among the `fraction` that `seed` keeps (a hash, not a random draw)."""
    digest = hashlib.sha256(f"{seed}\x00{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2**64


def sample_items(
    items: Iterable[Item], limit: int | None, seed: int, shuffle: bool, fraction: float = 1.0
) -> Iterator[Item]:
    """The items a run reads, under the rules of this module's docstring."""
    if fraction < 1.0:
        items = (it for it in items if keep_fraction(it.item_id, seed, fraction))
    if not shuffle:
        yield from itertools.islice(items, limit)
        return
    rng = random.Random(seed)
    chosen = _reservoir(items, limit, rng) if limit is not None else list(items)
    rng.shuffle(chosen)
    yield from chosen


def _reservoir(items: Iterable[Item], size: int, rng: random.Random) -> list[Item]:
    """Algorithm R: a uniform sample of `size` items from a stream of unknown length."""
    chosen: list[Item] = []
    for n, item in enumerate(items):
        if n < size:
            chosen.append(item)
        else:
            j = rng.randrange(n + 1)
            if j < size:
                chosen[j] = item
    return chosen
