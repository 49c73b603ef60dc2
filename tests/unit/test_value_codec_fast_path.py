"""The value codec's fast paths give exactly the reference encoder's output.

``value_codec.encode`` first tries a path-less encoder and ``dumps`` skips the copy for plain JSON values;
both must be indistinguishable from the reference ``_encode`` (which builds a path for every element), in
output text, in the types of the encoded structure, and in the errors raised.
"""

from __future__ import annotations

import enum
import json
import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from interactive_gym.server import value_codec
from interactive_gym.server.value_codec import TAG, CodecError, dumps, encode


def reference_encode(value: Any) -> Any:
    return value_codec._encode(value, "value", 0)  # noqa: SLF001 - the slow path is the specification


def reference_dumps(value: Any) -> str:
    return json.dumps(reference_encode(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def assert_identical(expected: Any, actual: Any) -> None:
    """Equal and of the same type all the way down (so an int subclass or a float NaN cannot hide)."""
    assert type(actual) is type(expected), (expected, actual)
    if isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_identical(expected[key], actual[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, b in zip(expected, actual, strict=True):
            assert_identical(a, b)
    elif isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(actual)
    else:
        assert actual == expected


class Colour(enum.IntEnum):
    RED = 1


class Name(str):
    pass


plain_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=30,
)

numpy_leaves = (
    hnp.arrays(hnp.scalar_dtypes(), hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    | hnp.from_dtype(np.dtype("float32")).map(np.float32)
    | st.integers(-(2**63), 2**63 - 1).map(np.int64)
    | st.booleans().map(np.bool_)
)

anything = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=8)
    | st.complex_numbers() | st.just(Colour.RED) | st.text(max_size=3).map(Name) | numpy_leaves,
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers() | st.just(TAG), children, max_size=4)
    | st.dictionaries(st.text(max_size=3), children, max_size=3).map(OrderedDict),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(plain_json)
def test_plain_json_values_are_dumped_as_plain_json(value: Any) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert dumps(value) == expected
    assert dumps(value) == reference_dumps(value)
    assert_identical(reference_encode(value), encode(value))


@settings(max_examples=400, deadline=None)
@given(anything)
def test_fast_encode_equals_reference_for_any_value(value: Any) -> None:
    assert_identical(reference_encode(value), encode(value))
    assert dumps(value) == reference_dumps(value)


@pytest.mark.parametrize("value", [
    1.5, -0.0, math.nan, math.inf, -math.inf, np.float64(2.5), np.float32(math.nan), True, np.bool_(False),
    Colour.RED, Name("k"), {Name("k"): 1}, {TAG: 1}, {1: "a"}, OrderedDict(a=1), (1, [2.0, (3,)]),
    {"obs": np.arange(4, dtype=np.uint8), "r": [np.float32(0.5)], "done": False},
], ids=repr)
def test_values_the_fast_path_must_hand_over(value: Any) -> None:
    assert_identical(reference_encode(value), encode(value))
    assert dumps(value) == reference_dumps(value)


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [value_codec.MAX_DEPTH - 1, value_codec.MAX_DEPTH, value_codec.MAX_DEPTH + 1])
@pytest.mark.parametrize("leaf", [1, 2.5, [], {"a": 1}, (1,)], ids=repr)
def test_depth_limit_is_the_same_on_both_paths(depth: int, leaf: Any) -> None:
    value = nested(depth, leaf)
    try:
        expected: Any = reference_encode(value)
    except CodecError as exc:
        with pytest.raises(CodecError) as raised:
            encode(value)
        assert str(raised.value) == str(exc)
        with pytest.raises(CodecError):
            dumps(value)
        return
    assert_identical(expected, encode(value))
    assert dumps(value) == reference_dumps(value)


def test_errors_from_inside_fast_containers_still_name_the_path() -> None:
    value = {"agent_0": {"obs": [1, 2, (3, object())]}}
    with pytest.raises(CodecError, match=r"^value\['agent_0'\]\['obs'\]\[2\]\[1\]: cannot encode"):
        encode(value)
    with pytest.raises(CodecError, match=r"^value\['agent_0'\]\['obs'\]\[2\]\[1\]: cannot encode"):
        dumps(value)
