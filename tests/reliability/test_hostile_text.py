"""Teacher text that is enormous or hostile never crashes or hangs a parser.

max_tokens bounds what a real teacher returns, but a degenerate model repeats one token until that
bound, and reasoning models get budgets of tens of thousands of tokens; a parser must stay about
linear. Each 1 MB text below is built to hit one parser's weak spot (unclosed tags repeated, deep
nesting, a million digits). Every parser runs in a forked child with a deadline on the CPU time
it uses per text, so a hang fails the test instead of stalling the suite, and a busy machine does
not fail a linear parser. Small arbitrary inputs are fuzzed with hypothesis where
tests/core and tests/grounding do not already (verify/readable on every task, the extractor's
JSON on arbitrary JSON values).
"""

from __future__ import annotations

import json
import multiprocessing
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synth.core.answers import extract_final_answer, normalize_count, readable, strip_think, verify
from synth.core.formats import FORMATS, Frame, parse_groundings, strip_groundings
from synth.core.records import REJECT_REASONS, Item
from synth.grounding.extraction import load_json_answer, objects_from_json, parse_objects
from tests.fixtures.processes import cpu_seconds

MB = 1_000_000
#: CPU seconds one parser may use on one text. Linear parsers use well under 1 s on 1 MB; a
#: quadratic one needs minutes (extract_final_answer: 842 s on 1 MB of "<answer>").
DEADLINE_CPU_S = 5.0
#: Growth from a quarter of the text to all of it: ~4 for a linear parser, ~16 for a quadratic one.
#: Only judged when the full text costs over MIN_JUDGED_S, where timer noise is small.
MAX_GROWTH = 8.0
MIN_JUDGED_S = 1.0


def _repeat(unit: str, size: int) -> str:
    return unit * (size // len(unit))


def _random_text(size: int) -> str:
    rng = random.Random(8)
    alphabet = "<>[]{}()\"',:/=0123456789 \n\t\x00\ufffd\u0663 abcxyz" + "".join(map(chr, range(0x2000, 0x2010)))
    return "".join(rng.choice(alphabet) for _ in range(size))


#: Text builders by name, each given the size in characters.
ENORMOUS: dict[str, Callable[[int], str]] = {
    "digits": lambda n: "9" * n,
    "answer_of_digits": lambda n: "<answer>" + "9" * n + "</answer>",
    "deep_json": lambda n: '{"objects": ' + "[" * (n // 2) + "]" * (n // 2) + "}",
    "chained_qwen_lists": lambda n: _repeat('[{"bbox_2d": [1,2,3,4], "label": "a"},', n),
    "unclosed_point_tags": lambda n: _repeat("<point>[[1,2]", n),
    "unclosed_answer_tags": lambda n: _repeat("<answer>", n),
    "unclosed_think_tags": lambda n: _repeat("<think>", n),
    "molmo_attributes": lambda n: _repeat('<points x1="1" y1="2" ', n),
    "mixed_markup": lambda n: _repeat("<box>[[1,2,3,4]]</box> the cup [1e308, -1e308, NaN] ", n),
    "number_words": lambda n: _repeat("twenty three apples and ", n),
    "random_symbols": _random_text,
}

ITEM = Item(item_id="x", question="How many apples are there?", answer="3", label="apple")
FRAME = Frame("norm1000", 640, 480)

PARSERS: dict[str, Callable[[str], object]] = {
    "extract_final_answer": extract_final_answer,
    "strip_think": strip_think,
    "normalize_count": normalize_count,
    "verify": lambda text: (verify("counting", text, "3"), verify("spatial", text, "left", ("left", "right"))),
    "readable": lambda text: readable("counting", text, "3"),
    **{f"parse_groundings_{fmt}": (lambda text, fmt=fmt: parse_groundings(text, fmt, FRAME)) for fmt in FORMATS},
    **{f"strip_groundings_{fmt}": (lambda text, fmt=fmt: strip_groundings(text, fmt)) for fmt in FORMATS},
    "load_json_answer": load_json_answer,
    "objects_from_json": lambda text: objects_from_json(text, "three apples " * 20, ITEM, 8),
    "parse_objects": lambda text: parse_objects(text, ITEM, 8),
}

def _child(parser: str, texts: dict[tuple[str, int], str], connection) -> None:
    """Time the parser on each text at a quarter size and at full size; report as it goes."""
    for (name, size), text in texts.items():
        connection.send(("start", f"{name} ({size // 1000} kB)"))
        started = time.process_time()
        try:
            PARSERS[parser](text)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
            connection.send(("raised", f"{name}: {type(exc).__name__}: {str(exc)[:200]}"))
            return
        connection.send(("took", time.process_time() - started))
    connection.send(("done", ""))


@dataclass
class _Watch:
    parser: str
    process: Any
    connection: Any
    text: str | None = None
    started_cpu: float = 0.0
    times: list[float] = field(default_factory=list)
    problem: str | None = None
    finished: bool = False


def _step(watch: _Watch) -> None:
    # Liveness first, then the pipe: a child that reports "done" and exits in between is read as done.
    alive = watch.process.is_alive()
    while watch.connection.poll():
        kind, detail = watch.connection.recv()
        if kind == "start":
            watch.text, watch.started_cpu = detail, cpu_seconds(watch.process.pid)
        elif kind == "took":
            watch.times.append(detail)
            _judge_growth(watch)
            watch.text = None
        else:
            watch.finished, watch.problem = True, (f"raised on {detail}" if kind == "raised" else watch.problem)
            return
    if not alive:
        watch.finished, watch.problem = True, watch.problem or f"died with exit code {watch.process.exitcode}"
    elif watch.text is not None and cpu_seconds(watch.process.pid) - watch.started_cpu > DEADLINE_CPU_S:
        watch.finished, watch.problem = True, f"used more than {DEADLINE_CPU_S:.0f} CPU s on {watch.text!r}"


def _judge_growth(watch: _Watch) -> None:
    if len(watch.times) % 2 or watch.problem:
        return
    quarter, full = watch.times[-2:]
    if full > MIN_JUDGED_S and full / max(quarter, 0.01) > MAX_GROWTH:
        watch.problem = (f"grows faster than linearly on {watch.text!r}: {quarter:.2f} CPU s at a quarter "
                         f"of the text, {full:.2f} s on all of it")


@pytest.fixture(scope="module")
def enormous_results() -> dict[str, str | None]:
    """Every parser over every enormous text, in concurrent forked children watched for CPU time."""
    # Built once; forked children inherit the texts and the imported parsers without copying them.
    texts = {(name, size): make(size) for name, make in ENORMOUS.items() for size in (MB // 4, MB)}
    context = multiprocessing.get_context("fork")
    watches = []
    for parser in PARSERS:
        receive, send = context.Pipe(duplex=False)
        process = context.Process(target=_child, args=(parser, texts, send), daemon=True)
        process.start()
        watches.append(_Watch(parser, process, receive))
    wall_deadline = time.monotonic() + 600  # only a stuck machine gets here
    while not all(w.finished for w in watches) and time.monotonic() < wall_deadline:
        time.sleep(0.05)
        for watch in watches:
            if not watch.finished:
                _step(watch)
    for watch in watches:
        watch.process.kill()
        watch.process.join()
    return {w.parser: (w.problem if w.finished else "no result within 600 s") for w in watches}


@pytest.mark.slow
@pytest.mark.parametrize("parser", list(PARSERS))
def test_parser_survives_enormous_text(enormous_results, parser):
    problem = enormous_results[parser]
    assert problem is None, f"{parser} {problem}"


# --- fuzzing: small arbitrary inputs ---------------------------------------------------------------

TASKS = ("counting", "spatial", "yes_no", "choice", "open")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
extract_reasons = set(REJECT_REASONS["extract"])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(TASKS), st.one_of(st.none(), st.text()), st.text(), st.lists(st.text(max_size=30), max_size=5))
def test_verify_and_readable_never_raise(task, predicted, gold, choices):
    assert isinstance(verify(task, predicted, gold, choices), bool)
    assert isinstance(readable(task, predicted, gold, choices), bool)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.sampled_from(["{}", "```json\n{}\n```", "<think>draft</think>{}", "Sure! {} Hope it helps."]),
       st.text(max_size=200))
def test_extractor_json_of_any_shape_is_an_object_list_or_a_reason(value, wrapper, trace):
    text = wrapper.replace("{}", json.dumps({"objects": value}) if not isinstance(value, dict) else json.dumps(value))
    objects, reason, _ = objects_from_json(text, trace, ITEM, 8)
    assert (objects and reason is None) or (not objects and reason in extract_reasons)
    for obj in objects:
        assert all(0 <= start < end <= len(trace) for start, end in obj.spans)
