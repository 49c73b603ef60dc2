"""Form inputs a static scene can ask for, and the pure validation of a participant's answers."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_TEXT = 5000


class AnswerError(ValueError):
    """A submitted answer that does not fit its input (told to the participant's page)."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"input name {name!r} must be a Python-style identifier (letters, digits, _; max 64)")


@dataclass(frozen=True)
class TextInput:
    """Free text. ``max_length`` bounds what is stored."""

    name: str
    label: str
    required: bool = True
    multiline: bool = False
    max_length: int = 1000
    kind: str = field(default="text", init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not 1 <= self.max_length <= MAX_TEXT:
            raise ValueError(f"TextInput {self.name!r}: max_length must be between 1 and {MAX_TEXT}")

    def clean(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise AnswerError(f"{self.name}: expected text")
        if len(value) > self.max_length:
            raise AnswerError(f"{self.name}: at most {self.max_length} characters")
        return value


@dataclass(frozen=True)
class MultipleChoice:
    """One option out of ``options`` (or several, with ``multiple=True``)."""

    name: str
    label: str
    options: Sequence[str] = ()
    required: bool = True
    multiple: bool = False
    kind: str = field(default="choice", init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.options) < 2 or len(set(self.options)) != len(self.options):
            raise ValueError(f"MultipleChoice {self.name!r}: give at least two distinct options")

    def clean(self, value: Any) -> str | list[str] | None:
        if value is None or value == "" or value == []:
            return None
        values = value if self.multiple and isinstance(value, list) else [value]
        for v in values:
            if v not in self.options:
                raise AnswerError(f"{self.name}: {v!r} is not one of the options")
        return list(values) if self.multiple else values[0]


@dataclass(frozen=True)
class Likert:
    """A rating from 1 to ``points`` between two anchor labels."""

    name: str
    label: str
    points: int = 7
    low_label: str = "Strongly disagree"
    high_label: str = "Strongly agree"
    required: bool = True
    kind: str = field(default="likert", init=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not 2 <= self.points <= 11:
            raise ValueError(f"Likert {self.name!r}: points must be between 2 and 11")

    def clean(self, value: Any) -> int | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise AnswerError(f"{self.name}: expected a number from 1 to {self.points}")
        try:
            number = int(value)
        except (TypeError, ValueError, OverflowError):
            raise AnswerError(f"{self.name}: expected a number from 1 to {self.points}") from None
        if str(number) != str(value).strip() and number != value:
            raise AnswerError(f"{self.name}: expected a whole number")
        if not 1 <= number <= self.points:
            raise AnswerError(f"{self.name}: expected a number from 1 to {self.points}")
        return number


FormInput = TextInput | MultipleChoice | Likert


def input_to_client(item: FormInput) -> dict[str, Any]:
    """What the page needs to draw an input."""
    data: dict[str, Any] = {"kind": item.kind, "name": item.name, "label": item.label, "required": item.required}
    if isinstance(item, TextInput):
        data.update(multiline=item.multiline, max_length=item.max_length)
    elif isinstance(item, MultipleChoice):
        data.update(options=list(item.options), multiple=item.multiple)
    else:
        data.update(points=item.points, low_label=item.low_label, high_label=item.high_label)
    return data


def clean_answers(inputs: Sequence[FormInput], answers: Mapping[str, Any]) -> dict[str, Any]:
    """Validates ``answers`` against ``inputs``; returns the cleaned values.

    Raises:
        AnswerError: for an unknown field, a value that does not fit, or a missing required answer.
    """
    known = {i.name: i for i in inputs}
    unknown = sorted(set(answers) - set(known))
    if unknown:
        raise AnswerError(f"unknown field(s): {', '.join(unknown[:5])}")
    cleaned: dict[str, Any] = {}
    for item in inputs:
        value = item.clean(answers.get(item.name))
        if value is None and item.required:
            raise AnswerError(f"{item.name}: an answer is required")
        cleaned[item.name] = value
    return cleaned
