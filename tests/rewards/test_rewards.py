"""Every reward on hand-checked texts, in every format and frame; malformed text scores 0."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synth.core.formats import FORMATS, render_trace
from synth.core.records import GroundedObject, Instance
from synth.rewards import (
    FRAME_NAMES,
    SCORE_KEYS,
    answer_reward,
    box_hungarian_reward,
    box_reward,
    count_reward,
    format_reward,
    frame_for,
    point_reward,
    score_all,
)
from tests.rewards.factory import three_discs_row, two_boxes_row

CENTRES = [(12, 12), (40, 14), (30, 34)]  # the three discs of three_discs_row, radius 5


def predicted_text(row, fmt, frame, geometry, groundings, answer=None, trace=None):
    """A text grounding `groundings` ({phrase: [point or box, ...]}) rendered in fmt/frame."""
    trace = trace or row["trace"]
    objects = []
    for phrase, coords in groundings.items():
        start = trace.index(phrase)
        instances = [Instance({}, list(c) if len(c) == 4 else [0, 0, 1, 1], list(c) if len(c) == 2 else [0, 0])
                     for c in coords]
        objects.append(GroundedObject(phrase, [(start, start + len(phrase))], None, instances))
    f = frame_for(frame, row["image_width"], row["image_height"])
    return render_trace(trace, objects, fmt, f, geometry, answer=answer or row["answer"])


POINT_TABLE = [
    (CENTRES, 1.0, 1.0, 1.0),
    ([(12, 12), (13, 12)], 0.5, 1 / 3, 0.4),                 # two points in one disc count once
    ([(12, 12)], 1.0, 1 / 3, 0.5),
    ([(0.5, 0.5)], 0.0, 0.0, 0.0),                           # background
    (CENTRES + [(60, 45)], 0.75, 1.0, 6 / 7),                # one stray point
]


@pytest.mark.parametrize("fmt", ["tvg", "molmo", "qwen"])
@pytest.mark.parametrize("frame", FRAME_NAMES)
@pytest.mark.parametrize("points, precision, recall, f1", POINT_TABLE)
def test_point_reward_hand_table(fmt, frame, points, precision, recall, f1):
    row = three_discs_row()
    text = predicted_text(row, fmt, frame, "point", {"red discs": points})
    result = point_reward(text, row, fmt, frame)
    assert result.reason is None
    assert result.score == pytest.approx(f1)
    assert result.details["precision"] == pytest.approx(precision)
    assert result.details["recall"] == pytest.approx(recall)


BOX_TABLE = [
    ([[0, 0, 10, 10], [20, 0, 30, 10]], 1.0, 1.0, None),
    ([[0, 0, 10, 10]], 0.75, 0.5, None),
    ([[0, 0, 10, 20]], 0.375, 0.25, None),
    ([[0, 0, 10, 10], [20, 0, 30, 10], [50, 50, 60, 60]], 5 / 6, 2 / 3, None),
    ([[0, 0, 10, 10], [0, 0, 10, 10]], 0.0, 0.5, "duplicate_boxes"),
]


@pytest.mark.parametrize("fmt", ["tvg", "ivgr", "qwen"])
@pytest.mark.parametrize("boxes, ivgr, hungarian, reason", BOX_TABLE)
def test_box_rewards_hand_table(fmt, boxes, ivgr, hungarian, reason):
    row = two_boxes_row()
    text = predicted_text(row, fmt, "pixel", "box", {"cup": boxes})
    result = box_reward(text, row, fmt, "pixel")
    assert (result.score, result.reason) == (pytest.approx(ivgr), reason)
    assert box_hungarian_reward(text, row, fmt, "pixel").score == pytest.approx(hungarian)


@pytest.mark.parametrize("fmt", ["tvg", "ivgr", "qwen"])
@pytest.mark.parametrize("frame", FRAME_NAMES)
def test_exact_boxes_score_near_one_in_every_frame(fmt, frame):
    row = two_boxes_row()
    text = predicted_text(row, fmt, frame, "box", {"cup": [[0, 0, 10, 10]], "plate": [[20, 0, 30, 10]]})
    # Only rounding to the frame's precision separates the boxes: >= 0.9 even at 56 px resized.
    assert box_reward(text, row, fmt, frame).score >= 0.9
    assert box_hungarian_reward(text, row, fmt, frame).score >= 0.9


def test_ivgr_example_from_the_paper_scores_in_pixels():
    row = two_boxes_row()
    text = "<think>The cup <box>[0,0,10,10]</box> is left of the plate <box>[20,0,30,10]</box>.</think><answer>left</answer>"
    scores = score_all(text, row, "ivgr", "pixel")
    assert scores["format"] == scores["answer"] == scores["box"] == scores["box_hungarian"] == 1.0


FORMAT_CASES = [
    ("<think>The cup <box>[0,0,10,10]</box> is left.</think><answer>left</answer>", None),
    ("The cup <box>[0,0,10,10]</box> is left. <answer>left</answer>", "structure: expected one <think>"),
    ("<think>The cup <box>[0,0,10,10]</box></think><answer>left</answer><answer>x</answer>", "structure: expected one <answer>"),
    ("<think>The cup <box>[0,0,10,10]</box></think><answer>left</answer> trailing", "structure: expected <think>"),
    ("<think>The cup <box>[0,0,10,10]</box></think><answer> </answer>", "structure: empty <answer>"),
    ("<think>The cup is left.</think><answer>left</answer>", "tags: no_groundings"),
    ("<think>The cup <box>[0,0,10,</box></think><answer>left</answer>", "tags: truncated"),
    ("<think>The cup <box>[0,0,ten,10]</box></think><answer>left</answer>", "tags: malformed"),
    ("<think>The cup <box>[0,0,500,10]</box></think><answer>left</answer>", "tags: out_of_frame"),
    ("<think>The cup <box>[10,10,0,0]</box></think><answer>left</answer>", "tags: a box has x1 <= x0"),
]


@pytest.mark.parametrize("text, reason", FORMAT_CASES)
def test_format_reward_cases(text, reason):
    result = format_reward(text, two_boxes_row(), "ivgr", "pixel")
    if reason is None:
        assert (result.score, result.reason) == (1.0, None)
    else:
        assert result.score == 0.0 and result.reason.startswith(reason), result.reason


def test_format_reward_of_free_reasoning_formats_needs_a_final_answer():
    row = three_discs_row()
    text = predicted_text(row, "tvg", "norm1000", "point", {"red discs": CENTRES})
    assert format_reward(text, row, "tvg", "norm1000").score == 1.0
    assert format_reward(text, row, "tvg", "norm1000", structure="think_answer").reason.startswith("structure")
    assert format_reward("", row, "tvg", "norm1000").reason.startswith("structure: no final answer")


def test_answer_reward_reads_past_the_coordinates_of_the_last_sentence():
    row = three_discs_row()
    trace = "Counting the red discs gives 3."
    text = predicted_text(row, "tvg", "pixel", "point", {"red discs": CENTRES}, trace=trace)
    assert "<point>" in text
    assert answer_reward(text, row, "tvg").score == 1.0
    # Without the format, the tag's numbers make the last sentence ambiguous as a count.
    assert answer_reward(text, row).score == 0.0


@pytest.mark.parametrize(
    "text, score, reason",
    [
        ("There are 3 red discs.", 1.0, None),
        ("<think>so many</think><answer>three</answer>", 1.0, None),
        ("There are 4 red discs.", 0.0, "wrong_answer"),
        ("<think>still counting", 0.0, "no_answer: unclosed_think"),
        (None, 0.0, "not_text: got NoneType"),
    ],
)
def test_answer_reward_cases(text, score, reason):
    result = answer_reward(text, three_discs_row())
    assert (result.score, result.reason) == (score, reason)


@pytest.mark.parametrize("fmt", FORMATS)
def test_count_reward_compares_grounded_instances_with_the_answer(fmt):
    row = three_discs_row()
    three = predicted_text(row, fmt, "norm1000", "point", {"red discs": CENTRES})
    two = predicted_text(row, fmt, "norm1000", "point", {"red discs": CENTRES[:2]})
    assert count_reward(three, row, fmt, "norm1000").score == 1.0
    result = count_reward(two, row, fmt, "norm1000")
    assert (result.score, result.reason, result.details["predicted"], result.details["gold"]) == (
        0.0, "count_mismatch", 2, 3)


def test_count_reward_of_a_spatial_row_counts_the_first_object():
    row = two_boxes_row()
    text = predicted_text(row, "ivgr", "pixel", "box", {"cup": [[0, 0, 10, 10]], "plate": [[20, 0, 30, 10]]})
    result = count_reward(text, row, "ivgr", "pixel")
    assert (result.score, result.details["gold"], result.details["phrase_matched"]) == (1.0, 1, True)


def test_geometry_rewards_say_what_is_missing():
    row = three_discs_row()
    boxes_only = predicted_text(row, "tvg", "pixel", "box", {"red discs": [[7, 7, 17, 17]]})
    assert point_reward(boxes_only, row, "tvg", "pixel").reason == "no_points"
    points_only = predicted_text(row, "tvg", "pixel", "point", {"red discs": CENTRES})
    assert box_reward(points_only, row, "tvg", "pixel").reason == "no_boxes"
    assert box_reward("nothing here", row, "tvg", "pixel").reason == "unparseable: no_groundings"


def test_a_truncated_tag_scores_zero_even_with_good_coordinates_before_it():
    row = three_discs_row()
    text = "the red discs <point>[[12,12],[40,14],[30,34]]</point> and <point>[[1,"
    assert point_reward(text, row, "tvg", "pixel").reason == "unparseable: truncated"


def test_score_all_returns_every_key_in_unit_range():
    row = three_discs_row()
    text = predicted_text(row, "molmo", "norm100", "point", {"red discs": CENTRES})
    scores = score_all(text, row, "molmo", "norm100")
    assert tuple(scores) == SCORE_KEYS
    assert scores["point"] == scores["count"] == scores["answer"] == scores["format"] == 1.0
    assert scores["box"] == 0.0


def test_unknown_frame_or_format_is_a_configuration_error():
    row = three_discs_row()
    with pytest.raises(ValueError, match="choices"):
        score_all("x", row, "tvg", "norm10")
    with pytest.raises(ValueError, match="choices"):
        score_all("x", row, "yolo", "pixel")


fragments = st.sampled_from([
    "<think>", "</think>", "<answer>", "</answer>", "<point>", "</point>", "<box>", "</box>", "[[", "]]", "[",
    "]", ",", "12", "-3", "1e309", "nan", "0.5", '<points x1="1" y1=', '<point x="3" y="4" alt="a">a</point>',
    '{"bbox_2d": [1, 2, 3', '"point_2d": [', "```json\n", "```", "the red discs", " ", "\n", "\x00", "{", "}",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(fragments, st.text(max_size=5)), max_size=30), st.sampled_from(FORMATS),
       st.sampled_from(FRAME_NAMES))
def test_model_text_never_raises(parts, fmt, frame):
    scores = score_all("".join(parts), three_discs_row(), fmt, frame)
    assert set(scores) == set(SCORE_KEYS)
    assert all(0.0 <= v <= 1.0 for v in scores.values())


def test_one_text_scored_against_two_rows_uses_each_rows_targets():
    near = two_boxes_row(row_id="near")
    far = two_boxes_row(row_id="far")
    far["objects"][0]["instances"][0]["box"] = [50.0, 50.0, 60.0, 60.0]
    far["objects"][1]["instances"][0]["box"] = [70.0, 50.0, 80.0, 60.0]
    text = "<think>The cup <box>[0,0,10,10]</box> and the plate <box>[20,0,30,10]</box>.</think><answer>left</answer>"
    assert box_reward(text, near, "ivgr", "pixel").score == 1.0
    assert box_reward(text, far, "ivgr", "pixel").score == 0.0
    assert box_hungarian_reward(text, near, "ivgr", "pixel").score == 1.0


def test_many_points_take_the_array_path_with_the_same_result():
    from tests.rewards.factory import disc_mask, make_row

    centres = [(8 + 12 * i, 8 + 14 * j) for i in range(5) for j in range(3)]  # 15 discs: 15x15 > SMALL cells
    masks = [disc_mask(48, 64, x, y, 4) for x, y in centres]
    row = make_row([("dots", masks)], "All the dots are here: 15.", "15", width=64, height=48)
    text = predicted_text(row, "tvg", "pixel", "point", {"dots": centres})
    result = point_reward(text, row, "tvg", "pixel")
    assert (result.score, result.details["matched"]) == (1.0, 15)
    half = predicted_text(row, "tvg", "pixel", "point", {"dots": centres[:5] * 3})  # 5 discs hit thrice each
    assert point_reward(half, row, "tvg", "pixel").details["matched"] == 5
