"""Tests for waiting rooms: FIFO groups, presence, expiry, latency-aware matching, and a random-sequence property."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.server.waiting_room import (
    MatchmakerError,
    Waiter,
    WaitingRoom,
    fifo_matchmaker,
    latency_aware_matchmaker,
)


# -- construction ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, -1])
def test_group_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="group_size must be at least 1"):
        WaitingRoom(size, 60)


def test_waiter_defaults_are_independent() -> None:
    a, b = Waiter("a", 0.0), Waiter("b", 0.0)
    a.attrs["x"] = 1
    assert b.attrs == {} and a.present and a.rtt_ms is None


def test_from_waiters_keeps_the_given_order_not_the_arrival_times() -> None:
    ordered = [Waiter("late", 9.0), Waiter("early", 1.0, present=False), Waiter("mid", 5.0)]
    room = WaitingRoom.from_waiters(2, 60, ordered)
    assert room.waiting() == ["late", "early", "mid"]
    assert room.waiter("early") is ordered[1]
    assert room.join("new", 10.0) == ["late", "mid"]  # the matchmaker sees that order (early is absent)


def test_from_waiters_refuses_a_participant_twice() -> None:
    with pytest.raises(ValueError, match="'a' appears twice"):
        WaitingRoom.from_waiters(2, 60, [Waiter("a", 0.0), Waiter("a", 1.0)])


def test_join_keeps_the_first_attrs_as_a_copy() -> None:
    room = WaitingRoom(3, 60)
    attrs = {"lang": "en"}
    room.join("a", 0, attrs=attrs)
    attrs["lang"] = "fr"
    room.join("a", 1, attrs={"lang": "de"})
    waiter = room.waiter("a")
    assert waiter is not None and waiter.attrs == {"lang": "en"}
    room.join("b", 2)
    assert room.waiter("b").attrs == {}  # type: ignore[union-attr]


def test_snapshot_is_a_copy_in_queue_order() -> None:
    room = WaitingRoom(3, 60)
    room.join("a", 0, rtt_ms=20.0, attrs={"k": 1})
    room.join("b", 1, present=False)
    snap = room.snapshot()
    room.set_presence("a", False)
    room.waiter("a").attrs["k"] = 2  # type: ignore[union-attr]
    room.leave("b")
    assert snap.waiting() == ["a", "b"] and snap.position("b") == 2 and snap.position("zed") is None
    assert snap.waiter("a") == Waiter("a", 0, 20.0, True, {"k": 1})
    assert snap.waiter("zed") is None


def test_expire_only_the_owned_waiters_when_asked() -> None:
    room = WaitingRoom(4, 10)
    for i, pid in enumerate("abc"):
        room.join(pid, i)
    assert room.expire(20, owned=lambda pid: pid != "b") == ["a", "c"]
    assert room.waiting() == ["b"]


@pytest.mark.parametrize("matchmaker", [
    lambda waiters, size: 1 / 0,
    lambda waiters, size: ["a", "a"],
    lambda waiters, size: ["a", "ghost"],
])
def test_a_broken_matchmaker_is_reported_as_such_and_the_joiner_stays_queued(matchmaker: Any) -> None:
    room = WaitingRoom(2, 60, matchmaker)
    with pytest.raises(MatchmakerError, match="matchmaker"):
        room.join("a", 0)
    assert room.waiting() == ["a"] and room.matched == []


# -- FIFO ------------------------------------------------------------------------------------------------------
def test_group_forms_when_enough_join_in_arrival_order() -> None:
    room = WaitingRoom(2, 60)
    assert room.join("a", 0) is None
    assert room.waiting() == ["a"]
    assert room.join("b", 1) == ["a", "b"]
    assert room.waiting() == []


def test_groups_of_three_in_fifo_order() -> None:
    room = WaitingRoom(3, 60)
    results = [room.join(p, i) for i, p in enumerate("abcdefg")]
    assert results == [None, None, ["a", "b", "c"], None, None, ["d", "e", "f"], None]
    assert room.waiting() == ["g"]


def test_group_of_one_starts_at_once() -> None:
    room = WaitingRoom(1, 60)
    assert room.join("solo", 0) == ["solo"]
    assert room.waiting() == []


def test_join_is_idempotent_and_keeps_the_first_arrival_time() -> None:
    room = WaitingRoom(3, 10)
    room.join("a", 0)
    room.join("b", 1)
    assert room.join("a", 5) is None
    assert room.waiting() == ["a", "b"]
    assert room.position("a") == 1
    assert room.expire(10) == ["a"]  # joined at 0, not 5


def test_leave() -> None:
    room = WaitingRoom(2, 60)
    room.join("a", 0)
    assert room.leave("a") is True
    assert room.leave("a") is False
    assert room.leave("never") is False
    assert room.join("b", 1) is None
    assert room.waiting() == ["b"]


def test_expire_boundary_and_order() -> None:
    room = WaitingRoom(5, 10)
    for i, p in enumerate("abcd"):
        room.join(p, float(i))
    assert room.expire(9.99) == []
    assert room.expire(11) == ["a", "b"]
    assert room.waiting() == ["c", "d"]
    assert room.expire(100) == ["c", "d"]
    assert room.expire(1000) == []


def test_position() -> None:
    room = WaitingRoom(4, 60)
    for i, p in enumerate("abc"):
        room.join(p, i)
    assert [room.position(p) for p in "abc"] == [1, 2, 3]
    room.leave("a")
    assert [room.position(p) for p in "bc"] == [1, 2]
    assert room.position("a") is None


def test_absent_waiters_are_not_matched() -> None:
    room = WaitingRoom(2, 60)
    room.join("a", 0)
    assert room.set_presence("a", False) is None
    assert room.join("b", 1) is None
    assert room.join("c", 2) == ["b", "c"]
    assert room.waiting() == ["a"]


def test_coming_back_completes_a_group() -> None:
    room = WaitingRoom(2, 60)
    room.join("a", 0)
    room.set_presence("a", False)
    room.join("b", 1)
    assert room.set_presence("a", True) == ["a", "b"]


def test_set_presence_unknown_participant() -> None:
    room = WaitingRoom(2, 60)
    assert room.set_presence("ghost", True) is None
    assert room.waiting() == []


def test_set_presence_updates_rtt_only_when_given() -> None:
    seen: list[list[tuple[str, Any, bool]]] = []

    def spy(waiters: Any, size: int) -> None:
        seen.append([(w.participant_id, w.rtt_ms, w.present) for w in waiters])
        return None

    room = WaitingRoom(2, 60, matchmaker=spy)
    room.join("a", 0, rtt_ms=40)
    room.set_presence("a", True, rtt_ms=55)
    room.set_presence("a", True)
    assert seen == [[("a", 40, True)], [("a", 55, True)], [("a", 55, True)]]


def test_fifo_matchmaker_directly() -> None:
    waiters = [Waiter("a", 0, present=False), Waiter("b", 1), Waiter("c", 2), Waiter("d", 3)]
    assert fifo_matchmaker(waiters, 2) == ["b", "c"]
    assert fifo_matchmaker(waiters, 3) == ["b", "c", "d"]
    assert fifo_matchmaker(waiters, 4) is None
    assert fifo_matchmaker([], 1) is None


# -- latency-aware matchmaker --------------------------------------------------------------------------------
def test_latency_pairs_within_budget() -> None:
    pick = latency_aware_matchmaker(100)
    assert pick([Waiter("a", 0, 40), Waiter("b", 1, 60)], 2) == ["a", "b"]  # 100 <= 100
    assert pick([Waiter("a", 0, 40), Waiter("b", 1, 61)], 2) is None


def test_latency_skips_a_far_partner_for_a_near_one() -> None:
    pick = latency_aware_matchmaker(100)
    waiters = [Waiter("a", 0, 30), Waiter("far", 1, 90), Waiter("near", 2, 50)]
    assert pick(waiters, 2) == ["a", "near"]


def test_latency_oldest_anchor_first_then_later_ones() -> None:
    pick = latency_aware_matchmaker(100)
    waiters = [Waiter("slow", 0, 95), Waiter("b", 1, 20), Waiter("c", 2, 30)]
    assert pick(waiters, 2) == ["b", "c"]


def test_latency_groups_of_three_check_every_pair() -> None:
    pick = latency_aware_matchmaker(100)
    waiters = [Waiter("a", 0, 10), Waiter("b", 1, 85), Waiter("c", 2, 85), Waiter("d", 3, 15)]
    # b fits with a but b+c = 170: c is skipped; d fits with both a and b.
    assert pick(waiters, 3) == ["a", "b", "d"]


def test_latency_unknown_rtt_only_matches_unknown() -> None:
    pick = latency_aware_matchmaker(100)
    assert pick([Waiter("a", 0, None), Waiter("b", 1, 10)], 2) is None
    assert pick([Waiter("a", 0, None), Waiter("b", 1, 10), Waiter("c", 2, None)], 2) == ["a", "c"]


def test_latency_ignores_absent_waiters() -> None:
    pick = latency_aware_matchmaker(100)
    assert pick([Waiter("a", 0, 10, present=False), Waiter("b", 1, 10)], 2) is None
    assert pick([Waiter("a", 0, 10, present=False), Waiter("b", 1, 10), Waiter("c", 2, 10)], 2) == ["b", "c"]


def test_latency_group_of_one() -> None:
    pick = latency_aware_matchmaker(100)
    assert pick([Waiter("a", 0, 10)], 1) == ["a"]
    assert pick([Waiter("a", 0, 10), Waiter("b", 1, 10)], 1) == ["a"]


def test_room_with_latency_matchmaker() -> None:
    room = WaitingRoom(2, 60, matchmaker=latency_aware_matchmaker(80))
    assert room.join("a", 0, rtt_ms=50) is None
    assert room.join("b", 1, rtt_ms=50) is None  # 100 > 80
    assert room.join("c", 2, rtt_ms=20) == ["a", "c"]
    assert room.waiting() == ["b"]
    assert room.set_presence("b", True, rtt_ms=10) is None  # alone now
    assert room.join("d", 3, rtt_ms=60) == ["b", "d"]


# -- property: random operation sequences -------------------------------------------------------------------
PIDS = [f"p{i}" for i in range(12)]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.sampled_from(PIDS), st.one_of(st.none(), st.floats(0, 200))),
        st.tuples(st.just("leave"), st.sampled_from(PIDS)),
        st.tuples(st.just("presence"), st.sampled_from(PIDS), st.booleans(), st.one_of(st.none(), st.floats(0, 200))),
        st.tuples(st.just("expire")),
        st.tuples(st.just("tick"), st.floats(0, 20)),
    ),
    max_size=80,
)


def run_sequence(room: WaitingRoom, sequence: list[tuple], fifo: bool) -> None:
    now = 0.0
    waiting: dict[str, list] = {}  # model: pid -> [joined_at, present], in arrival order
    in_game: set[str] = set()
    gone: set[str] = set()  # expired or left: they went on elsewhere

    def take(group: list[str] | None) -> None:
        if group is None:
            return
        assert len(group) == room.group_size
        assert len(set(group)) == len(group)
        for pid in group:
            assert pid in waiting, f"{pid} was grouped without waiting"
            assert pid not in in_game, f"{pid} put in two groups"
            assert waiting[pid][1], f"absent {pid} was grouped"
        if fifo:
            present = [p for p, (_, here) in waiting.items() if here]
            assert group == present[: room.group_size]
        for pid in group:
            del waiting[pid]
            in_game.add(pid)

    for op in sequence:
        kind = op[0]
        if kind == "tick":
            now += op[1]
        elif kind == "join":
            pid = op[1]
            if pid in in_game:
                continue  # a participant in a game does not come back to this room
            gone.discard(pid)
            if pid not in waiting:
                waiting[pid] = [now, True]
            else:
                waiting[pid][1] = True  # a join (present=True) says the page is there again; arrival time kept
            take(room.join(pid, now, rtt_ms=op[2]))
        elif kind == "leave":
            assert room.leave(op[1]) == (op[1] in waiting)
            if waiting.pop(op[1], None) is not None:
                gone.add(op[1])
        elif kind == "presence":
            pid, present = op[1], op[2]
            result = room.set_presence(pid, present, rtt_ms=op[3])
            if pid in waiting:
                waiting[pid][1] = present
            if not present or pid not in waiting:
                assert result is None
            take(result)
        elif kind == "expire":
            expected = [p for p, (joined, _) in waiting.items() if now - joined >= room.timeout_s]
            assert room.expire(now) == expected
            for pid in expected:
                del waiting[pid]
                gone.add(pid)
        # Nobody is lost or duplicated: the room holds exactly the model's waiters, in arrival order.
        assert room.waiting() == list(waiting)
        assert not set(room.waiting()) & in_game
        for place, pid in enumerate(waiting, start=1):
            assert room.position(pid) == place
        if fifo:
            # FIFO never leaves a startable group waiting.
            assert sum(1 for _, here in waiting.values() if here) < room.group_size


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 4), timeout=st.floats(1, 50), sequence=ops)
def test_fifo_room_never_double_books_or_loses_anyone(size: int, timeout: float, sequence: list[tuple]) -> None:
    run_sequence(WaitingRoom(size, timeout), sequence, fifo=True)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(2, 4), timeout=st.floats(1, 50), budget=st.floats(20, 300), sequence=ops)
def test_latency_room_never_double_books_or_loses_anyone(size: int, timeout: float, budget: float,
                                                        sequence: list[tuple]) -> None:
    run_sequence(WaitingRoom(size, timeout, matchmaker=latency_aware_matchmaker(budget)), sequence, fifo=False)
