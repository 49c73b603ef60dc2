"""The stored shapes of the Redis waiting room and the decisions on them (pure: no Redis needed)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interactive_gym.server.cluster.room_records import (
    CorruptRoomError,
    Group,
    Stored,
    check_attrs,
    decide,
    decode_group,
    decode_waiters,
    encode_group,
    encode_waiter,
    load_room,
    requeue_plan,
)
from interactive_gym.server.waiting_room import MatchmakerError, Waiter, fifo_matchmaker

_IDS = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                 max_size=3), max_leaves=6)
_ENTRIES = st.builds(
    lambda pid, seq, at, rtt, present, attrs: Stored(seq, Waiter(pid, at, rtt, present, attrs)),
    _IDS, st.integers(0, 2**53), st.floats(-1e12, 1e12), st.none() | st.floats(0, 1e6), st.booleans(),
    st.dictionaries(st.text(max_size=5), _JSON, max_size=3))


@given(st.lists(_ENTRIES, max_size=6, unique_by=lambda e: e.waiter.participant_id))
def test_waiter_records_read_back_as_written(entries: list[Stored]) -> None:
    raw = {e.waiter.participant_id.encode(): encode_waiter(e).encode() for e in entries}
    assert decode_waiters(raw) == {e.waiter.participant_id: e for e in entries}
    assert all(encode_waiter(e) == encode_waiter(decode_waiters({"x": encode_waiter(e)})["x"]) for e in entries)


@given(_ENTRIES, _ENTRIES)
def test_group_records_read_back_as_written(first: Stored, second: Stored) -> None:
    if first.waiter.participant_id == second.waiter.participant_id:
        return
    group = Group("ab12", (second.waiter.participant_id, first.waiter.participant_id), (second, first))
    assert decode_group("ab12", encode_group(group)) == group


GOOD = {"seq": 1, "joined_at": 2.0, "rtt_ms": None, "present": True, "attrs": {}}


@pytest.mark.parametrize(("field", "raw", "message"), [
    ("a", "not json", "Expecting value"),
    ("a", json.dumps({**GOOD, "extra": 1}), "not a waiter record"),
    ("a", json.dumps({k: v for k, v in GOOD.items() if k != "attrs"}), "not a waiter record"),
    ("a", json.dumps([1, 2]), "not a waiter record"),
    ("a", json.dumps({**GOOD, "seq": True}), "bad seq"),
    ("a", json.dumps({**GOOD, "seq": 1.5}), "bad seq"),
    ("a", json.dumps({**GOOD, "present": 1}), "bad seq, present"),
    ("a", json.dumps({**GOOD, "attrs": []}), "attrs"),
    ("a", json.dumps({**GOOD, "joined_at": "soon"}), "joined_at is not a finite number"),
    ("a", json.dumps({**GOOD, "joined_at": math.inf}), "joined_at is not a finite number"),
    ("a", json.dumps({**GOOD, "rtt_ms": math.nan}), "rtt_ms is not a finite number"),
    ("a b", json.dumps(GOOD), "not a participant id"),
    (b"\xff", json.dumps(GOOD), "not a participant id"),
])
def test_a_foreign_waiter_record_is_refused_with_what_is_wrong(field: str | bytes, raw: str, message: str) -> None:
    with pytest.raises(CorruptRoomError, match=message):
        decode_waiters({field: raw})


@pytest.mark.parametrize("raw", ["[]", "{}", '{"members": ["a"]}', '{"members": ["a b"], "waiters": {}}',
                                 '{"members": [], "waiters": {"a": 1}}', '{"members": ["a"], "waiters": {}}',
                                 f'{{"members": ["a", "a"], "waiters": {{"a": {json.dumps(GOOD)}}}}}', "nope"])
def test_a_foreign_group_record_is_refused(raw: str) -> None:
    with pytest.raises(CorruptRoomError, match="group record 'g1'"):
        decode_group("g1", raw)


def test_attrs_are_copied_and_bounded() -> None:
    original = {"lang": ["en", "fr"]}
    checked = check_attrs(original)
    original["lang"].append("de")
    assert checked == {"lang": ["en", "fr"]}
    assert check_attrs(None) == {}
    for bad in ([1], {"x": math.nan}, {"x": object()}):
        with pytest.raises(ValueError, match="attrs"):
            check_attrs(bad)  # type: ignore[arg-type]


def _stored(*entries: tuple[str, int, float, bool]) -> dict[str, Stored]:
    return {pid: Stored(seq, Waiter(pid, at, None, present)) for pid, seq, at, present in entries}


def test_the_queue_is_ordered_by_arrival_time_then_arrival_counter() -> None:
    stored = _stored(("late", 1, 9.0, True), ("b", 3, 2.0, True), ("a", 2, 2.0, True), ("first", 4, 1.0, True))
    assert load_room(stored, 2, 60).waiting() == ["first", "a", "b", "late"]


def test_a_repeated_join_that_changes_nothing_writes_nothing() -> None:
    stored = _stored(("a", 1, 1.0, True))
    plan = decide(stored, lambda room: room.join("a", 5.0), group_size=2, timeout_s=60,
                  matchmaker=fifo_matchmaker, group_id="g1")
    assert plan.changes_nothing and plan.result is None


def test_a_join_writes_the_newcomer_and_a_group_takes_its_members_out() -> None:
    stored = _stored(("a", 1, 1.0, False), ("b", 2, 2.0, True))
    newcomer = Stored(7, Waiter("c", 3.0, 12.0, True, {"k": 1}))
    plan = decide(stored, lambda room: room.join("c", 3.0, 12.0), group_size=2, timeout_s=60,
                  matchmaker=fifo_matchmaker, group_id="g1", new=newcomer)
    assert plan.result == ["b", "c"]
    assert plan.writes == {} and plan.removes == ["b"]
    assert plan.formed == Group("g1", ("b", "c"), (stored["b"], newcomer))

    plan = decide(stored, lambda room: room.set_presence("a", False, 40.0), group_size=3, timeout_s=60,
                  matchmaker=fifo_matchmaker, group_id="g2")
    assert plan.result is None and plan.removes == [] and plan.formed is None
    assert plan.writes == {"a": encode_waiter(Stored(1, Waiter("a", 1.0, 40.0, False)))}


def test_a_raising_operation_keeps_what_it_did_before_raising() -> None:
    def broken(waiters: object, size: int) -> list[str]:
        raise RuntimeError("boom")

    newcomer = Stored(3, Waiter("c", 3.0))
    plan = decide(_stored(("a", 1, 1.0, True)), lambda room: room.join("c", 3.0), group_size=2, timeout_s=60,
                  matchmaker=broken, group_id="g1", new=newcomer)
    assert plan.writes == {"c": encode_waiter(newcomer)}
    with pytest.raises(MatchmakerError, match="boom"):
        plan.outcome()


def test_requeue_puts_back_only_those_not_waiting_and_drops_the_group() -> None:
    stored = _stored(("b", 5, 4.0, True))
    group = Group("g1", ("a", "b"), tuple(_stored(("a", 1, 1.0, True), ("b", 2, 2.0, True)).values()))
    plan = requeue_plan(stored, group)
    assert plan.result == ["a"]
    assert plan.writes == {"a": encode_waiter(group.entries[0])}
    assert plan.dropped == group and plan.removes == [] and plan.formed is None
