"""Read a teacher's final answer from its trace and check it against the gold answer.

Model text never makes these functions raise: `extract_final_answer` returns `(answer, reason)`
with exactly one of the two set, and the normalisers return None for text they cannot read.

The final answer is, in order of preference: the last `<answer>…</answer>` block, the last
`\\boxed{…}`, the text after the last "final answer:" / "answer:" / "the answer is", else the
last sentence. Think blocks (`<think>…</think>`) are removed first; a trace whose think block
never closes was cut off while thinking and has no answer.

Counting answers compare as integers (digits, number words up to the thousands, "none"/"no" as
0). A text with two different numbers in it ("3 coins in 2 rows") is ambiguous and reads as None
rather than as a guess. Spatial answers compare as one of six canonical relations (left, right,
above, below, front, behind) after mapping synonyms; yes/no answers as "yes"/"no"; multiple
choice as the index of an option, given either as its letter or as its text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
# "Final answer: 3", "Answer = 3", "the answer is 3"; not "answered" or "the answer depends".
ANSWER_CUE = re.compile(r"\b(?:final\s+answer|answer)\b\s*(?:is\b\s*:?|[:=])\s*", re.IGNORECASE)
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")

#: Reasons `extract_final_answer` gives when it finds no answer.
EXTRACT_REASONS = {
    "empty": "the trace is empty",
    "unclosed_think": "the trace stops inside a <think> block",
    "unclosed_answer": "an <answer> tag opens but never closes",
    "empty_answer": "the answer block or cue is followed by nothing",
}


def strip_think(text: str) -> str:
    """Remove think blocks; text before a lone `</think>` (template-opened thinking) goes too."""
    closing = text.lower().rfind("</think>")
    if closing < 0:
        return text.strip()
    # No block can close after the last `</think>`: searching only up to it keeps the lazy match
    # linear when a hostile text opens thousands of blocks that never close.
    head = THINK_BLOCK.sub(" ", text[: closing + len("</think>")])
    lone = head.lower().rfind("</think>")
    if lone >= 0:
        head = head[lone + len("</think>"):]
    return (head + text[closing + len("</think>"):]).strip()


def _clean(answer: str) -> str:
    answer = answer.strip().strip("*_`\"' \n\t")
    return answer.rstrip(".!;,:").strip()


def extract_final_answer(text: str | None) -> tuple[str | None, str | None]:
    """The final answer of a trace, as `(answer, None)`, or `(None, reason)` if there is none.

    `reason` is a key of `EXTRACT_REASONS`.
    """
    if not text or not text.strip():
        return None, "empty"
    if "<" in text:  # tags are rare outside ivgr-style traces; skip their regexes otherwise
        lowered = text.lower()
        if lowered.rfind("<think>") > lowered.rfind("</think>"):
            return None, "unclosed_think"
        body = strip_think(text)
        # Only up to the last `</answer>`: unclosed openers after it would make the search quadratic.
        last = body.lower().rfind("</answer>")
        blocks = ANSWER_BLOCK.findall(body, 0, last + len("</answer>")) if last >= 0 else []
        if blocks:
            answer = _clean(blocks[-1])
            return (answer, None) if answer else (None, "empty_answer")
        if "<answer>" in body.lower():
            return None, "unclosed_answer"
    else:
        body = text.strip()
    boxed = BOXED.findall(body) if "\\boxed{" in body else []
    if boxed:
        answer = _clean(boxed[-1])
        return (answer, None) if answer else (None, "empty_answer")
    # Case-insensitive matching also folds a few non-ASCII letters into "answer": only ASCII
    # text without the word can skip the search.
    cues = list(ANSWER_CUE.finditer(body)) if "answer" in body.lower() or not body.isascii() else []
    if cues:
        tail = SENTENCE_END.split(body[cues[-1].end():].strip(), maxsplit=1)[0]
        answer = _clean(tail.splitlines()[0] if tail else "")
        return (answer, None) if answer else (None, "empty_answer")
    if not body:
        return None, "empty"
    # `body` is stripped and every split eats a whole run of whitespace, so no piece is blank.
    return _clean(SENTENCE_END.split(body)[-1]), None


# --- counting ---------------------------------------------------------------------------------

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "single": 1,
}
TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}
MULTIPLIERS = {"dozen": 12, "hundred": 100, "thousand": 1000}
_UNITS_AND_TENS = {**UNITS, **TENS}
# Words that mean zero as an answer ("there are none", "no apples"); they only count when the text
# holds no other number, since "No, there are 3" means 3.
ZERO_WORDS = {"none", "no", "nothing", "zero", "nobody", "neither"}
TOKEN = re.compile(r"\d[\d,]*(?:\.\d+)?|[a-z]+", re.IGNORECASE)


def _is_number_word(token: str) -> bool:
    return token in UNITS or token in TENS or token in MULTIPLIERS


def _digits_value(token: str) -> int:
    value = float(token.replace(",", ""))
    # A fraction is never a count: -1 stands for it and makes the text unreadable as a count.
    return int(value) if value.is_integer() else -1


def _word_run_value(words: list[str]) -> int:
    """The value of consecutive number words: "two hundred and thirty four" -> 234."""
    total, current = 0, 0
    for word in words:
        if word in UNITS:
            current += UNITS[word]
        elif word in TENS:
            current += TENS[word]
        elif word == "thousand":
            total, current = total + max(current, 1) * 1000, 0
        elif word in MULTIPLIERS:
            current = max(current, 1) * MULTIPLIERS[word]
    return total + current


def _splits_run(previous: str, word: str) -> bool:
    """Whether `word` starts a new number rather than continuing the run ("two three" -> two)."""
    small = _UNITS_AND_TENS
    if word in MULTIPLIERS or previous in MULTIPLIERS:
        return False
    if previous in TENS and word in UNITS and UNITS[word] < 10:
        return False  # "twenty one"
    return previous in small and word in small


def _number_runs(tokens: list[str]) -> list[int]:
    """Numbers stated in `tokens`: digit groups, and runs of number words ("a hundred and five")."""
    values: list[int] = []
    run: list[str] = []
    words = [t.lower() for t in tokens]
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word[0].isdigit():
            if run:
                values.append(_word_run_value(run))
                run = []
            values.append(_digits_value(word))
        elif word in ("a", "an") and following in MULTIPLIERS and not run:
            run = ["one"]  # "a hundred", "a dozen"; a lone article is not the number one
        elif _is_number_word(word):
            if run and _splits_run(run[-1], word):
                values.append(_word_run_value(run))
                run = []
            run.append(word)
        elif word == "and" and run and _is_number_word(following):
            continue  # "one hundred and five"
        elif run:
            values.append(_word_run_value(run))
            run = []
    if run:
        values.append(_word_run_value(run))
    return values


def normalize_count(text: str | None) -> int | None:
    """The one count a text states, or None if it states none or several different ones.

    "3", "three", "twenty-one", "a hundred and five", "There are 4 coins.", "none", "no" and
    "there are no apples" all read; "3 coins in 2 rows" and "3.5" do not.
    """
    if text is None:
        return None
    tokens = TOKEN.findall(text.replace("-", " "))
    numbers = set(_number_runs(tokens))
    if len(numbers) == 1:
        value = numbers.pop()
        return value if value >= 0 else None
    if numbers:
        return None
    if any(token.lower() in ZERO_WORDS for token in tokens):
        return 0
    return None


# --- yes/no, multiple choice, spatial relations -------------------------------------------------

YES_WORDS = {"yes", "yeah", "yep", "true", "correct", "right"}
NO_WORDS = {"no", "nope", "false", "incorrect", "wrong", "not"}
_LETTERS = re.compile(r"[a-z]+")


def normalize_yes_no(text: str | None) -> str | None:
    """"yes" or "no" from an answer such as "Yes, it is." or "No."; None if neither or both."""
    if not text:
        return None
    words = _LETTERS.findall(text.lower())
    if not words:
        return None
    if words[0] in YES_WORDS - {"right"}:
        return "yes"
    if words[0] in NO_WORDS - {"not", "wrong"}:
        return "no"
    has_yes = any(w in {"yes", "true"} for w in words)
    has_no = any(w in {"no", "false"} for w in words)
    if has_yes != has_no:
        return "yes" if has_yes else "no"
    return None


OPTION_LETTER = re.compile(r"^\(?([A-Za-z])\)?(?:[.):\]]|\s|$)")


def _option_text(choice: str) -> str:
    """A choice without its own letter prefix ("B. red" -> "red"), lowercased, unpunctuated."""
    match = OPTION_LETTER.match(choice.strip())
    if match and len(choice.strip()) > 1 and choice.strip()[1] in ".):]":
        choice = choice.strip()[match.end():]
    return _plain(choice)


_PUNCTUATION = re.compile(r"[^\w\s]")
_ARTICLES = re.compile(r"\b(the|a|an)\b")


def _plain(text: str) -> str:
    text = _PUNCTUATION.sub(" ", text.lower())
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def choice_index(text: str | None, choices: Sequence[str]) -> int | None:
    """Which option `text` picks, by letter ("B", "(b)", "B. red") or by text ("red"); else None."""
    if not text or not choices:
        return None
    stripped = text.strip()
    options = [_option_text(c) for c in choices]
    match = OPTION_LETTER.match(stripped)
    # "B", "(b)", "B." or "B. blue": the letter decides; text after it must agree with the option.
    if match and (len(stripped) == 1 or stripped[0] == "(" or stripped[1:2] in ".):]"):
        index = ord(match.group(1).upper()) - ord("A")
        rest = _plain(stripped[match.end():])
        if 0 <= index < len(choices) and (not rest or rest == options[index]):
            return index
        return None
    plain = _plain(stripped)
    if plain in options:
        return options.index(plain)
    hits = [i for i, option in enumerate(options) if option and re.search(rf"\b{re.escape(option)}\b", plain)]
    return hits[0] if len(hits) == 1 else None


#: Canonical spatial relations and the phrases that mean them, longest first when matching.
RELATION_SYNONYMS: dict[str, tuple[str, ...]] = {
    "left": ("to the left of", "on the left of", "on the left", "left of", "left side", "leftward", "left"),
    "right": ("to the right of", "on the right of", "on the right", "right of", "right side", "rightward", "right"),
    "above": ("on top of", "higher than", "over", "atop", "above", "up"),
    "below": ("underneath", "beneath", "lower than", "under", "below", "beneath", "down"),
    "front": ("in front of", "in front", "closer to the camera", "closer than", "nearer", "closer", "before", "front"),
    "behind": ("in back of", "at the back of", "farther than", "further than", "farther", "further", "behind", "back"),
}
_RELATION_PATTERNS = sorted(
    ((phrase, relation) for relation, phrases in RELATION_SYNONYMS.items() for phrase in phrases),
    key=lambda pair: -len(pair[0]),
)
# Each phrase as a whole-word pattern, compiled once: (phrase, relation, pattern), longest first.
_RELATION_REGEXES = [
    (phrase, relation, re.compile(rf"(?<=\s){re.escape(phrase)}(?=\s)")) for phrase, relation in _RELATION_PATTERNS
]


def normalize_relation(text: str | None) -> str | None:
    """The one canonical relation a text states ("to the left of" -> "left"), else None.

    A negated relation ("not left") or two different relations read as None.
    """
    if not text:
        return None
    remaining = " " + _plain(text) + " "
    found: set[str] = set()
    for phrase, relation, pattern in _RELATION_REGEXES:
        if phrase not in remaining:  # most phrases are absent; a substring test is far cheaper
            continue
        for match in pattern.finditer(remaining):
            before = remaining[: match.start()].split()[-2:]
            if "not" in before or "isn" in before or "t" in before:
                return None
            found.add(relation)
        remaining = pattern.sub(" ", remaining)
    return found.pop() if len(found) == 1 else None


def verify(task: str, predicted: str | None, gold: str, choices: Sequence[str] = ()) -> bool:
    """Whether `predicted` (an extracted final answer) matches `gold` for a task.

    With `choices`, answers compare as option indexes. Otherwise: "counting" compares counts;
    a yes/no gold answer compares yes/no for any task; "spatial" compares relations; anything
    else compares the plain text (lowercase, no punctuation or articles).
    """
    if predicted is None:
        return False
    if choices:
        want = choice_index(gold, choices)
        return want is not None and choice_index(predicted, choices) == want
    if task == "counting":
        want_count = normalize_count(gold)
        return want_count is not None and normalize_count(predicted) == want_count
    gold_yes_no = normalize_yes_no(gold) if _plain(gold) in YES_WORDS | NO_WORDS else None
    if gold_yes_no is not None:
        return normalize_yes_no(predicted) == gold_yes_no
    if task == "spatial":
        want_relation = normalize_relation(gold)
        if want_relation is not None:
            return normalize_relation(predicted) == want_relation
    return _plain(predicted) == _plain(gold) != ""


def readable(task: str, predicted: str | None, gold: str, choices: Sequence[str] = ()) -> bool:
    """Whether `predicted` reads as an answer of the gold's kind (a count, an option, yes/no, a relation).

    `verify` is False both for a wrong answer and for one it cannot read; this tells them apart, so
    "I am not sure" is unparseable rather than wrong.
    """
    if predicted is None:
        return False
    if choices:
        return choice_index(predicted, choices) is not None
    if task == "counting":
        return normalize_count(predicted) is not None
    if _plain(gold) in YES_WORDS | NO_WORDS and normalize_yes_no(gold) is not None:
        return normalize_yes_no(predicted) is not None
    if task == "spatial" and normalize_relation(gold) is not None:
        return normalize_relation(predicted) is not None
    return bool(_plain(predicted))

