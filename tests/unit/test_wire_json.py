"""wire_json gives the same text as ``json.dumps(..., separators=(",", ":"))`` and the same values (and errors) as
``engineio.json.loads``, for any value: the Socket.IO packets on the wire do not change."""

from __future__ import annotations

import enum
import json
import math
import threading
from typing import Any

import pytest
from engineio import json as engineio_json
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.server.wire_json import WireJson, compact_dumps, loads


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**120, max_value=10**120)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text() | st.just(Colour.RED)
           | st.text().map(Text))
values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=6) | st.tuples(children, children)
                      | st.dictionaries(st.text(max_size=8) | st.integers() | st.booleans() | st.none()
                                        | st.floats(allow_nan=False), children, max_size=6)),
    max_leaves=40)


def reference_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the point is to compare errors
        return type(exc).__name__, str(exc)


@settings(max_examples=300, deadline=None)
@given(values)
def test_compact_dumps_is_json_dumps_with_compact_separators(value: Any) -> None:
    assert compact_dumps(value) == reference_dumps(value)
    assert WireJson.dumps(value, separators=(",", ":")) == reference_dumps(value)


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from([{}, {"indent": 2}, {"sort_keys": True, "separators": (",", ":")}]))
def test_other_dumps_options_are_json_dumps(value: Any, options: dict[str, Any]) -> None:
    assert outcome(lambda v: WireJson.dumps(v, **options), value) == outcome(lambda v: json.dumps(v, **options), value)


@pytest.mark.parametrize("value", [b"raw", {1, 2}, [1, {"a": object()}], {(1, 2): 3}, complex(1, 2)])
def test_unencodable_values_raise_the_same_error(value: Any) -> None:
    assert outcome(compact_dumps, value) == outcome(reference_dumps, value)
    assert outcome(compact_dumps, value)[0] == "TypeError"


def test_a_cycle_raises_the_same_error_and_later_calls_are_unaffected() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    for value in (looped, mapping, [[mapping]]):
        assert outcome(compact_dumps, value) == ("ValueError", "Circular reference detected")
    shared = [1, 2]
    assert compact_dumps([shared, shared, {"a": shared}]) == "[[1,2],[1,2],{\"a\":[1,2]}]"  # repeated, not a cycle


def test_deep_nesting_behaves_as_json_dumps() -> None:
    for depth in (50, 900, 100_000):
        value: Any = 0
        for _ in range(depth):
            value = [value]
        assert outcome(compact_dumps, value) == outcome(reference_dumps, value)


def test_non_finite_floats_and_non_ascii_text() -> None:
    value = [math.nan, math.inf, -math.inf, -0.0, 1e300, "é€😀\u2028\x00\"\\"]
    assert compact_dumps(value) == reference_dumps(value)
    assert compact_dumps(value).isascii()


@settings(max_examples=300, deadline=None)
@given(values)
def test_loads_reads_what_engineio_reads(value: Any) -> None:
    text = reference_dumps(value)
    assert outcome(loads, text) == outcome(engineio_json.loads, text) or _both_nan(text)


def _both_nan(text: str) -> bool:
    # NaN != NaN: compare the decoded values through their text instead.
    return reference_dumps(loads(text)) == reference_dumps(engineio_json.loads(text))


@pytest.mark.parametrize("text", [
    "1" * 100, "1" * 101, "[" + "9" * 101 + "]", "-" + "1" * 100, "1.5e400", "NaN", "[1,]", "", " ", "\ufeff[1]",
    "[1] x", '{"a":1,"a":2}', '"\\ud800"', "[" * 5000 + "]" * 5000, "{\"k\": [1, 2.5, true, null]}  ",
])
def test_loads_edge_cases_match_engineio(text: str) -> None:
    assert outcome(loads, text) == outcome(engineio_json.loads, text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='[]{}",:0123456789.-eE truenfalsNI\\u', max_size=40))
def test_loads_of_arbitrary_text_matches_engineio(text: str) -> None:
    assert outcome(loads, text) == outcome(engineio_json.loads, text)


def test_bytes_and_str_subclass_input_decode_as_engineio() -> None:
    assert loads(b'{"a": [1, 2]}') == engineio_json.loads(b'{"a": [1, 2]}')
    assert loads(Text("[3]")) == [3]


def test_the_shared_encoder_and_decoder_are_safe_across_threads() -> None:
    payloads = [{"id": f"agent_{i}", "x": i * 1.5, "items": list(range(i % 7))} for i in range(200)]
    expected = [reference_dumps(p) for p in payloads]
    failures: list[str] = []

    def work() -> None:
        for _ in range(50):
            for payload, text in zip(payloads, expected, strict=True):
                if compact_dumps(payload) != text or loads(text) != payload:
                    failures.append(text)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
