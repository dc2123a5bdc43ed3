"""Finding object phrases in traces: number-tolerant, word-bounded, every mention."""

import pytest

from synth.core.phrases import find_mentions, normalize_phrase, plural, same_object, singular


@pytest.mark.parametrize(
    "word, one, many",
    [("coin", "coin", "coins"), ("box", "box", "boxes"), ("berry", "berry", "berries"), ("day", "day", "days"),
     ("person", "person", "people"), ("knife", "knife", "knives"), ("sheep", "sheep", "sheep"),
     ("glass", "glass", "glasses"), ("horse", "horse", "horses")],
)
def test_singular_and_plural_round_trip(word, one, many):
    assert singular(many) == one
    assert plural(one) == many


def test_find_mentions_returns_every_mention_in_either_number():
    trace = "The coins: one coin at left, two Coins at right. A coinage is not a coin-purse."
    spans = find_mentions(trace, "coin")
    assert [trace[s:e] for s, e in spans] == ["coins", "coin", "Coins"]


def test_find_mentions_of_multiword_phrase_ignores_determiners():
    trace = "I see a red disc, then two red  discs; the red square is not one."
    spans = find_mentions(trace, "the red discs")
    assert [trace[s:e] for s, e in spans] == ["red disc", "red  discs"]


def test_find_mentions_of_empty_phrase_is_empty():
    assert find_mentions("anything", "the") == []


def test_normalize_phrase_drops_determiners_and_number():
    assert normalize_phrase("The Red Apples") == "red apple"


@pytest.mark.parametrize(
    "a, b, same",
    [("coins", "coin", True), ("red coin", "coins", True), ("coin", "coin purse", False),
     ("the blue square", "blue squares", True), ("red disc", "blue disc", False), ("", "disc", False)],
)
def test_same_object(a, b, same):
    assert same_object(a, b) is same
