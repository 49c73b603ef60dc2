"""validation.number's fast path for plain floats gives what the general rule gives: the same value, the same
type (an integral float becomes an int) and the same error, for every float."""

from __future__ import annotations

import math
import numbers
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.rendering.validation import DECIMALS, DrawError, number


def reference_number(value: object, what: str) -> int | float:
    """The rule without any fast path: a finite real, rounded to DECIMALS places, integral values as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise DrawError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    as_float = float(value)
    if not math.isfinite(as_float):
        raise DrawError(f"{what} must be a finite number, got {as_float!r}")
    rounded = round(as_float, DECIMALS)
    return int(rounded) if rounded.is_integer() else rounded


def outcome(value: Any) -> tuple[str, Any, str]:
    try:
        result = number(value, "x")
    except DrawError as exc:
        return "error", str(exc), ""
    return "ok", result, type(result).__name__


def reference(value: Any) -> tuple[str, Any, str]:
    try:
        result = reference_number(value, "x")
    except DrawError as exc:
        return "error", str(exc), ""
    return "ok", result, type(result).__name__


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**6, 10**6).map(lambda i: i * 0.5)
       | st.integers(-10**4, 10**4).map(lambda i: i * 48 + 24.0))
def test_plain_floats_match_the_general_rule(value: float) -> None:
    assert outcome(value) == reference(value)


@pytest.mark.parametrize("value", [0.0, -0.0, 24.0, 14.399999999999999, 0.005, 0.015, 2.675, -2.675, 1e16, 1e300,
                                   -1e300, 5e-324, 1.7976931348623157e308, math.nan, math.inf, -math.inf])
def test_edge_floats_match_the_general_rule(value: float) -> None:
    assert outcome(value) == reference(value)
