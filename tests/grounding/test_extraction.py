"""Finding the objects of a trace: deterministic parser and the teacher's JSON answer."""

import json

import pytest

from synth.core.records import Item
from synth.grounding.extraction import implied_phrases, load_json_answer, objects_from_json, parse_objects

COUNT_ITEM = Item("c1", "How many red discs are there?", "3", label="red disc")
SPATIAL_ITEM = Item("s1", "Which is further left, the red disc or the blue square?", "red disc", task="spatial")


def test_parser_ties_the_label_to_every_mention_and_the_answer_count():
    trace = "A red disc near the top left, another red disc in the center, a third Red Disc at the right. So 3 red discs."
    objects, reason = parse_objects(trace, COUNT_ITEM, 8)
    assert reason is None and len(objects) == 1
    obj = objects[0]
    assert obj.phrase == "red disc" and obj.expected_count == 3
    assert [trace[s:e] for s, e in obj.spans] == ["red disc", "red disc", "Red Disc", "red discs"]


def test_parser_finds_both_sides_of_a_spatial_question_without_a_count():
    trace = "The blue square is at the right; the red disc is near the left edge."
    objects, _ = parse_objects(trace, SPATIAL_ITEM, 8)
    assert [o.phrase for o in objects] == ["red disc", "blue square"]
    assert all(o.expected_count is None for o in objects)


def test_parser_reads_a_listed_spatial_label_and_how_many_questions():
    assert [p for p, _ in implied_phrases(Item("x", "Is the cup left of the laptop?", "yes", task="spatial",
                                               label="cup|laptop"))] == ["cup", "laptop"]
    assert implied_phrases(Item("x", "How many apples are in the bowl?", "2")) == [("apples", True)]


def test_parser_rejects_a_trace_that_never_names_the_object():
    assert parse_objects("I count three things. <answer>3</answer>", COUNT_ITEM, 8) == ([], "no_objects")


@pytest.mark.parametrize(
    "text",
    [
        '{"objects": []}',
        '<think>hmm</think>```json\n{"objects": []}\n```',
        'Sure! Here it is: {"objects": []} Hope that helps.',
    ],
)
def test_load_json_answer_strips_think_fences_and_chatter(text):
    assert load_json_answer(text) == ({"objects": []}, None)


def test_load_json_answer_reads_raw_control_characters_in_strings():
    # What vLLM's grammar let a model write (seen from the real server): a tab and an escape byte
    # inside a phrase, carriage returns between tokens.
    text = '{\r"objects":\r[{"phrase": "red\tcup\x1b", "count": 2, "counted": true}]\r}'
    assert load_json_answer(text) == ({"objects": [{"phrase": "red\tcup\x1b", "count": 2, "counted": True}]}, None)


def test_load_json_answer_reports_garbage():
    value, reason = load_json_answer("no braces at all")
    assert value is None and reason


def test_teacher_json_becomes_objects_with_spans_in_the_trace():
    trace = "Two cups stand left of the laptop; the cups are white."
    answer = json.dumps({"objects": [
        {"phrase": "cups", "count": 2, "counted": False},
        {"phrase": "laptop", "count": 1, "counted": False},
        {"phrase": "keyboard", "count": None, "counted": False},  # not in the trace: dropped
    ]})
    item = Item("s", "Is the cup left of the laptop?", "yes", task="spatial")
    objects, reason, _ = objects_from_json(answer, trace, item, 8)
    assert reason is None
    assert [(o.phrase, o.expected_count, len(o.spans)) for o in objects] == [("cups", 2, 2), ("laptop", 1, 1)]


def test_teacher_json_counted_object_takes_the_gold_count():
    trace = "I see red discs: one, two, three."
    answer = '{"objects": [{"phrase": "red discs", "count": 2, "counted": true}]}'
    objects, reason, _ = objects_from_json(answer, trace, COUNT_ITEM, 8)
    assert reason is None and objects[0].expected_count == 3


@pytest.mark.parametrize(
    "answer, reason",
    [("not json", "extract_unparseable"), ('{"things": []}', "extract_unparseable"),
     ('{"objects": ["cup"]}', "extract_unparseable"), ('{"objects": []}', "no_objects"),
     ('{"objects": [{"phrase": "zebra", "count": null, "counted": false}]}', "no_objects")],
)
def test_teacher_json_failures_name_a_reason(answer, reason):
    assert objects_from_json(answer, "a cup and a laptop", COUNT_ITEM, 8)[1] == reason
