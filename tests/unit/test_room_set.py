"""RoomSet, the waiting rooms of a game mode, on both backends: in this process and in Redis (a real
redis-server). Every case of the table below runs on each backend and must give the same groups and the same
``waiting`` notices; then the cases only shared rooms have: two processes (two RoomSets with their own Socket.IO
stand-in and Redis connection) forming disjoint groups from 100 concurrent joins, each group started once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from mode_fakes import FakeHooks, FakeSio
from redis.asyncio import Redis
from redis_server import RedisServer
from still_env import still_game

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
from interactive_gym.server.flow.participants import Participant, Status
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.modes.waiting import KEEP_GROUP_NOTICE, RoomSet, shared_room_problems
from interactive_gym.server.rooms import LocalRoom, Room

T0 = 1_800_000_000.0  # wall-clock seconds, as shared rooms require
TIMEOUT_S = 30.0


def game(scene_id: str, humans: int = 2, **kwargs: Any) -> GymScene:
    """A server-mode scene of ``humans`` humans that times its waiters out after ``TIMEOUT_S``."""
    kwargs.setdefault("waiting_room_timeout_s", TIMEOUT_S)
    return still_game(scene_id, humans, **kwargs)


def staged(*scenes: GymScene) -> list[GymScene]:
    config = RemoteConfig().experiment("room_set", stager=Stager([*scenes, EndScene("end")]))
    config.validate()
    return list(scenes)


class Process:
    """One server process: its participants, its Socket.IO stand-in, its RoomSet."""

    def __init__(self, rooms: RoomSet, hooks: FakeHooks, sio: FakeSio) -> None:
        self.rooms, self.hooks, self.sio = rooms, hooks, sio

    def person(self, pid: str, scenes: list[GymScene], **kwargs: Any) -> Participant:
        participant = Participant(pid, {}, list(scenes), tab_id=pid, sid=f"sid-{pid}", **kwargs)
        self.hooks.people[pid] = participant
        return participant

    def told(self, pid: str) -> list[dict[str, Any]]:
        return self.sio.to(f"sid-{pid}")


class Backend:
    """Makes processes whose rooms are in-process (``url`` None) or share one Redis under a fresh prefix."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self.prefix = f"t{uuid.uuid4().hex[:10]}"
        self.clients: list[Redis] = []

    def process(self, people: dict[str, Participant] | None = None, groups: GroupMemory | None = None) -> Process:
        sio = FakeSio()
        hooks = FakeHooks({} if people is None else people, sio)
        client = None
        if self.url is not None:
            client = Redis.from_url(self.url, max_connections=32)  # one client per process, as two workers
            self.clients.append(client)
        return Process(RoomSet(sio, hooks, groups, redis=client, prefix=self.prefix), hooks, sio)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()


def run(backend: Backend, body: Callable[[Backend], Awaitable[Any]]) -> Any:
    """``body(backend)`` in a fresh event loop in a worker thread (Playwright's loop may own this thread)."""

    async def main() -> Any:
        try:
            return await body(backend)
        finally:
            await backend.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


@pytest.fixture(params=["in_process", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    if request.param == "in_process":
        return Backend(None)
    server: RedisServer = request.getfixturevalue("redis_server")
    return Backend(server.url)


def ids(group: list[Participant] | None) -> list[str] | None:
    return None if group is None else [p.participant_id for p in group]


def waiting(position: int, count: int, needed: int = 2, scene_id: str = "duo", **extra: Any) -> dict[str, Any]:
    return {"scene_id": scene_id, "position": position, "needed": needed, "waiting": count, "timeout_s": TIMEOUT_S,
            **extra}


async def queue(process: Process, scene: GymScene) -> list[str]:
    return (await process.rooms.room_for(scene).snapshot()).waiting()


# -- the table: every case on both backends ----------------------------------------------------------------------
def test_a_group_forms_in_arrival_order_and_each_waiter_is_told_where_they_stand(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        ann, bob, cy = (p.person(pid, [scene]) for pid in ("ann", "bob", "cy"))
        assert await p.rooms.join(scene, ann, T0) is None
        assert p.told("ann") == [waiting(1, 1)]
        assert ids(await p.rooms.join(scene, bob, T0 + 1)) == ["ann", "bob"]
        assert p.told("bob") == [] and await queue(p, scene) == []  # the room is empty once the group formed
        assert await p.rooms.join(scene, cy, T0 + 2) is None
        assert p.told("cy") == [waiting(1, 1)] and p.told("ann") == [waiting(1, 1)]

    run(backend, body)


def test_a_repeated_join_keeps_the_place_and_the_first_arrival_time(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("trio", humans=3))
        ann, bob = p.person("ann", [scene]), p.person("bob", [scene])
        await p.rooms.join(scene, ann, T0)
        await p.rooms.join(scene, bob, T0 + 1)
        assert await p.rooms.join(scene, ann, T0 + 5) is None
        snapshot = await p.rooms.room_for(scene).snapshot()
        assert snapshot.waiting() == ["ann", "bob"] and snapshot.waiter("ann").joined_at == T0  # type: ignore[union-attr]
        assert p.told("ann")[-1] == waiting(1, 2, needed=3, scene_id="trio")
        await p.rooms.expire(T0 + TIMEOUT_S)
        assert p.hooks.timeouts == ["ann"]  # by the first arrival time, not the second

    run(backend, body)


def test_a_grouped_participant_is_not_queued_again_until_their_game_started(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        ann, bob, cy = (p.person(pid, [scene]) for pid in ("ann", "bob", "cy"))
        await p.rooms.join(scene, ann, T0)
        group = await p.rooms.join(scene, bob, T0 + 1)
        assert group is not None
        assert await p.rooms.join(scene, ann, T0 + 2) is None  # e.g. a page re-sending its join meanwhile
        assert await p.rooms.join(scene, cy, T0 + 3) is None
        assert await queue(p, scene) == ["cy"]  # ann is in her group only
        await p.rooms.started(scene, group, "game-1")
        assert ids(await p.rooms.join(scene, ann, T0 + 4)) == ["cy", "ann"]  # a later game (a Repeat) may start

    run(backend, body)


def test_a_hidden_waiter_is_counted_but_matched_only_once_back(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        ann, bob = p.person("ann", [scene], visible=False), p.person("bob", [scene])
        assert await p.rooms.join(scene, ann, T0) is None
        assert await p.rooms.join(scene, bob, T0 + 1) is None
        assert p.told("bob") == [waiting(2, 2)]
        ann.visible = True
        assert ids(await p.rooms.set_presence(scene, ann)) == ["ann", "bob"]

    run(backend, body)


def test_a_presence_change_of_someone_not_waiting_changes_and_tells_nothing(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        ann, cy = p.person("ann", [scene]), p.person("cy", [scene])
        await p.rooms.join(scene, ann, T0)
        before = len(p.sio.emits)
        cy.visible = False
        assert await p.rooms.set_presence(scene, cy) is None
        assert len(p.sio.emits) == before and await queue(p, scene) == ["ann"]

    run(backend, body)


def test_leaving_moves_the_others_up_and_a_second_leave_tells_nobody(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("four", humans=4))
        people = [p.person(pid, [scene]) for pid in ("ann", "bob", "cy")]
        for i, person in enumerate(people):
            await p.rooms.join(scene, person, T0 + i)
        await p.rooms.leave(scene, "ann")
        assert p.told("bob")[-1] == waiting(1, 2, needed=4, scene_id="four")
        assert p.told("cy")[-1] == waiting(2, 2, needed=4, scene_id="four")
        before = len(p.sio.emits)
        await p.rooms.leave(scene, "ann")
        assert len(p.sio.emits) == before and await queue(p, scene) == ["bob", "cy"]

    run(backend, body)


def test_expiry_hands_each_waiter_past_the_timeout_to_the_flow_once(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("trio", humans=3))
        await p.rooms.join(scene, p.person("ann", [scene]), T0)
        await p.rooms.join(scene, p.person("bob", [scene]), T0 + 10)
        await p.rooms.expire(T0 + TIMEOUT_S - 0.5)
        assert p.hooks.timeouts == []
        await p.rooms.expire(T0 + TIMEOUT_S)
        assert p.hooks.timeouts == ["ann"]
        assert p.told("bob")[-1] == waiting(1, 1, needed=3, scene_id="trio")
        await p.rooms.expire(T0 + TIMEOUT_S)
        assert p.hooks.timeouts == ["ann"]
        await p.rooms.expire(T0 + TIMEOUT_S + 10)
        assert p.hooks.timeouts == ["ann", "bob"] and await queue(p, scene) == []

    run(backend, body)


def test_a_group_that_cannot_start_goes_back_in_arrival_order_with_the_notice(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        ann, bob, cy = (p.person(pid, [scene]) for pid in ("ann", "bob", "cy"))
        await p.rooms.join(scene, ann, T0)
        group = await p.rooms.join(scene, bob, T0 + 1)
        assert group is not None
        await p.rooms.requeue(scene, group, notice="Could not start.")
        snapshot = await p.rooms.room_for(scene).snapshot()
        assert snapshot.waiting() == ["ann", "bob"]  # no new match on the way back: no tight retry loop
        assert [snapshot.waiter(pid).joined_at for pid in ("ann", "bob")] == [T0, T0 + 1]  # type: ignore[union-attr]
        assert p.told("ann")[-1] == waiting(1, 2, notice="Could not start.")
        assert p.told("bob")[-1] == waiting(2, 2, notice="Could not start.")
        assert ids(await p.rooms.join(scene, cy, T0 + 2)) == ["ann", "bob"]  # the next change matches the oldest
        assert p.told("cy") == [waiting(1, 1)]

    run(backend, body)


@pytest.mark.parametrize("matchmaker", [
    pytest.param(lambda waiters, size: 1 / 0, id="raises"),
    pytest.param(lambda waiters, size: [w.participant_id for w in waiters][:1] + ["ghost"], id="picks-a-stranger"),
])
def test_a_broken_matchmaker_is_contained_counted_and_leaves_the_queue_intact(backend: Backend,
                                                                              matchmaker: Any) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo", matchmaker=matchmaker))
        assert await p.rooms.join(scene, p.person("ann", [scene]), T0) is None
        assert await p.rooms.join(scene, p.person("bob", [scene]), T0 + 1) is None
        assert p.rooms.matchmaker_failures == 2 and p.rooms.room_failures == 0
        assert await queue(p, scene) == ["ann", "bob"]
        assert p.told("bob") == [waiting(2, 2)]

    run(backend, body)


def test_started_records_groups_of_several_and_releases_every_group(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        scenes = staged(game("solo", humans=1), game("duo"))
        p = b.process(groups=GroupMemory(["duo"]))
        solo, duo = scenes
        ann, bob = p.person("ann", scenes), p.person("bob", scenes)
        group = await p.rooms.join(solo, ann, T0)
        assert ids(group) == ["ann"]
        await p.rooms.started(solo, group or [], "g-solo")
        assert ids(await p.rooms.join(solo, ann, T0 + 1)) == ["ann"]  # released: a repeat starts at once
        ann.index = bob.index = 1
        await p.rooms.join(scene=duo, participant=bob, now=T0 + 2)
        pair = await p.rooms.join(duo, ann, T0 + 3)
        await p.rooms.started(duo, pair or [], "g-duo")
        assert p.hooks.events == [("group_formed", {"members": ["bob", "ann"], "mode": "server"})]
        assert p.rooms.groups.group_of("duo", "ann") == ("bob", "ann")

    run(backend, body)


def test_a_group_with_a_member_nobody_here_serves_goes_back_whole(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        await p.rooms.join(scene, p.person("ghost", [scene]), T0)
        del p.hooks.people["ghost"]
        assert await p.rooms.join(scene, p.person("ann", [scene]), T0 + 1) is None  # never a game short
        assert await queue(p, scene) == ["ghost", "ann"]
        assert p.told("ann")[-1] == waiting(2, 2)

    run(backend, body)


def test_both_rooms_answer_requeue_and_release_alike(backend: Backend) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        room: Room = p.rooms.room_for(scene)
        assert isinstance(room, LocalRoom) == (b.url is None)
        await room.join("a", T0)
        first = await room.join("b", T0 + 1)
        assert first is not None and first.members == ("a", "b")
        await room.join("b", T0 + 2)  # grouped: not queued again
        assert await room.requeue(first.group_id) == ["a", "b"]
        assert await room.requeue(first.group_id) == []
        again = await room.join("c", T0 + 3)
        assert again is not None and again.members == ("a", "b") and again.group_id != first.group_id
        assert await room.leave("a") is False
        assert await room.release(again.group_id) is True and await room.release(again.group_id) is False
        assert await room.join("a", T0 + 4) is not None  # released: a and c pair up
        assert (await room.snapshot()).waiting() == [] == room.waiting()

    run(backend, body)


# -- only the in-process rooms: keep_group_from (its group memory is per process so far) ----------------------
def test_keep_group_waits_for_the_former_partner_and_gives_up_when_they_finished() -> None:
    async def body(b: Backend) -> None:
        first, second = staged(game("first"), game("second", keep_group_from="first"))
        p = b.process(groups=GroupMemory(["first"]))
        ann, bob, cy = (p.person(pid, [first, second]) for pid in ("ann", "bob", "cy"))
        await p.rooms.join(first, ann, T0)
        await p.rooms.started(first, await p.rooms.join(first, bob, T0 + 1) or [], "g1")
        ann.index = cy.index = 1
        assert await p.rooms.join(second, ann, T0 + 2) is None
        assert await p.rooms.join(second, cy, T0 + 3) is None  # ann waits for bob, not for anyone
        assert p.told("ann")[-1] == waiting(1, 1, scene_id="second", notice=KEEP_GROUP_NOTICE)
        bob.status = Status.COMPLETED
        await p.rooms.expire(T0 + 4)
        assert p.hooks.timeouts == ["ann"] and await queue(p, second) == ["cy"]

    run(Backend(None), body)


# -- only shared rooms ------------------------------------------------------------------------------------------
def test_shared_rooms_refuse_keep_group_and_unusable_scene_ids_with_what_to_change(redis_server: RedisServer) -> None:
    first, second = staged(game("first"), game("second", keep_group_from="first"))
    assert shared_room_problems([first]) == []
    assert shared_room_problems([second]) == [
        "scene 'second': keep_group_from is not supported with several server processes yet; run one process "
        "or remove keep_group_from"]

    async def body(b: Backend) -> None:
        p = b.process()
        with pytest.raises(ValueError, match="keep_group_from is not supported"):
            p.rooms.room_for(second)

    run(Backend(redis_server.url), body)


def test_shared_rooms_refuse_a_monotonic_clock(redis_server: RedisServer) -> None:
    async def body(b: Backend) -> None:
        p = b.process()
        (scene,) = staged(game("duo"))
        with pytest.raises(ValueError, match=r"time\.time\(\)"):
            await p.rooms.join(scene, p.person("ann", [scene]), 12345.0)
        assert await queue(p, scene) == []

    run(Backend(redis_server.url), body)


def test_each_process_expires_its_own_waiters_and_relays_changes_made_elsewhere(redis_server: RedisServer) -> None:
    async def body(b: Backend) -> None:
        (scene,) = staged(game("trio", humans=3))
        a, other = b.process(), b.process()
        await a.rooms.join(scene, a.person("ann", [scene]), T0)
        await other.rooms.join(scene, other.person("bob", [scene]), T0 + 1)
        assert a.told("ann") == [waiting(1, 1, needed=3, scene_id="trio")]  # not told yet of bob
        await a.rooms.expire(T0 + 2)  # housekeeping: the queue changed elsewhere
        assert a.told("ann")[-1] == waiting(1, 2, needed=3, scene_id="trio")
        told = len(a.told("ann"))
        await a.rooms.expire(T0 + 3)
        assert len(a.told("ann")) == told  # unchanged: not told again
        await a.rooms.expire(T0 + TIMEOUT_S + 5)
        assert a.hooks.timeouts == ["ann"] and await queue(a, scene) == ["bob"]  # bob is the other's to expire
        await other.rooms.expire(T0 + TIMEOUT_S + 5)
        assert other.hooks.timeouts == ["bob"] and a.hooks.timeouts == ["ann"]

    run(Backend(redis_server.url), body)


def test_100_concurrent_joins_through_two_processes_form_disjoint_groups_each_started_once(
        redis_server: RedisServer) -> None:
    async def body(b: Backend) -> dict[str, Any]:
        (scene,) = staged(game("duo"))
        # Both processes can look every participant up (the shared registry of several workers), so any
        # group can start in whichever process formed it; each tells its waiters through its own sio.
        people: dict[str, Participant] = {}
        processes = [b.process(people), b.process(people)]
        joins = [(processes[i % 2], processes[i % 2].person(f"p{i:03d}", [scene])) for i in range(100)]

        async def join_and_start(process: Process, participant: Participant) -> tuple[int, list[str]] | None:
            group = await process.rooms.join(scene, participant, T0 + 0.001 * int(participant.participant_id[1:]))
            if group is None:
                return None
            await process.rooms.started(scene, group, f"g-{participant.participant_id}")
            return processes.index(process), [p.participant_id for p in group]

        results = [r for r in await asyncio.gather(*(join_and_start(p, x) for p, x in joins)) if r is not None]
        recorded = [(i, data["members"]) for i, p in enumerate(processes) for kind, data in p.hooks.events
                    if kind == "group_formed"]
        room = processes[0].rooms.room_for(scene)
        grouped = await b.clients[0].hlen(f"{b.prefix}:{{duo}}:grouped")
        return {"results": results, "recorded": recorded, "left": (await room.snapshot()).waiting(),
                "grouped": grouped}

    out = run(Backend(redis_server.url), body)
    members = [pid for _, group in out["results"] for pid in group]
    assert len(members) == len(set(members)), "a participant is in two groups"
    assert sorted(members) == [f"p{i:03d}" for i in range(100)] and out["left"] == []
    assert all(len(group) == 2 for _, group in out["results"])
    assert sorted(map(tuple, (g for _, g in out["recorded"]))) == sorted(map(tuple, (g for _, g in out["results"])))
    assert sorted(out["recorded"]) == sorted(out["results"])  # each started once, by the process that formed it
    assert {i for i, _ in out["results"]} == {0, 1}  # both processes formed groups
    assert out["grouped"] == 0  # every started group was released
