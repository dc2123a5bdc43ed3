"""Answer extraction and verification on tables of realistic teacher outputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synth.core.answers import (
    EXTRACT_REASONS,
    choice_index,
    extract_final_answer,
    normalize_count,
    normalize_relation,
    normalize_yes_no,
    readable,
    strip_think,
    verify,
)

# (trace as a teacher wrote it, gold, expected (answer, reason), expected verify for counting)
COUNTING_TRACES = [
    ("I can see a coin near the top left, another near the centre and a third at the bottom "
     "right. That makes 3 coins.\n<answer>3</answer>", "3", ("3", None), True),
    ("Scanning left to right I count four apples on the plate.\n<answer>four</answer>", "4",
     ("four", None), True),
    ("There are two dogs on the sofa and one on the floor.<answer> 3 </answer>", "3", ("3", None), True),
    ("I count the birds: 1, 2, 3, 4, 5.\n<answer>5</answer>", "6", ("5", None), False),
    ("<think>The user wants the number of cars. I see a red one and a blue one.</think>"
     "There are two cars.<answer>2</answer>", "2", ("2", None), True),
    ("<think>Let me count. One, two, three... wait, the third is a shadow.</think>\n"
     "Final answer: 2", "2", ("2", None), True),
    ("Let me count them. The first is at the left, the second", "2", None, False),  # truncated mid-trace
    ("<think>Counting the cups one by one, the first cup is", "2", (None, "unclosed_think"), False),
    ("The cups are arranged in a row. <answer>", "2", (None, "unclosed_answer"), False),
    ("", "2", (None, "empty"), False),
    ("There are no zebras in this picture.<answer>none</answer>", "0", ("none", None), True),
    ("There are no zebras in this picture.", "0", ("There are no zebras in this picture", None), True),
    ("So the total is \\boxed{12}.", "12", ("12", None), True),
    ("The answer is twenty-one.", "21", ("twenty-one", None), True),
    ("I see 3 coins in 2 rows.", "3", ("I see 3 coins in 2 rows", None), False),  # ambiguous
    ("**Answer:** 7", "7", ("7", None), True),
    ("Reasoning done.</think>There are 9 sheep.<answer>9</answer>", "9", ("9", None), True),
    ("<answer>3</answer> Actually, looking again: <answer>4</answer>", "4", ("4", None), True),
    ("I answered this before. There are 5 ducks.", "5", ("There are 5 ducks", None), True),
    ("The answer depends on the shadow, but I count 6 cups.", "6",
     ("The answer depends on the shadow, but I count 6 cups", None), True),
    ("Final Answer = 8", "8", ("8", None), True),
]


@pytest.mark.parametrize("trace,gold,expected,correct", COUNTING_TRACES)
def test_counting_traces_extract_and_verify(trace, gold, expected, correct):
    answer, reason = extract_final_answer(trace)
    if expected is not None:
        assert (answer, reason) == expected
    assert (answer is None) != (reason is None)
    assert reason is None or reason in EXTRACT_REASONS
    assert verify("counting", answer, gold) is correct


@pytest.mark.parametrize(
    "text,count",
    [
        ("3", 3), ("03", 3), ("three", 3), ("Three.", 3), ("twenty", 20), ("twenty-one", 21),
        ("twenty one", 21), ("ninety nine", 99), ("a hundred", 100), ("one hundred and five", 105),
        ("two hundred thirty-four", 234), ("a dozen", 12), ("1,000", 1000), ("two thousand", 2000),
        ("There are 4 coins.", 4), ("I count eleven birds", 11), ("a single apple", 1),
        ("none", 0), ("None.", 0), ("no", 0), ("zero", 0), ("there are none", 0),
        ("There are no apples", 0), ("No, there are 3", 3), ("fifteen", 15),
        ("3 coins in 2 rows", None), ("3.5", None), ("many", None), ("", None), (None, None),
        ("a cat", None), ("two three", None), ("3.0", 3),
    ],
)
def test_normalize_count(text, count):
    assert normalize_count(text) == count


@pytest.mark.parametrize(
    "text,expected",
    [("Yes", "yes"), ("yes.", "yes"), ("Yes, it is.", "yes"), ("No", "no"), ("no, it is not", "no"),
     ("True", "yes"), ("false", "no"), ("maybe", None), ("", None),
     ("The answer is yes", "yes")],
)
def test_normalize_yes_no(text, expected):
    assert normalize_yes_no(text) == expected


CHOICES = ["A. red", "B. blue", "C. green"]


@pytest.mark.parametrize(
    "text,index",
    [("B", 1), ("(b)", 1), ("B.", 1), ("B. blue", 1), ("blue", 1), ("The blue one", 1),
     ("C) green", 2), ("D", None), ("purple", None), ("A. blue", None), ("", None)],
)
def test_choice_index(text, index):
    assert choice_index(text, CHOICES) == index


def test_choice_index_with_plain_options():
    assert choice_index("a", ["left", "right"]) == 0
    assert choice_index("right", ["left", "right"]) == 1
    assert choice_index("It is on the right.", ["left", "right"]) == 1


@pytest.mark.parametrize(
    "text,relation",
    [("left", "left"), ("to the left of", "left"), ("The cup is to the left of the laptop.", "left"),
     ("on the right", "right"), ("above", "above"), ("on top of", "above"), ("under", "below"),
     ("beneath the table", "below"), ("in front of", "front"), ("closer to the camera", "front"),
     ("behind", "behind"), ("farther away", "behind"), ("not left", None),
     ("left and above", None), ("blue", None), ("", None)],
)
def test_normalize_relation(text, relation):
    assert normalize_relation(text) == relation


@pytest.mark.parametrize(
    "task,predicted,gold,choices,expected",
    [
        ("spatial", "left", "to the left of", (), True),
        ("spatial", "The mug is on the left side.", "left", (), True),
        ("spatial", "right", "left", (), False),
        ("spatial", "under", "below", (), True),
        ("spatial", "Yes", "yes", (), True),
        ("spatial", "No, it is to the right.", "yes", (), False),
        ("spatial", "B", "right", ("left", "right"), True),
        ("multiple_choice", "B. blue", "B", CHOICES, True),
        ("multiple_choice", "blue", "B", CHOICES, True),
        ("multiple_choice", "A", "B", CHOICES, False),
        ("yes_no", "yes", "Yes", (), True),
        ("yes_no", "no", "Yes", (), False),
        ("counting", None, "3", (), False),
        ("counting", "three", "3", (), True),
        ("counting", "4", "3", (), False),
        ("caption", "A red Car", "a red car.", (), True),
        ("counting", "3", "C", ("1", "2", "3"), True),
    ],
)
def test_verify_table(task, predicted, gold, choices, expected):
    assert verify(task, predicted, gold, choices) is expected


def test_strip_think_removes_blocks_and_template_opened_thinking():
    assert strip_think("<think>a</think>b<think>c</think>d") == "b d"
    assert strip_think("thinking without the opening tag</think>The answer") == "The answer"
    assert strip_think("plain") == "plain"


@pytest.mark.parametrize(
    "text",
    ["<answer><answer>", "</answer>3<answer>", "\\boxed{", "answer:", "<think></think>", "...",
     "\x00\x01", "<answer></answer>", "Final answer:   ."],
)
def test_extract_never_raises_on_garbage(text):
    answer, reason = extract_final_answer(text)
    assert (answer is None) != (reason is None)


@pytest.mark.parametrize(
    "task,predicted,gold,choices,expected",
    [("counting", "I am not sure what the image shows", "3", (), False),
     ("counting", "5", "3", (), True),
     ("counting", "3 coins in 2 rows", "3", (), False),
     ("spatial", "maybe", "yes", (), False), ("spatial", "no", "yes", (), True),
     ("spatial", "somewhere", "left", (), False), ("spatial", "above", "left", (), True),
     ("multiple_choice", "E", "A", CHOICES, False), ("multiple_choice", "C", "A", CHOICES, True),
     ("counting", None, "3", (), False)],
)
def test_readable_tells_unparseable_from_wrong(task, predicted, gold, choices, expected):
    assert readable(task, predicted, gold, choices) is expected


_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _spell(n: int) -> str:
    """English words for 0 <= n < 10,000 ("two thousand three hundred and forty-one")."""
    parts = []
    if n >= 1000:
        parts.append(f"{_ONES[n // 1000]} thousand")
        n %= 1000
    if n >= 100:
        parts.append(f"{_ONES[n // 100]} hundred")
        n %= 100
        if n:
            parts.append("and")
    if n >= 20:
        parts.append(_TENS[n // 10] + (f"-{_ONES[n % 10]}" if n % 10 else ""))
    elif n or not parts:
        parts.append(_ONES[n])
    return " ".join(parts)


@given(st.integers(min_value=0, max_value=9999))
def test_spelled_numbers_read_back(n):
    assert normalize_count(_spell(n)) == n
    assert normalize_count(f"There are {_spell(n)} birds in the picture.") == n
    assert normalize_count(f"<answer>{n}</answer>".replace("<answer>", "").replace("</answer>", "")) == n
