"""Tests for interactive_gym.scenes.form_inputs: input declarations and answer cleaning."""

from __future__ import annotations

import dataclasses
import math

import pytest

from interactive_gym.scenes.form_inputs import (
    MAX_TEXT,
    AnswerError,
    Likert,
    MultipleChoice,
    TextInput,
    clean_answers,
    input_to_client,
)


# -- names ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a", "_x", "age", "Q1_b", "x" * 64])
def test_good_names(name: str) -> None:
    assert TextInput(name, "label").name == name


@pytest.mark.parametrize("name", ["", "1abc", "with space", "dash-ed", "x" * 65, None, 5, "é", "name\n"])
def test_bad_names_are_refused_by_every_input(name: object) -> None:
    for build in (lambda: TextInput(name, "l"), lambda: MultipleChoice(name, "l", options=["a", "b"]),
                  lambda: Likert(name, "l")):
        with pytest.raises(ValueError, match="must be a Python-style identifier"):
            build()


def test_inputs_are_frozen() -> None:
    item = TextInput("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        item.name = "c"  # type: ignore[misc]


def test_kinds() -> None:
    assert TextInput("a", "l").kind == "text"
    assert MultipleChoice("a", "l", options=["x", "y"]).kind == "choice"
    assert Likert("a", "l").kind == "likert"


# -- TextInput ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_length", [0, -1, MAX_TEXT + 1])
def test_text_max_length_bounds(max_length: int) -> None:
    with pytest.raises(ValueError, match=f"max_length must be between 1 and {MAX_TEXT}"):
        TextInput("t", "l", max_length=max_length)


def test_text_clean() -> None:
    item = TextInput("t", "l", max_length=5)
    assert item.clean("hello") == "hello"
    assert item.clean("  ") == "  "
    assert item.clean("") is None
    assert item.clean(None) is None
    with pytest.raises(AnswerError, match="^t: at most 5 characters$"):
        item.clean("hello!")
    for bad in (3, ["x"], {"a": 1}, True):
        with pytest.raises(AnswerError, match="^t: expected text$"):
            item.clean(bad)


# -- MultipleChoice ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("options", [(), ["only"], ["a", "a"], ["a", "b", "a"]])
def test_choice_needs_two_distinct_options(options: list[str]) -> None:
    with pytest.raises(ValueError, match="give at least two distinct options"):
        MultipleChoice("c", "l", options=options)


def test_single_choice_clean() -> None:
    item = MultipleChoice("c", "l", options=["yes", "no"])
    assert item.clean("yes") == "yes"
    assert item.clean(None) is None
    assert item.clean("") is None
    assert item.clean([]) is None
    with pytest.raises(AnswerError, match="^c: 'maybe' is not one of the options$"):
        item.clean("maybe")
    with pytest.raises(AnswerError, match="is not one of the options"):
        item.clean(["yes"])  # a list is not one option
    with pytest.raises(AnswerError, match="is not one of the options"):
        item.clean(1)


def test_multiple_choice_clean() -> None:
    item = MultipleChoice("c", "l", options=["r", "g", "b"], multiple=True)
    assert item.clean(["r", "b"]) == ["r", "b"]
    assert item.clean("g") == ["g"]
    assert item.clean([]) is None
    with pytest.raises(AnswerError, match="^c: 'x' is not one of the options$"):
        item.clean(["r", "x"])


# -- Likert --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("points", [1, 0, 12])
def test_likert_points_bounds(points: int) -> None:
    with pytest.raises(ValueError, match="points must be between 2 and 11"):
        Likert("l", "x", points=points)


@pytest.mark.parametrize(("value", "expected"), [(1, 1), (5, 5), ("5", 5), (" 3 ", 3), (4.0, 4), ("", None),
                                                 (None, None)])
def test_likert_clean_accepts(value: object, expected: int | None) -> None:
    assert Likert("l", "x", points=5).clean(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "^l: expected a number from 1 to 5$"),
        (6, "^l: expected a number from 1 to 5$"),
        (-1, "^l: expected a number from 1 to 5$"),
        ("six", "^l: expected a number from 1 to 5$"),
        ([3], "^l: expected a number from 1 to 5$"),
        ({"v": 3}, "^l: expected a number from 1 to 5$"),
        (math.nan, "^l: expected a number from 1 to 5$"),
        (2.5, "^l: expected a whole number$"),
        ("2.5", "^l: expected a number from 1 to 5$"),
        # Non-finite numbers can arrive from a JSON payload (Python's json accepts Infinity).
        (math.inf, "^l: expected a number from 1 to 5$"),
        (-math.inf, "^l: expected a number from 1 to 5$"),
        # A boolean is not a rating, even though Python treats True as 1.
        (True, "^l: expected a number from 1 to 5$"),
    ],
)
def test_likert_clean_refuses(value: object, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        Likert("l", "x", points=5).clean(value)


# -- input_to_client -----------------------------------------------------------------------------------------
def test_input_to_client() -> None:
    assert input_to_client(TextInput("t", "Tell", required=False, multiline=True, max_length=9)) == {
        "kind": "text", "name": "t", "label": "Tell", "required": False, "multiline": True, "max_length": 9,
    }
    assert input_to_client(MultipleChoice("c", "Pick", options=("a", "b"), multiple=True)) == {
        "kind": "choice", "name": "c", "label": "Pick", "required": True, "options": ["a", "b"], "multiple": True,
    }
    assert input_to_client(Likert("k", "Rate", points=5, low_label="lo", high_label="hi")) == {
        "kind": "likert", "name": "k", "label": "Rate", "required": True, "points": 5, "low_label": "lo",
        "high_label": "hi",
    }


# -- clean_answers -------------------------------------------------------------------------------------------
INPUTS = (
    Likert("helpful", "Helpful?", points=7),
    MultipleChoice("before", "Before?", options=["yes", "no"]),
    TextInput("comments", "Comments", required=False),
)


def test_clean_answers_returns_every_input() -> None:
    assert clean_answers(INPUTS, {"helpful": "6", "before": "no"}) == {
        "helpful": 6, "before": "no", "comments": None,
    }


def test_clean_answers_unknown_fields_listed_sorted_at_most_five() -> None:
    with pytest.raises(AnswerError, match="^unknown field\\(s\\): zz$"):
        clean_answers(INPUTS, {"helpful": 1, "before": "yes", "zz": 1})
    many = {f"f{i}": 1 for i in range(8)}
    with pytest.raises(AnswerError) as info:
        clean_answers(INPUTS, many)
    assert str(info.value) == "unknown field(s): f0, f1, f2, f3, f4"


def test_clean_answers_required_missing() -> None:
    with pytest.raises(AnswerError, match="^before: an answer is required$"):
        clean_answers(INPUTS, {"helpful": 2})
    with pytest.raises(AnswerError, match="^helpful: an answer is required$"):
        clean_answers(INPUTS, {"helpful": "", "before": "yes"})


def test_clean_answers_bad_value_message_names_the_input() -> None:
    with pytest.raises(AnswerError, match="^helpful: expected a number from 1 to 7$"):
        clean_answers(INPUTS, {"helpful": 9, "before": "yes"})


def test_clean_answers_with_no_inputs() -> None:
    assert clean_answers((), {}) == {}
    with pytest.raises(AnswerError, match="unknown field"):
        clean_answers((), {"a": 1})
