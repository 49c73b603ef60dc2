"""Tests for the Socket.IO payload schemas: a table of malformed payloads and the exact error each gets."""

from __future__ import annotations

import math
import re

import pytest

from interactive_gym.server.schemas import EVENT_SCHEMAS, Field, PayloadError, validate_payload

GOOD = {
    "advance": {"scene_index": 2, "scene_id": "survey", "answers": {"q1": 3}},
    "join_game": {"scene_index": 0, "scene_id": "game-1"},
    "keys": {"game_id": "g_1", "held": ["ArrowLeft", "a"], "seq": 17},
    "visibility": {"visible": False},
    "ping": {"t": 1700000000123.5},
    "p2p_join": {"scene_index": 3, "scene_id": "duo", "rtt_ms": 42.5},
    "p2p_game_end": {"game_id": "p2p-0a1b2c", "reason": "partner_left"},
    "screening_report": {"user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0", "brands": ["Chromium/120"],
                         "ua_mobile": False, "touch_points": 0, "width": 1280, "height": 720, "webassembly": True,
                         "webrtc": True, "relay": True, "relay_ms": 120.5},
    "activity": {"scene_index": 1},
}


def test_every_event_has_a_valid_example() -> None:
    assert set(GOOD) == set(EVENT_SCHEMAS)


@pytest.mark.parametrize("event", sorted(GOOD))
def test_valid_payloads_come_back_equal(event: str) -> None:
    payload = GOOD[event]
    cleaned = validate_payload(event, payload)
    assert cleaned == payload
    assert cleaned is not payload


@pytest.mark.parametrize(
    ("event", "payload", "expected"),
    [
        ("advance", {"scene_index": 0, "scene_id": "a"}, {"scene_index": 0, "scene_id": "a"}),
        ("advance", {"scene_index": 100_000, "scene_id": "x" * 64, "answers": {}},
         {"scene_index": 100_000, "scene_id": "x" * 64, "answers": {}}),
        ("advance", {"scene_index": 3.0, "scene_id": "a"}, {"scene_index": 3, "scene_id": "a"}),
        ("keys", {"game_id": "g", "held": [], "seq": 0}, {"game_id": "g", "held": [], "seq": 0}),
        ("keys", {"game_id": "g", "held": [" "] * 16, "seq": 2**53}, {"game_id": "g", "held": [" "] * 16,
                                                                        "seq": 2**53}),
        ("keys", {"game_id": "g", "held": ["~" * 32], "seq": 1}, {"game_id": "g", "held": ["~" * 32], "seq": 1}),
        ("visibility", {"visible": True}, {"visible": True}),
        ("ping", {"t": 0}, {"t": 0.0}),
        ("ping", {"t": 1e15}, {"t": 1e15}),
    ],
)
def test_valid_edge_payloads(event: str, payload: dict, expected: dict) -> None:
    cleaned = validate_payload(event, payload)
    assert cleaned == expected
    assert {k: type(v) for k, v in cleaned.items()} == {k: type(v) for k, v in expected.items()}


def test_cleaned_containers_are_copies() -> None:
    payload = {"game_id": "g", "held": ["a"], "seq": 1}
    cleaned = validate_payload("keys", payload)
    cleaned["held"].append("b")
    assert payload["held"] == ["a"]
    advance = {"scene_index": 1, "scene_id": "s", "answers": {"x": 1}}
    validate_payload("advance", advance)["answers"]["y"] = 2
    assert advance["answers"] == {"x": 1}


NOT_OBJECTS = [[], [1, 2], "text", 3, 1.5, True]

# (event, payload, exact error message)
BAD = [
    # -- advance
    ("advance", {"scene_id": "a"}, "scene_index: missing"),
    ("advance", {"scene_index": 1}, "scene_id: missing"),
    ("advance", {}, "scene_index: missing"),
    ("advance", {"scene_index": "1", "scene_id": "a"}, "scene_index: expected a number"),
    ("advance", {"scene_index": True, "scene_id": "a"}, "scene_index: expected a number"),
    ("advance", {"scene_index": False, "scene_id": "a"}, "scene_index: expected a number"),
    ("advance", {"scene_index": None, "scene_id": "a"}, "scene_index: expected a number"),
    ("advance", {"scene_index": [1], "scene_id": "a"}, "scene_index: expected a number"),
    ("advance", {"scene_index": 1.5, "scene_id": "a"}, "scene_index: expected a whole number"),
    ("advance", {"scene_index": math.nan, "scene_id": "a"}, "scene_index: expected a whole number"),
    ("advance", {"scene_index": math.inf, "scene_id": "a"}, "scene_index: expected a whole number"),
    ("advance", {"scene_index": -1, "scene_id": "a"}, "scene_index: out of range [0, 100000]"),
    ("advance", {"scene_index": 100_001, "scene_id": "a"}, "scene_index: out of range [0, 100000]"),
    # Python's json parses arbitrarily large integers: they must be refused, not crash the handler.
    ("advance", {"scene_index": 10**400, "scene_id": "a"}, "scene_index: out of range [0, 100000]"),
    ("advance", {"scene_index": 1, "scene_id": 5}, "scene_id: expected a string"),
    ("advance", {"scene_index": 1, "scene_id": None}, "scene_id: expected a string"),
    ("advance", {"scene_index": 1, "scene_id": ""}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "x" * 65}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "a b"}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "../etc"}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "é"}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "survey\n"}, "scene_id: invalid format"),
    ("advance", {"scene_index": 1, "scene_id": "a", "answers": []}, "answers: expected an object"),
    ("advance", {"scene_index": 1, "scene_id": "a", "answers": "x"}, "answers: expected an object"),
    ("advance", {"scene_index": 1, "scene_id": "a", "answers": {f"k{i}": i for i in range(101)}},
     "answers: more than 100 fields"),
    ("advance", {"scene_index": 1, "scene_id": "a", "extra": 1}, "unknown field(s): extra"),
    ("advance", {"scene_index": 1, "scene_id": "a", "z": 1, "b": 2}, "unknown field(s): b, z"),
    ("advance", {"scene_index": 1, "scene_id": "a", **{f"u{i}": 0 for i in range(7)}},
     "unknown field(s): u0, u1, u2, u3, u4"),
    ("advance", {"scene_index": 1, "scene_id": "a", "x" * 100: 1}, f"unknown field(s): {'x' * 32}"),
    # -- join_game
    ("join_game", {"scene_index": 0}, "scene_id: missing"),
    ("join_game", {"scene_id": "g"}, "scene_index: missing"),
    ("join_game", {"scene_index": "0", "scene_id": "g"}, "scene_index: expected a number"),
    ("join_game", {"scene_index": True, "scene_id": "g"}, "scene_index: expected a number"),
    ("join_game", {"scene_index": 0, "scene_id": "g", "answers": {}}, "unknown field(s): answers"),
    ("join_game", {"scene_index": 0, "scene_id": "g;drop"}, "scene_id: invalid format"),
    # -- keys
    ("keys", {"held": [], "seq": 1}, "game_id: missing"),
    ("keys", {"game_id": "g", "seq": 1}, "held: missing"),
    ("keys", {"game_id": "g", "held": []}, "seq: missing"),
    ("keys", {"game_id": "g g", "held": [], "seq": 1}, "game_id: invalid format"),
    ("keys", {"game_id": "g\n", "held": [], "seq": 1}, "game_id: invalid format"),
    ("keys", {"game_id": 1, "held": [], "seq": 1}, "game_id: expected a string"),
    ("keys", {"game_id": "g", "held": "ArrowLeft", "seq": 1}, "held: expected a list"),
    ("keys", {"game_id": "g", "held": {"a": 1}, "seq": 1}, "held: expected a list"),
    ("keys", {"game_id": "g", "held": None, "seq": 1}, "held: expected a list"),
    ("keys", {"game_id": "g", "held": ["a"] * 17, "seq": 1}, "held: more than 16 items"),
    ("keys", {"game_id": "g", "held": ["a", 3], "seq": 1}, "held[1]: expected a string"),
    ("keys", {"game_id": "g", "held": ["a", None], "seq": 1}, "held[1]: expected a string"),
    ("keys", {"game_id": "g", "held": [""], "seq": 1}, "held[0]: invalid format"),
    ("keys", {"game_id": "g", "held": ["x" * 33], "seq": 1}, "held[0]: invalid format"),
    ("keys", {"game_id": "g", "held": ["a", "\x00"], "seq": 1}, "held[1]: invalid format"),
    ("keys", {"game_id": "g", "held": ["a\n"], "seq": 1}, "held[0]: invalid format"),
    ("keys", {"game_id": "g", "held": ["é"], "seq": 1}, "held[0]: invalid format"),
    ("keys", {"game_id": "g", "held": [], "seq": -1}, "seq: out of range [0, 9007199254740992]"),
    ("keys", {"game_id": "g", "held": [], "seq": 2**53 + 1}, "seq: out of range [0, 9007199254740992]"),
    ("keys", {"game_id": "g", "held": [], "seq": 10**400}, "seq: out of range [0, 9007199254740992]"),
    ("keys", {"game_id": "g", "held": [], "seq": 1.25}, "seq: expected a whole number"),
    ("keys", {"game_id": "g", "held": [], "seq": True}, "seq: expected a number"),
    ("keys", {"game_id": "g", "held": [], "seq": "1"}, "seq: expected a number"),
    ("keys", {"game_id": "g", "held": [], "seq": 1, "ts": 5}, "unknown field(s): ts"),
    # -- visibility
    ("visibility", {}, "visible: missing"),
    ("visibility", {"visible": 1}, "visible: expected true or false"),
    ("visibility", {"visible": 0}, "visible: expected true or false"),
    ("visibility", {"visible": "true"}, "visible: expected true or false"),
    ("visibility", {"visible": None}, "visible: expected true or false"),
    ("visibility", {"visible": True, "hidden": False}, "unknown field(s): hidden"),
    # -- ping
    ("ping", {}, "t: missing"),
    ("ping", {"t": "now"}, "t: expected a number"),
    ("ping", {"t": True}, "t: expected a number"),
    ("ping", {"t": None}, "t: expected a number"),
    ("ping", {"t": math.nan}, "t: expected a finite number"),
    ("ping", {"t": math.inf}, "t: expected a finite number"),
    ("ping", {"t": -math.inf}, "t: expected a finite number"),
    ("ping", {"t": -0.5}, "t: out of range [0, 1000000000000000.0]"),
    ("ping", {"t": 1e15 + 1}, "t: out of range [0, 1000000000000000.0]"),
    ("ping", {"t": 10**400}, "t: out of range [0, 1000000000000000.0]"),
    ("ping", {"t": 1, "rtt": 2}, "unknown field(s): rtt"),
    # -- screening_report (a hostile page's facts never reach the rules unchecked)
    ("screening_report", {}, "user_agent: missing"),
    ("screening_report", {**GOOD["screening_report"], "user_agent": "x" * 513}, "user_agent: longer than 512 characters"),
    ("screening_report", {**GOOD["screening_report"], "brands": ["a"] * 17}, "brands: more than 16 items"),
    ("screening_report", {**GOOD["screening_report"], "brands": [7]}, "brands[0]: expected a string"),
    ("screening_report", {**GOOD["screening_report"], "ua_mobile": "yes"}, "ua_mobile: expected true or false"),
    ("screening_report", {**GOOD["screening_report"], "touch_points": -1}, "touch_points: out of range [0, 1000]"),
    ("screening_report", {**GOOD["screening_report"], "width": 1.5}, "width: expected a whole number"),
    ("screening_report", {**GOOD["screening_report"], "height": 10**6}, "height: out of range [0, 100000]"),
    ("screening_report", {**GOOD["screening_report"], "webassembly": 1}, "webassembly: expected true or false"),
    ("screening_report", {**GOOD["screening_report"], "webrtc": None}, "webrtc: expected true or false"),
    ("screening_report", {**GOOD["screening_report"], "relay": "true"}, "relay: expected true or false"),
    ("screening_report", {**GOOD["screening_report"], "relay_ms": math.inf}, "relay_ms: expected a finite number"),
    ("screening_report", {**GOOD["screening_report"], "decided": True}, "unknown field(s): decided"),
    # -- activity
    ("activity", {}, "scene_index: missing"),
    ("activity", {"scene_index": -1}, "scene_index: out of range [0, 100000]"),
    # -- p2p_join
    ("p2p_join", {"scene_index": 1}, "scene_id: missing"),
    ("p2p_join", {"scene_index": -1, "scene_id": "duo"}, "scene_index: out of range [0, 100000]"),
    ("p2p_join", {"scene_index": 0, "scene_id": "duo", "x": 1}, "unknown field(s): x"),
    ("p2p_join", {"scene_index": 1, "scene_id": "duo", "rtt_ms": -1}, "rtt_ms: out of range [0, 60000]"),
    ("p2p_join", {"scene_index": 1, "scene_id": "duo", "rtt_ms": "fast"}, "rtt_ms: expected a number"),
    # -- p2p_game_end
    ("p2p_game_end", {"game_id": "g-123", "reason": "complete"}, "game_id: invalid format"),
    ("p2p_game_end", {"game_id": "p2p-00", "reason": "bored"}, "reason: invalid format"),
    ("p2p_game_end", {"game_id": "p2p-00"}, "reason: missing"),
    ("p2p_game_end", {"game_id": "p2p-00", "reason": "complete", "x": 1}, "unknown field(s): x"),
    ("p2p_game_end", {"game_id": "p2p-00", "reason": "error", "error": "x" * 4001}, "error: longer than 4000 characters"),
]
BAD += [(event, payload, "payload must be an object") for event in sorted(EVENT_SCHEMAS) for payload in NOT_OBJECTS]


@pytest.mark.parametrize(("event", "payload", "message"), BAD)
def test_malformed_payloads_get_specific_errors(event: str, payload: object, message: str) -> None:
    with pytest.raises(PayloadError, match=f"^{re.escape(message)}$"):
        validate_payload(event, payload)


def test_table_covers_every_event_and_field() -> None:
    covered = {(event, message.split(":")[0].split("[")[0]) for event, _, message in BAD}
    for event, schema in EVENT_SCHEMAS.items():
        for name in schema:
            assert (event, name) in covered, f"no malformed-payload case for {event}.{name}"


@pytest.mark.parametrize("event", sorted(EVENT_SCHEMAS))
def test_none_payload_is_an_empty_object(event: str) -> None:
    required = [name for name, spec in EVENT_SCHEMAS[event].items() if spec.required]
    with pytest.raises(PayloadError, match=f"^{required[0]}: missing$"):
        validate_payload(event, None)


@pytest.mark.parametrize("event", ["", "Advance", "connect", "disconnect", "keys ", "unknown"])
def test_unknown_event(event: str) -> None:
    with pytest.raises(PayloadError, match=f"^unknown event {re.escape(repr(event))}$"):
        validate_payload(event, {})


def test_payload_error_is_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


# -- custom tables (browser-mode and p2p handlers add their own) -----------------------------------------------------
CUSTOM = {
    "blob": {
        "anything": Field("any"),
        "maybe": Field("str", required=False, max_len=4),
        "loose": Field("list", required=False, max_len=3),
        "ratio": Field("float", required=False, low=-1, high=1),
        "meta": Field("dict", required=False),
    },
}


def test_custom_table_replaces_the_default_one() -> None:
    with pytest.raises(PayloadError, match="^unknown event 'keys'$"):
        validate_payload("keys", GOOD["keys"], CUSTOM)
    with pytest.raises(PayloadError, match="^unknown event 'blob'$"):
        validate_payload("blob", {"anything": 1})


def test_custom_field_kinds() -> None:
    assert validate_payload("blob", {"anything": [1, {"x": None}]}, CUSTOM) == {"anything": [1, {"x": None}]}
    assert validate_payload("blob", {"anything": None, "loose": [1, "a", None]}, CUSTOM) == {
        "anything": None, "loose": [1, "a", None]}
    assert validate_payload("blob", {"anything": 0, "ratio": 1}, CUSTOM)["ratio"] == 1.0
    assert validate_payload("blob", {"anything": 0, "meta": {"k": [1]}}, CUSTOM)["meta"] == {"k": [1]}
    # Optional fields that are absent are absent in the result too.
    assert validate_payload("blob", {"anything": 0}, CUSTOM) == {"anything": 0}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"anything": 0, "maybe": "12345"}, "maybe: longer than 4 characters"),
        ({"anything": 0, "loose": [1, 2, 3, 4]}, "loose: more than 3 items"),
        ({"anything": 0, "ratio": 1.5}, "ratio: out of range [-1, 1]"),
        ({"anything": 0, "ratio": -2}, "ratio: out of range [-1, 1]"),
        ({"anything": 0, "meta": [1]}, "meta: expected an object"),
        ({}, "anything: missing"),
    ],
)
def test_custom_field_errors(payload: dict, message: str) -> None:
    with pytest.raises(PayloadError, match=f"^{re.escape(message)}$"):
        validate_payload("blob", payload, CUSTOM)
