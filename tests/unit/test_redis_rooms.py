"""The Redis waiting room against a real redis-server: the in-process room's results for the same operations,
repeated and concurrent joins that queue a participant once, conflicts decided again, limits, bad records.

The 500 joins from two processes are in test_redis_rooms_processes.py.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis
from redis_server import RedisServer

from interactive_gym.server.cluster.redis_rooms import RedisWaitingRoom, RoomContentionError, RoomFullError
from interactive_gym.server.cluster.room_records import MAX_ATTRS_BYTES, CorruptRoomError
from interactive_gym.server.waiting_room import (
    Matchmaker,
    Waiter,
    WaitingRoom,
    fifo_matchmaker,
    latency_aware_matchmaker,
    remembered_group_matchmaker,
)


def _room_name() -> str:
    return f"scene-{uuid.uuid4().hex[:12]}"


def _run(url: str, body: Callable[[Redis], Awaitable[Any]]) -> Any:
    """Runs ``body(client)`` in a fresh event loop with its own client (closed at the end)."""

    async def main() -> Any:
        client = Redis.from_url(url)
        try:
            return await body(client)
        finally:
            await client.aclose()

    return asyncio.run(main())


class Reference:
    """The specification: the in-process WaitingRoom, plus 'a participant in a formed group is not queued again'."""

    def __init__(self, room: WaitingRoom) -> None:
        self.room = room
        self.grouped: set[str] = set()

    async def join(self, pid: str, now: float, rtt_ms: float | None = None, present: bool = True) -> Any:
        if pid in self.grouped:
            return None
        return self._took(self.room.join(pid, now, rtt_ms, present))

    async def set_presence(self, pid: str, present: bool, rtt_ms: float | None = None) -> Any:
        return self._took(self.room.set_presence(pid, present, rtt_ms))

    async def leave(self, pid: str) -> bool:
        return self.room.leave(pid)

    async def expire(self, now: float) -> list[str]:
        return self.room.expire(now)

    async def state(self) -> list[Waiter]:
        return [w for pid in self.room.waiting() if (w := self.room.waiter(pid)) is not None]

    def _took(self, group: list[str] | None) -> list[str] | None:
        self.grouped.update(group or ())
        return group


class InRedis:
    """The Redis room behind the same calls, results in the in-process room's shapes."""

    def __init__(self, room: RedisWaitingRoom) -> None:
        self.room = room

    async def join(self, pid: str, now: float, rtt_ms: float | None = None, present: bool = True) -> Any:
        group = await self.room.join(pid, now, rtt_ms, present)
        return None if group is None else list(group.members)

    async def set_presence(self, pid: str, present: bool, rtt_ms: float | None = None) -> Any:
        group = await self.room.set_presence(pid, present, rtt_ms)
        return None if group is None else list(group.members)

    async def leave(self, pid: str) -> bool:
        return await self.room.leave(pid)

    async def expire(self, now: float) -> list[str]:
        return await self.room.expire(now)

    async def state(self) -> list[Waiter]:
        return list((await self.room.snapshot()).waiters)


async def _trace(room: Reference | InRedis, ops: Sequence[tuple[Any, ...]]) -> list[Any]:
    """Each operation's result (or the error it raised) and the queue after it."""
    out: list[Any] = []
    for name, *args in ops:
        try:
            result = await getattr(room, name)(*args)
        except Exception as err:  # noqa: BLE001 - a raising matchmaker is part of the table
            result = ("raised", type(err).__name__)
        # Copies: the in-process room changes its Waiter objects in place later.
        out.append((name, args, result, [(w.participant_id, w.joined_at, w.rtt_ms, w.present, dict(w.attrs))
                                         for w in await room.state()]))
    return out


def _raising(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
    if len(waiters) >= 2:
        raise RuntimeError("broken matchmaker")
    return None


def _duplicate_pick(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
    return [waiters[0].participant_id] * group_size if len(waiters) >= group_size else None


REMEMBERED = {"a": ("c", "a"), "c": ("c", "a"), "b": ("b", "d"), "d": ("b", "d")}

# name: (group size, timeout, matchmaker, operations, groups formed in order (what both rooms must give))
CASES: dict[str, tuple[int, float, Matchmaker, list[tuple[Any, ...]], list[list[str]]]] = {
    "fifo pairs in arrival order": (
        2, 60, fifo_matchmaker,
        [("join", "a", 1), ("join", "b", 2), ("join", "c", 3), ("join", "d", 4), ("join", "e", 5)],
        [["a", "b"], ["c", "d"]]),
    "a repeated join keeps the place and arrival time and updates presence": (
        2, 60, fifo_matchmaker,
        [("join", "a", 1, None, False), ("join", "b", 2), ("join", "b", 3, 30.0), ("join", "a", 4, None, True)],
        [["a", "b"]]),
    "an absent waiter is passed over and completes a group on return": (
        2, 60, fifo_matchmaker,
        [("join", "a", 1), ("set_presence", "a", False), ("join", "b", 2), ("set_presence", "a", True),
         ("set_presence", "zz", True), ("join", "c", 3)],
        [["a", "b"]]),
    "leave, and leave of someone not waiting": (
        2, 60, fifo_matchmaker,
        [("join", "a", 1), ("leave", "a"), ("leave", "a"), ("leave", "nobody"), ("join", "b", 2), ("join", "a", 3)],
        [["b", "a"]]),
    "expiry at exactly the timeout, absent waiters too": (
        3, 10, fifo_matchmaker,
        [("join", "a", 0), ("join", "b", 5, None, False), ("expire", 9.99), ("expire", 10), ("join", "c", 12),
         ("expire", 15), ("expire", 40)],
        []),
    "members of a formed group are not queued again": (
        2, 60, fifo_matchmaker,
        [("join", "a", 1), ("join", "b", 2), ("join", "a", 3), ("join", "b", 4), ("join", "c", 5)],
        [["a", "b"]]),
    "groups of one": (
        1, 60, fifo_matchmaker, [("join", "a", 1), ("join", "b", 2, None, False), ("set_presence", "b", True)],
        [["a"], ["b"]]),
    "groups of three wait for the third present waiter": (
        3, 60, fifo_matchmaker,
        [("join", "a", 1), ("join", "b", 2, None, False), ("join", "c", 3), ("join", "d", 4),
         ("join", "e", 5), ("set_presence", "b", True), ("join", "f", 6)],
        [["a", "c", "d"], ["b", "e", "f"]]),
    "latency-aware pairs, unknown RTTs together, RTT updated by presence": (
        2, 60, latency_aware_matchmaker(100),
        [("join", "a", 1, 80.0), ("join", "b", 2, 50.0), ("join", "c", 3, 10.0), ("join", "d", 4),
         ("join", "e", 5), ("join", "f", 6, 70.0), ("set_presence", "b", True, 20.0)],
        [["a", "c"], ["d", "e"], ["b", "f"]]),
    "groups remembered from an earlier scene, in role order": (
        2, 60, remembered_group_matchmaker(REMEMBERED.get),
        [("join", "a", 1), ("join", "b", 2), ("join", "x", 3), ("join", "c", 4), ("join", "y", 5),
         ("join", "d", 6)],
        [["c", "a"], ["x", "y"], ["b", "d"]]),
    "a raising matchmaker leaves the joiner queued": (
        2, 60, _raising, [("join", "a", 1), ("join", "b", 2), ("leave", "a")], []),
    "an invalid group is refused and the joiner stays queued": (
        2, 60, _duplicate_pick, [("join", "a", 1), ("join", "b", 2), ("expire", 61)], []),
}


def _groups(trace: list[Any]) -> list[list[str]]:
    return [result for name, _, result, _ in trace if name in ("join", "set_presence") and isinstance(result, list)]


@pytest.mark.parametrize("case", list(CASES))
def test_the_redis_room_gives_the_in_process_results(redis_server: RedisServer, case: str) -> None:
    group_size, timeout_s, matchmaker, ops, groups = CASES[case]
    expected = asyncio.run(_trace(Reference(WaitingRoom(group_size, timeout_s, matchmaker)), ops))

    async def body(client: Redis) -> list[Any]:
        room = RedisWaitingRoom(client, _room_name(), group_size, timeout_s, matchmaker)
        return await _trace(InRedis(room), ops)

    got = _run(redis_server.url, body)
    assert got == expected
    assert _groups(got) == groups


_OP = st.one_of(
    st.tuples(st.just("join"), st.sampled_from("abcdef"), st.sampled_from([None, 10.0, 45.0, 90.0]), st.booleans()),
    st.tuples(st.just("set_presence"), st.sampled_from("abcdef"), st.booleans(),
              st.sampled_from([None, 10.0, 60.0])),
    st.tuples(st.just("leave"), st.sampled_from("abcdef")),
    st.tuples(st.just("expire")),
)


@settings(max_examples=60, deadline=None)
@given(group_size=st.integers(1, 3), latency=st.booleans(), timeout_s=st.sampled_from([3.0, 8.0]),
       steps=st.lists(st.tuples(_OP, st.sampled_from([0.0, 1.0, 2.5])), max_size=25))
def test_any_sequence_gives_the_in_process_results(redis_server: RedisServer, group_size: int, latency: bool,
                                                   timeout_s: float, steps: list[Any]) -> None:
    matchmaker = latency_aware_matchmaker(100) if latency else fifo_matchmaker
    now, ops = 0.0, []
    for op, gap in steps:  # the clock only moves forward, as one process's clock does
        now += gap
        name, *rest = op
        if name == "join":
            ops.append(("join", rest[0], now, rest[1], rest[2]))
        elif name == "expire":
            ops.append(("expire", now))
        else:
            ops.append((name, *rest))
    expected = asyncio.run(_trace(Reference(WaitingRoom(group_size, timeout_s, matchmaker)), ops))
    got = _run(redis_server.url, lambda client: _trace(
        InRedis(RedisWaitingRoom(client, _room_name(), group_size, timeout_s, matchmaker)), ops))
    assert got == expected


def test_a_join_repeated_queues_once_and_a_grouped_participant_is_not_queued_again(
        redis_server: RedisServer) -> None:
    async def body(client: Redis) -> None:
        room = RedisWaitingRoom(client, _room_name(), 2, 60)
        assert await room.join("a", 1.0, attrs={"lang": "en"}) is None
        assert await room.join("a", 2.0, attrs={"lang": "fr"}) is None
        snap = await room.snapshot()
        assert snap.waiting() == ["a"]
        assert snap.waiter("a") == Waiter("a", 1.0, None, True, {"lang": "en"})
        group = await room.join("b", 3.0)
        assert group is not None and group.members == ("a", "b")
        assert await room.join("a", 4.0) is None
        assert await room.join("b", 4.0) is None
        assert (await room.snapshot()).waiting() == []
        assert await room.group_of("a") == group
        assert await room.group_of("b") == group
        assert await room.group_of("c") is None

    _run(redis_server.url, body)


def test_concurrent_joins_of_one_participant_from_two_workers_queue_them_once(redis_server: RedisServer) -> None:
    name = _room_name()

    async def body(client: Redis) -> None:
        other = Redis.from_url(redis_server.url)
        try:
            # Two room objects with their own clients: two workers (each with its own turn lock).
            workers = [RedisWaitingRoom(client, name, 2, 60), RedisWaitingRoom(other, name, 2, 60)]
            results = await asyncio.gather(*(workers[i % 2].join("a", 1.0 + i) for i in range(20)))
            assert results == [None] * 20
            snap = await workers[0].snapshot()
            assert snap.waiting() == ["a"]
            joined_at = snap.waiters[0].joined_at
            assert joined_at in {1.0 + i for i in range(20)}

            results = await asyncio.gather(*(workers[i % 2].join("b", 30.0 + i) for i in range(20)))
            formed = [g for g in results if g is not None]
            assert len(formed) == 1 and formed[0].members == ("a", "b")
            assert (await workers[1].snapshot()).waiting() == []
            assert await workers[1].group_of("b") == formed[0]
        finally:
            await other.aclose()

    _run(redis_server.url, body)


def _interfering(url: str, name: str, pid: str, seen: list[Any]) -> Matchmaker:
    """FIFO, but on its first call another worker joins ``pid`` to the room and commits before it returns:
    a conflict between this worker's read and its commit, made to happen rather than hoped for."""
    calls = 0

    def pick(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
        nonlocal calls
        calls += 1
        if calls == 1:
            def other_worker() -> None:
                seen.append(_run(url, lambda client: RedisWaitingRoom(client, name, group_size, 60).join(pid, 2.5)))

            thread = threading.Thread(target=other_worker)
            thread.start()
            thread.join()
        return fifo_matchmaker(waiters, group_size)

    return pick


def test_a_change_by_another_worker_between_read_and_commit_is_decided_again(redis_server: RedisServer) -> None:
    name, seen = _room_name(), []

    async def body(client: Redis) -> None:
        assert await RedisWaitingRoom(client, name, 2, 60).join("a", 1.0) is None
        room = RedisWaitingRoom(client, name, 2, 60, _interfering(redis_server.url, name, "c", seen))
        # b's first decision would be (a, b); meanwhile the other worker formed (a, c). Without the WATCH, a
        # would be in two groups; with it, b's commit fails, b reads again and waits.
        assert await room.join("b", 2.0) is None
        assert room.conflicts == 1
        assert len(seen) == 1 and seen[0] is not None and seen[0].members == ("a", "c")
        assert (await room.snapshot()).waiting() == ["b"]
        assert await room.group_of("a") == seen[0]
        assert await room.group_of("b") is None

    _run(redis_server.url, body)


def test_a_room_changed_under_every_attempt_fails_clearly_and_changes_nothing(redis_server: RedisServer) -> None:
    name, seen = _room_name(), []

    async def body(client: Redis) -> None:
        assert await RedisWaitingRoom(client, name, 2, 60).join("a", 1.0) is None
        room = RedisWaitingRoom(client, name, 2, 60, _interfering(redis_server.url, name, "c", seen),
                                max_attempts=1)
        with pytest.raises(RoomContentionError, match="during each of 1 attempts; nothing was changed"):
            await room.join("b", 2.0)
        assert (await room.snapshot()).waiting() == []
        assert await room.group_of("b") is None

    _run(redis_server.url, body)


def test_concurrent_expiry_by_two_workers_hands_each_waiter_to_one(redis_server: RedisServer) -> None:
    name = _room_name()

    async def body(client: Redis) -> None:
        other = Redis.from_url(redis_server.url)
        try:
            workers = [RedisWaitingRoom(client, name, 2, 10), RedisWaitingRoom(other, name, 2, 10)]
            pids = [f"p{i}" for i in range(30)]
            for i, pid in enumerate(pids):
                await workers[i % 2].join(pid, float(i), present=False)
            first, second = await asyncio.gather(workers[0].expire(100.0), workers[1].expire(100.0))
            assert sorted(first + second) == sorted(pids)
            assert not set(first) & set(second)
            assert (await workers[0].snapshot()).waiting() == []
        finally:
            await other.aclose()

    _run(redis_server.url, body)


def test_a_group_that_cannot_start_goes_back_in_arrival_order_and_a_released_one_may_queue_again(
        redis_server: RedisServer) -> None:
    async def body(client: Redis) -> None:
        room = RedisWaitingRoom(client, _room_name(), 2, 60)
        await room.join("a", 1.0, 20.0)
        group = await room.join("b", 2.0)
        assert group is not None
        await room.join("c", 3.0, present=False)
        assert await room.requeue(group.group_id) == ["a", "b"]
        assert await room.requeue(group.group_id) == []
        snap = await room.snapshot()
        assert [(w.participant_id, w.joined_at, w.rtt_ms) for w in snap.waiters] == [
            ("a", 1.0, 20.0), ("b", 2.0, None), ("c", 3.0, None)]
        assert await room.group_of("a") is None

        again = await room.set_presence("c", True)  # no matching on requeue; the next change matches
        assert again is not None and again.members == ("a", "b")
        assert await room.release(again.group_id) is True
        assert await room.release(again.group_id) is False
        with_c = await room.join("a", 9.0)  # released: queued (and matched) again
        assert with_c is not None and with_c.members == ("c", "a")
        assert await room.group_of("b") is None

    _run(redis_server.url, body)


def test_bad_input_is_refused_before_anything_is_written(redis_server: RedisServer) -> None:
    name = _room_name()

    async def body(client: Redis) -> None:
        room = RedisWaitingRoom(client, name, 2, 60, max_waiters=2)
        for pid in ("", "a b", "x" * 65, 7, None, "ü"):
            with pytest.raises(ValueError, match="not a participant id"):
                await room.join(pid, 1.0)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=f"at most {MAX_ATTRS_BYTES}"):
            await room.join("a", 1.0, attrs={"note": "x" * MAX_ATTRS_BYTES})
        with pytest.raises(ValueError, match="attrs must be JSON"):
            await room.join("a", 1.0, attrs={"s": {1, 2}})
        with pytest.raises(ValueError, match="not a group id"):
            await room.requeue("../etc")
        assert await client.keys("*" + name + "*") == []

        await room.join("a", 1.0, present=False)
        await room.join("b", 2.0, present=False)
        with pytest.raises(RoomFullError, match="holds 2 already"):
            await room.join("c", 3.0)
        assert await room.join("a", 4.0, present=False) is None  # already waiting: not refused
        assert (await room.snapshot()).waiting() == ["a", "b"]

    _run(redis_server.url, body)
    for bad in ("", "two words", "{tag}", "x" * 129):
        with pytest.raises(ValueError, match="room name"):
            RedisWaitingRoom(None, bad, 2, 60)  # type: ignore[arg-type]


def test_a_record_this_code_did_not_write_is_reported_not_decided_on(redis_server: RedisServer) -> None:
    name = _room_name()

    async def body(client: Redis) -> None:
        room = RedisWaitingRoom(client, name, 2, 60)
        await room.join("a", 1.0)
        await client.hset(f"ig:{{{name}}}:waiters", "b", '{"seq": 1}')
        with pytest.raises(CorruptRoomError, match="'b'.*not a waiter record"):
            await room.join("c", 2.0)
        with pytest.raises(CorruptRoomError, match="'b'"):
            await room.snapshot()
        assert await client.hget(f"ig:{{{name}}}:waiters", "c") is None

    _run(redis_server.url, body)
