"""limit, shuffle, seed and sample_fraction choose the same items every time, and the right number of them."""

from __future__ import annotations

from synth.core.records import Item
from synth.sources.sampling import sample_items


def _items(n: int) -> list[Item]:
    return [Item(item_id=f"i{k}", question="q", answer="1") for k in range(n)]


def _ids(items) -> list[str]:
    return [i.item_id for i in items]


def test_limit_without_shuffle_is_a_prefix():
    assert _ids(sample_items(_items(10), 3, 0, False)) == ["i0", "i1", "i2"]
    assert len(_ids(sample_items(_items(10), None, 0, False))) == 10


def test_limit_reads_no_further_than_needed():
    def endless():
        k = 0
        while True:
            yield Item(item_id=f"i{k}", question="q", answer="1")
            k += 1

    assert _ids(sample_items(endless(), 2, 0, False)) == ["i0", "i1"]


def test_shuffle_is_seeded_and_samples_uniformly():
    a = _ids(sample_items(_items(50), 10, 1, True))
    assert a == _ids(sample_items(_items(50), 10, 1, True))
    assert a != _ids(sample_items(_items(50), 10, 2, True))
    assert len(set(a)) == 10 and a != sorted(a, key=lambda s: int(s[1:]))
    # Over many seeds every item is picked about equally often (10 of 50 -> 20%).
    counts = {i: 0 for i in _ids(_items(50))}
    for seed in range(400):
        for item_id in _ids(sample_items(_items(50), 10, seed, True)):
            counts[item_id] += 1
    assert min(counts.values()) > 40 and max(counts.values()) < 130  # expected 80 each
    whole = _ids(sample_items(_items(20), None, 3, True))
    assert sorted(whole) == sorted(_ids(_items(20)))


def test_fraction_keeps_the_same_items_whatever_the_order():
    items = _items(1000)
    kept = set(_ids(sample_items(items, None, 5, False, 0.25)))
    assert 200 < len(kept) < 300
    assert kept == set(_ids(sample_items(list(reversed(items)), None, 5, False, 0.25)))
    assert kept != set(_ids(sample_items(items, None, 6, False, 0.25)))
