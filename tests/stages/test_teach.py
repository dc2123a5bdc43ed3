"""The teach stage: requests from prompt files, rejection sampling, rejects, pass rates.

`ScriptedTeacher` plays recorded teacher outputs; the real server is tested in
tests/integration/test_vllm_real.py.
"""

from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import pytest
from pydantic import ValidationError

from synth.adapters.base import Completion, TeacherRequest, TeacherResponse
from synth.core.records import REJECT_REASONS, Item, ItemRecord, Reject
from synth.stages.base import RunContext
from synth.stages.teach import TeachConfig, TeachStage, fill_template, item_seed, render_choices, validate_prompts

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


class ScriptedTeacher:
    """A test double that answers each request with recorded completions (by request_id)."""

    name = "scripted"
    model_name = "scripted-vlm"

    def __init__(self, outputs: dict[str, list[tuple[str, str]] | TeacherResponse]):
        self.outputs = outputs
        self.requests: list[TeacherRequest] = []
        self.calls = 0

    def setup(self):
        pass

    def close(self):
        pass

    def generate(self, requests):
        self.calls += 1
        self.requests.extend(requests)
        responses = []
        for request in requests:
            out = self.outputs[request.request_id]
            if isinstance(out, TeacherResponse):
                responses.append(out)
            else:
                completions = [Completion(text, finish, len(text.split())) for text, finish in out]
                responses.append(TeacherResponse(request.request_id, completions, prompt_tokens=42))
        return responses


def record(item_id="i1", question="How many coins are there?", answer="3", task="counting", **kw):
    return ItemRecord(item=Item(item_id, question, answer, task=task, **kw), image_bytes=b"png-bytes",
                      width=64, height=48)


def run(outputs, records, **config):
    stage = TeachStage(TeachConfig(base_url="http://unused/v1", **config), RunContext(prompts_dir=PROMPTS),
                       teacher=ScriptedTeacher(outputs))
    stage.setup()
    return stage, stage(records)


RECORDED = [
    ("I see a coin near the top left, another in the center and one at the bottom. <answer>3</answer>", "stop"),
    ("<think>Let me count carefully: one, two.</think>There are two coins.<answer>2</answer>", "stop"),
    ("I can see a coin at the left, a coin at the right, and a third coin in the middle. So, three.", "stop"),
    ("The coins are arranged in a row from left to right, the first one is", "length"),
    ("I am not sure what the image shows.", "stop"),
    ("<think>The first coin is near the top. The second one</think>\n<answer>three</answer>", "stop"),
]


def test_rejection_sampling_marks_each_trace():
    _, [out] = run({"i1": RECORDED}, [record()])
    reasons = [c.reject.reason if c.reject else None for c in out.candidates]
    assert reasons == [None, "answer_wrong", None, "truncated", "answer_unparseable", None]
    answers = [c.final_answer for c in out.candidates]
    assert answers[:3] == ["3", "2", "So, three"] and answers[5] == "three"
    assert "cannot read 'I am not sure" in out.candidates[4].reject.detail
    assert out.teacher.n_sampled == 6 and out.teacher.n_correct == 3
    assert [c.sample_index for c in out.candidates] == list(range(6))
    assert out.candidates[3].finish_reason == "length" and out.candidates[0].prompt_tokens == 42
    assert "gold '3'" in out.candidates[1].reject.detail
    assert out.alive


def test_think_blocks_stripped_or_kept():
    _, [stripped] = run({"i1": RECORDED}, [record()])
    _, [kept] = run({"i1": RECORDED}, [record()], think="keep")
    assert "<think>" not in stripped.candidates[1].text and stripped.candidates[1].text.startswith("There are")
    assert kept.candidates[1].text.startswith("<think>Let me count")


@pytest.mark.parametrize("keep,alive", [("all", [0, 2, 5]), ("first", [0]), (2, [0, 2])])
def test_keep_limit(keep, alive):
    _, [out] = run({"i1": RECORDED}, [record()], keep=keep)
    assert [c.sample_index for c in out.candidates if c.alive] == alive
    assert all(c.reject.reason == "over_keep_limit" for c in out.candidates if c.correct and not c.alive)
    assert out.teacher.n_correct == 3  # the pass rate counts every correct trace, kept or not


@pytest.mark.parametrize("kind,reason", [("timeout", "teacher_timeout"), ("error", "teacher_error"),
                                         ("no_annotations", "no_annotations")])
def test_request_error_rejects_the_record(kind, reason):
    failed = TeacherResponse("i1", error="no answer within 600 s", error_kind=kind)
    _, [out, other] = run({"i1": failed, "i2": RECORDED[:1]}, [record(), record("i2")])
    assert out.reject == Reject("teach", reason, "no answer within 600 s")
    assert out.candidates == [] and other.alive and other.candidates[0].correct


def test_batch_keeps_order_skips_dead_records_and_calls_teacher_once():
    dead = record("dead")
    dead.reject = Reject("read", "image_missing")
    records = [record("a"), dead, record("b", answer="2")]
    stage, out = run({"a": RECORDED[:1], "b": RECORDED[1:2]}, records)
    assert [r.item.item_id for r in out] == ["a", "dead", "b"]
    assert stage.teacher.calls == 1 and [r.request_id for r in stage.teacher.requests] == ["a", "b"]
    assert out[1].candidates == [] and out[1].reject.stage == "read"
    assert out[0].candidates[0].correct and out[2].candidates[0].correct


def test_request_is_built_from_the_prompt_files():
    stage, _ = run({"i1": RECORDED[:1]}, [record(label="coin")], k=5, temperature=0.3, seed=7)
    [request] = stage.teacher.requests
    template = (PROMPTS / "counting_trace.txt").read_text()
    system = (PROMPTS / "system.txt").read_text().strip()
    assert request.system == system
    assert request.user.startswith("How many coins are there?") and "every coin in the image" in request.user
    assert "{" not in request.user.replace("{question}", "")
    assert request.n == 5 and request.image_bytes == b"png-bytes"
    assert request.sampling == {"temperature": 0.3, "top_p": 0.95, "max_tokens": 1024, "seed": item_seed(7, "i1")}
    expected_sha = hashlib.sha256(f"{system}\n\0\n{template}".encode()).hexdigest()
    _, [out] = run({"i1": RECORDED[:1]}, [record(label="coin")])
    assert out.teacher.prompt_sha256 == expected_sha and out.teacher.model == "scripted-vlm"
    assert out.teacher.backend == "vllm_server"


def test_spatial_request_renders_choices_and_both_labels():
    spatial = record("s", "Where is the cup relative to the laptop?", "A", task="spatial",
                     label="cup|laptop", choices=["left", "right"])
    stage, [out] = run({"s": [("The cup is on the left of the laptop. <answer>A</answer>", "stop")]}, [spatial])
    user = stage.teacher.requests[0].user
    assert "Options:\nA. left\nB. right" in user and "(cup and laptop)" in user
    assert out.candidates[0].correct


def test_item_seed_is_stable_and_spread():
    assert item_seed(0, "a") == item_seed(0, "a") != item_seed(0, "b") != item_seed(1, "a")


def test_unknown_task_rejects_the_record_naming_the_tasks():
    _, [out] = run({}, [record(task="ocr")])
    assert out.reject.reason == "teacher_error" and "'ocr'" in out.reject.detail and "counting" in out.reject.detail


def test_validate_prompts_reports_problems(tmp_path):
    (tmp_path / "system.txt").write_text("sys")
    (tmp_path / "counting_trace.txt").write_text("Count {label}. {answer}")
    problems = validate_prompts(TeachConfig(model="m"), tmp_path)
    assert any("unknown placeholder(s) answer" in p for p in problems)
    assert any("teacher.prompts.counting" in p and "lacks the {question}" in p for p in problems)
    assert any("teacher.prompts.spatial" in p and "does not exist" in p for p in problems)
    assert validate_prompts(TeachConfig(model="m"), PROMPTS) == []
    assert any("teacher.base_url" in p for p in validate_prompts(TeachConfig(), PROMPTS))
    assert validate_prompts(TeachConfig(backend="annotation"), PROMPTS) == []
    many = TeachConfig(model="m", resources={"actors": 2})
    assert any("runs once per actor" in p for p in validate_prompts(many, PROMPTS))
    assert validate_prompts(TeachConfig(base_url="http://h/v1", resources={"actors": 2}), PROMPTS) == []


def test_setup_fails_on_bad_prompts(tmp_path):
    stage = TeachStage(TeachConfig(model="m"), RunContext(prompts_dir=tmp_path), teacher=ScriptedTeacher({}))
    with pytest.raises(ValueError, match="system.txt does not exist"):
        stage.setup()


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="extra"):
        TeachConfig(temprature=0.5)
    with pytest.raises(ValidationError):
        TeachConfig(keep="best")
    with pytest.raises(ValidationError):
        TeachConfig(keep=0)
    with pytest.raises(ValidationError):
        TeachConfig(backend="openai")
    assert TeachConfig(keep=3).keep == 3


def test_stage_is_picklable_before_setup():
    stage = TeachStage(TeachConfig(model="m"), RunContext(prompts_dir=PROMPTS))
    clone = pickle.loads(pickle.dumps(stage))
    assert clone.config == stage.config and clone.teacher is None


def test_templates_keep_json_braces():
    assert fill_template('{question} as {"count": 3}', {"question": "Q"}) == 'Q as {"count": 3}'
    assert render_choices([]) == "" and render_choices(["A. x", "B. y"]) == "Options:\nA. x\nB. y\n"


def test_annotation_backend_end_to_end_through_the_stage():
    item = record("ann", label="coin", points=[[5, 5], [60, 40], [30, 20]])
    bare = record("bare")
    stage = TeachStage(TeachConfig(backend="annotation", k=3), RunContext(prompts_dir=PROMPTS))
    stage.setup()
    annotated, unannotated = stage([item, bare])
    assert annotated.teacher.n_correct == 3 and all(c.alive for c in annotated.candidates)
    assert len({c.text for c in annotated.candidates}) > 1
    assert annotated.teacher.backend == "annotation" and annotated.teacher.model == "annotation-templates"
    assert unannotated.reject.reason == "no_annotations"
    assert "no_annotations" in REJECT_REASONS["teach"]
