"""The extract stage: parser and teacher backends, structured outputs, rejects."""

import json

import pytest

from synth.core.records import Candidate, Item, ItemRecord, Reject
from synth.grounding.extraction import extract_schema
from synth.stages.base import RunContext
from synth.stages.extract import ExtractConfig, ExtractStage, validate_prompts
from tests.grounding.scenes import ScriptedTeacher

ITEM = Item("c1", "How many red discs are there?", "2", label="red disc")


def _record(*traces):
    return ItemRecord(item=ITEM, candidates=[Candidate(i, t, final_answer="2", correct=True) for i, t in enumerate(traces)])


def test_parser_backend_fills_objects_and_rejects_traces_without_the_object():
    good = "A red disc at the left and another red disc at the right. <answer>2</answer>"
    record = _record(good, "Two things. <answer>2</answer>")
    record.candidates.append(Candidate(2, good, reject=Reject("teach", "answer_wrong")))
    out = ExtractStage(ExtractConfig(), RunContext())([record])
    assert out == [record]
    first, second, third = record.candidates
    assert first.objects[0].phrase == "red disc" and first.objects[0].expected_count == 2
    assert (second.reject.stage, second.reject.reason) == ("extract", "no_objects")
    assert third.reject.stage == "teach" and third.objects == [], "a rejected trace is left alone"


def test_teacher_backend_sends_the_json_schema_and_reads_the_answer():
    trace = "A red disc at the left and another red disc at the right. <answer>2</answer>"
    answer = json.dumps({"objects": [{"phrase": "red disc", "count": 2, "counted": True}]})
    teacher = ScriptedTeacher([answer, "garbage", None])
    stage = ExtractStage(ExtractConfig(backend="teacher"), RunContext(), teacher=teacher)
    stage.setup()
    record = _record(trace, trace, trace)
    stage([record])
    assert len(teacher.requests) == 3, "one request per live trace, in one generate call"
    request = teacher.requests[0]
    assert request.json_schema == extract_schema(ExtractConfig().max_objects) and request.sampling["temperature"] == 0.0
    assert trace in request.user and ITEM.question in request.user and "{trace}" not in request.user
    good, garbage, failed = record.candidates
    assert [trace[s:e] for s, e in good.objects[0].spans] == ["red disc", "red disc"]
    assert good.objects[0].expected_count == 2
    assert garbage.reject.reason == "extract_unparseable"
    assert failed.reject.reason == "extract_unparseable" and "scripted failure" in failed.reject.detail


def test_teacher_backend_without_teacher_says_how_to_provide_one():
    stage = ExtractStage(ExtractConfig(backend="teacher"), RunContext())
    with pytest.raises(ValueError, match="teacher_factory"):
        stage.setup()


def test_stage_is_cheap_to_build_and_picklable():
    import pickle

    stage = ExtractStage(ExtractConfig(backend="teacher"), RunContext())
    assert pickle.loads(pickle.dumps(stage)).config == stage.config


def test_config_refuses_unknown_backend_and_keys():
    with pytest.raises(ValueError, match="backend"):
        ExtractConfig(backend="regex")
    with pytest.raises(ValueError, match="max_object"):
        ExtractConfig(max_object=3)


def test_shipped_prompt_template_is_valid():
    assert validate_prompts(ExtractConfig(backend="teacher"), RunContext().prompts_dir) == []
