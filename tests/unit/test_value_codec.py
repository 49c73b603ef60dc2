"""Tests for interactive_gym.server.value_codec: exact round trips, strict JSON, clear errors."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from interactive_gym.server import value_codec
from interactive_gym.server.value_codec import TAG, CodecError, decode, dumps, encode, loads

REPO_ROOT = Path(__file__).resolve().parents[2]


def assert_same(expected: object, actual: object) -> None:
    """Asserts equal value AND equal type, recursively (NaN equals NaN; -0.0 differs from 0.0)."""
    assert type(actual) is type(expected), (expected, actual)
    if isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype
        assert actual.shape == expected.shape
        if expected.dtype.kind == "O":
            for a, b in zip(expected.ravel(), actual.ravel(), strict=True):
                assert_same(a, b)
        else:
            assert actual.tobytes() == np.ascontiguousarray(expected).tobytes()
    elif isinstance(expected, np.generic):
        assert actual.dtype == expected.dtype
        assert np.asarray(actual).tobytes() == np.asarray(expected).tobytes()
    elif isinstance(expected, float):
        assert (math.isnan(expected) and math.isnan(actual)) or (
            expected == actual and math.copysign(1, expected) == math.copysign(1, actual)
        )
    elif isinstance(expected, dict):
        assert list(actual) == list(expected)
        for key in expected:
            assert_same(expected[key], actual[key])
    elif isinstance(expected, list | tuple):
        assert len(actual) == len(expected)
        for a, b in zip(expected, actual, strict=True):
            assert_same(a, b)
    else:
        assert actual == expected


def roundtrip(value: object) -> object:
    text = dumps(value)
    json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON token {name}"))
    return loads(text)


# --------------------------------------------------------------------------------------- plain values

PLAIN_VALUES = [
    None,
    True,
    False,
    0,
    -7,
    2**70,
    1.5,
    -0.0,
    1e-310,
    "",
    "héllo \u2603 \x00",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": [1, "x", None]}},
]


@pytest.mark.parametrize("value", PLAIN_VALUES, ids=repr)
def test_json_native_values_are_stored_as_themselves(value: object) -> None:
    assert encode(value) == value
    assert_same(value, roundtrip(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_round_trip_as_strict_json(value: float) -> None:
    text = dumps(value)
    assert "NaN" not in text and "Infinity" not in text
    assert_same(value, loads(text))


def test_python_containers_keep_their_types() -> None:
    value = {
        "tuple": (1, (2.5, "x"), []),
        "bytes": b"\x00\xff raw",
        "bytearray": bytearray(b"ab"),
        "int_keys": {0: "a", 1: "b"},
        "tuple_keys": {(1, 2): 3},
        "complex": 1 + 2j,
        "nested": [{"__ig__": "not a tag"}],
    }
    result = roundtrip(value)
    assert result["tuple"] == (1, (2.5, "x"), [])
    assert type(result["tuple"][1]) is tuple
    assert result["bytes"] == b"\x00\xff raw"
    assert result["bytearray"] == b"ab"  # documented: bytearray comes back as bytes
    assert result["int_keys"] == {0: "a", 1: "b"}
    assert result["tuple_keys"] == {(1, 2): 3}
    assert result["complex"] == 1 + 2j
    assert result["nested"] == [{"__ig__": "not a tag"}]  # a user key named like the tag is escaped


def test_dict_subclasses_decode_as_plain_dicts_in_order() -> None:
    value = OrderedDict([("b", 1), ("a", 2)])
    result = roundtrip(value)
    assert list(result.items()) == [("b", 1), ("a", 2)]


json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text() | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.tuples(children, children)
    | st.dictionaries(st.text(max_size=5) | st.integers(), children, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_like)
def test_arbitrary_nested_python_values_round_trip(value: object) -> None:
    assert_same(value, roundtrip(value))


# ---------------------------------------------------------------------------------------------- numpy

NUMPY_VALUES = [
    np.float32(1.1),
    np.float64(-0.0),
    np.float16(np.nan),
    np.int64(-(2**63)),
    np.uint64(2**64 - 1),
    np.int8(-1),
    np.bool_(True),
    np.complex64(1 - 2j),
    np.str_("abc"),
    np.bytes_(b"ab\x00c"),
    np.datetime64("2024-02-29T12:00:00.123", "ms"),
    np.timedelta64(5, "s"),
    np.longdouble(1) / np.longdouble(3),
]


@pytest.mark.parametrize("value", NUMPY_VALUES, ids=lambda v: f"{type(v).__name__}")
def test_numpy_scalars_keep_dtype_and_bits(value: object) -> None:
    assert_same(value, roundtrip(value))


NUMPY_ARRAYS = [
    np.arange(12, dtype=np.float32).reshape(3, 4) / 7,
    np.zeros((0, 3), dtype=np.int16),
    np.array(5.5),
    np.array([np.nan, np.inf, -np.inf, -0.0]),
    np.arange(10_000, dtype=np.uint8).reshape(100, 100),  # base64 path
    np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32),  # base64 path
    np.array([[True, False]]),
    np.array(["a", "bcd", ""]),
    np.array([b"a", b"bc"]),
    np.array([1 + 1j, 2]),
    np.array([np.datetime64("2020-01-01")]),
    np.arange(6, dtype=">i4").reshape(2, 3),  # big-endian keeps its byte order
    np.asfortranarray(np.arange(6, dtype=np.int32).reshape(2, 3)),
    np.arange(20)[::3],  # non-contiguous view
    np.array([1, "x", None, (2, 3)], dtype=object),
    np.array([np.float16(0.1), np.float16(2)]),
    np.array([1, 2], dtype=np.longdouble) / 3,
]


@pytest.mark.parametrize("array", NUMPY_ARRAYS, ids=lambda a: f"{a.dtype.str}{a.shape}")
def test_numpy_arrays_keep_dtype_shape_and_values(array: np.ndarray) -> None:
    result = roundtrip(array)
    assert_same(array, result)
    assert result.flags.writeable


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        dtype=hnp.scalar_dtypes(),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    )
)
def test_arbitrary_numpy_arrays_round_trip_bit_exact(array: np.ndarray) -> None:
    result = roundtrip(array)
    assert result.dtype == array.dtype and result.shape == array.shape
    assert result.tobytes() == array.tobytes()


def test_small_arrays_are_readable_lists_and_large_ones_base64() -> None:
    small = encode(np.array([[1, 2], [3, 4]], dtype=np.int32))
    assert small == {TAG: "ndarray", "dtype": "<i4", "shape": [2, 2], "data": [1, 2, 3, 4]}
    large = encode(np.zeros(value_codec.BASE64_MIN_BYTES, dtype=np.uint8))
    assert "b64" in large and "data" not in large


def test_gymnasium_style_observation_round_trips() -> None:
    obs = {
        "agent_0": np.array([0.25, -1.0], dtype=np.float32),
        "agent_1": (np.int64(3), {"image": np.ones((2, 2, 3), dtype=np.uint8)}),
    }
    assert_same(obs, roundtrip(obs))


# ---------------------------------------------------------------------------------------------- errors


def test_unsupported_type_error_names_the_path() -> None:
    with pytest.raises(CodecError, match=r"value\['info'\]\[1\]: cannot encode a value of type object"):
        encode({"info": [1, object()]})


def test_structured_arrays_are_rejected_clearly() -> None:
    with pytest.raises(CodecError, match="structured"):
        encode(np.zeros(2, dtype=[("a", "i4"), ("b", "f4")]))


def test_reference_cycle_fails_with_a_message() -> None:
    cycle: list[object] = []
    cycle.append(cycle)
    with pytest.raises(CodecError, match="deeper than"):
        encode(cycle)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"__ig__": "pickle", "x": 1}', "unknown tag 'pickle'"),
        ('{"__ig__": 5}', "unknown tag 5"),
        ('{"__ig__": "float", "v": "huge"}', "float value must be"),
        ('{"__ig__": "tuple"}', "malformed 'tuple'"),
        ('{"__ig__": "tuple", "items": 3}', "expected a JSON list"),
        ('{"__ig__": "bytes", "b64": "@@@"}', "malformed 'bytes'"),
        ('{"__ig__": "ndarray", "dtype": "nope", "shape": [1], "data": [1]}', "malformed 'ndarray'"),
        ('{"__ig__": "ndarray", "dtype": "<i4", "shape": [3], "data": [1]}', "malformed 'ndarray'"),
        ('[{"a": {"__ig__": "dict", "items": [[1]]}}]', r"value\[0\]\['a'\]: malformed 'dict'"),
    ],
)
def test_malformed_documents_raise_codec_error(text: str, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        loads(text)


def test_decode_leaves_plain_documents_alone() -> None:
    assert decode({"a": [1, 2.5, None]}) == {"a": [1, 2.5, None]}


def test_works_without_numpy_for_plain_values() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["numpy"] = None  # makes "import numpy" raise ImportError
        from interactive_gym.server.value_codec import CodecError, dumps, loads
        value = {"a": (1, 2.5, float("nan")), 3: b"x", "s": [True, None]}
        back = loads(dumps(value))
        assert back["a"][:2] == (1, 2.5) and back["a"][2] != back["a"][2], back
        assert back[3] == b"x" and back["s"] == [True, None], back
        try:
            loads('{"__ig__": "ndarray", "dtype": "<i4", "shape": [1], "data": [1]}')
        except CodecError as exc:
            assert "needs numpy" in str(exc), exc
        else:
            raise AssertionError("decoding an array without numpy must fail")
        assert "numpy" not in sys.modules or sys.modules["numpy"] is None
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
