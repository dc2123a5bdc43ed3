"""Reading the relation a spatial question/answer claims, and checking it on boxes."""

import numpy as np
import pytest

from synth.grounding.relations import Claim, parse_claim, question_objects, relation_holds


@pytest.mark.parametrize(
    "question, answer, claim",
    [
        ("Is the red disc left of the blue square?", "yes", Claim("red disc", "left", "blue square", True)),
        ("Is the red disc left of the blue square?", "No.", Claim("red disc", "left", "blue square", False)),
        ("Is the cup to the right of the plate?", "yes", Claim("cup", "right", "plate", True)),
        ("Is the lamp above the bed?", "yes", Claim("lamp", "above", "bed", True)),
        ("Are the shoes under the table?", "yes", Claim("shoes", "below", "table", True)),
        ("Where is the cup relative to the plate?", "to the left", Claim("cup", "left", "plate", True)),
        ("Which is further left, the red disc or the blue square?", "blue square",
         Claim("blue square", "left", "red disc", True)),
        ("Which is lower down, the green triangle or the red disc?", "the red disc",
         Claim("red disc", "below", "green triangle", True)),
    ],
)
def test_parse_claim_reads_supported_shapes(question, answer, claim):
    assert parse_claim(question, answer) == claim


@pytest.mark.parametrize(
    "question, answer",
    [
        ("How many coins are there?", "3"),
        ("Is the cup in front of the plate?", "yes"),  # depth: not checkable on 2-D boxes
        ("Is the man holding up the sign?", "yes"),  # "up" here is a verb particle, not a relation
        ("Which is further left, the red disc or the blue square?", "neither"),
        ("Is the cup left of the plate?", "maybe"),
    ],
)
def test_parse_claim_declines_what_it_cannot_read(question, answer):
    assert parse_claim(question, answer) is None


def test_question_objects_in_question_order():
    assert question_objects("Which is higher up, the red disc or the blue square?") == ["red disc", "blue square"]
    assert question_objects("Is the yellow square below the purple disc?") == ["yellow square", "purple disc"]
    assert question_objects("How many coins?") == []


def test_relation_holds_on_union_box_centres():
    left = np.array([[0, 0, 10, 10], [0, 40, 10, 50]])  # centre (5, 25)
    right = np.array([[30, 20, 40, 30]])  # centre (35, 25)
    assert relation_holds("left", left, right)
    assert not relation_holds("right", left, right)
    assert relation_holds("above", np.array([[0, 0, 5, 5]]), right)
    assert relation_holds("below", right, np.array([[0, 0, 5, 5]]))


def test_relation_holds_refuses_depth_and_empty_sides():
    with pytest.raises(ValueError, match="front"):
        relation_holds("front", np.zeros((1, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match="at least one box"):
        relation_holds("left", np.zeros((0, 4)), np.zeros((1, 4)))
