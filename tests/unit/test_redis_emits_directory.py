"""The room directory (which rooms have members on other processes) and the manager's publish rule, in process.

The directory is checked against a model of Redis: other hosts change the room's set and announce it on a
FIFO channel; this process's snapshot is read at some moment after its request and its reply arrives later,
interleaved with announcements; subscriptions break (announcements in flight are lost) and rooms close and
reopen. Once everything in flight has arrived, the view must equal the set.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections import deque
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.server.cluster.redis_emits import RedisEmitManager
from interactive_gym.server.cluster.room_directory import RoomDirectory
from interactive_gym.server.fast_socketio import JsonFirstPacket
from interactive_gym.server.latest_wins import LatestWins, LatestWinsFrame

KEY = ("/", "game-1")
OTHERS = ("h1", "h2", "h3")
STEPS = st.sampled_from(["flip:h1", "flip:h2", "flip:h3", "flip:me", "deliver", "read", "reply", "reconnect",
                         "reopen", "noise"])


@settings(max_examples=600, deadline=None)
@given(st.lists(STEPS, max_size=40))
def test_the_view_equals_the_set_once_nothing_is_in_flight(steps: list[str]) -> None:
    directory = RoomDirectory("me")
    directory.resubscribed()
    members: set[str] = {"me"}  # the Redis set; this process added itself with its snapshot request
    channel: deque[tuple[str, bool]] = deque()
    requests: deque[tuple[int, frozenset[str] | None]] = deque()  # (generation, set as read, once read)

    generation = directory.opened(KEY)
    assert generation is not None
    requests.append((generation, None))

    def read_all() -> None:
        for index, (gen, seen) in enumerate(requests):
            if seen is None:
                requests[index] = (gen, frozenset(members))

    for step in steps:
        if step.startswith("flip:"):
            host = step[5:]
            present = host not in members
            (members.add if present else members.discard)(host)
            channel.append((host, present))  # SADD/SREM first, then the announcement
        elif step == "deliver" and channel:
            directory.announced(KEY, *channel.popleft())
        elif step == "read" and requests and requests[0][1] is None:
            requests[0] = (requests[0][0], frozenset(members))
        elif step == "reply" and requests and requests[0][1] is not None:
            gen, seen = requests.popleft()
            assert seen is not None
            directory.snapshot(KEY, gen, seen)
        elif step == "reconnect":
            channel.clear()  # announcements in flight while the subscription was down are lost
            directory.unsubscribed()
            assert directory.only_here(KEY) is False
            requests.extend((gen, None) for _, gen in directory.resubscribed())
        elif step == "reopen":
            directory.closed(KEY)
            assert directory.remote_hosts(KEY) is None
            reopened = directory.opened(KEY)
            assert reopened is not None
            requests.append((reopened, None))
        elif step == "noise":
            directory.announced(("/", "another-room"), "h1", True)  # a room without a local member
            assert ("/", "another-room") not in directory
        if directory.only_here(KEY):
            # Never "only here" while a snapshot is due: the view must be complete to say so.
            assert all(gen != _generation(directory) for gen, _ in requests)
    read_all()
    while requests:
        gen, seen = requests.popleft()
        assert seen is not None
        directory.snapshot(KEY, gen, seen)
    while channel:
        directory.announced(KEY, *channel.popleft())
    assert directory.remote_hosts(KEY) == frozenset(members - {"me"})
    assert directory.only_here(KEY) is (members <= {"me"})


def _generation(directory: RoomDirectory) -> int:
    return directory._views[KEY].generation  # noqa: SLF001 - the test's model needs the current request


def test_views_opened_before_the_subscription_wait_for_it() -> None:
    directory = RoomDirectory("me")
    assert directory.opened(KEY) is None  # no snapshot yet: it could miss announcements
    assert directory.only_here(KEY) is False
    [(key, generation)] = directory.resubscribed()
    directory.snapshot(key, generation, ["me"])
    assert directory.only_here(KEY) is True


def test_a_stale_snapshot_is_ignored() -> None:
    directory = RoomDirectory("me")
    directory.resubscribed()
    old = directory.opened(KEY)
    directory.closed(KEY)
    new = directory.opened(KEY)
    assert old is not None and new is not None and old != new
    directory.snapshot(KEY, old, ["me"])
    assert directory.remote_hosts(KEY) is None
    directory.snapshot(KEY, new, ["me", "h1"])
    assert directory.remote_hosts(KEY) == {"h1"} and not directory.only_here(KEY)


# -- the manager's rule, without Redis (nothing here sends to Redis) ---------------------------------------------
class FakeEngine:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.ids = iter(f"s{i}" for i in range(1000))

    def generate_id(self) -> str:
        return next(self.ids)

    async def send_packet(self, eio_sid: str, packet: Any) -> None:
        self.sent.append((eio_sid, packet))


class FakeServer:
    packet_class = JsonFirstPacket

    def __init__(self) -> None:
        self.eio = FakeEngine()


def run(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def manager_with(*eio_sids: str) -> tuple[RedisEmitManager, FakeServer, list[str]]:
    manager, server = RedisEmitManager("redis://127.0.0.1:1/0"), FakeServer()
    manager.set_server(server)  # type: ignore[arg-type]
    sids = [run(manager.connect(eio_sid, "/")) for eio_sid in eio_sids]
    return manager, server, sids


def test_the_publish_rule() -> None:
    manager, _, (local,) = manager_with("e1")
    manager.directory.resubscribed()
    assert manager.only_here("/", local)  # a socket of this process: never through Redis
    assert not manager.only_here("/", "somebody-elsewhere")  # unknown: a socket or room of another process
    assert not manager.only_here("/", None)  # everyone
    manager.basic_enter_room(local, "/", "game")
    assert not manager.only_here("/", "game")  # the room's set not read yet
    op, key, generation = manager._ops.get_nowait()  # noqa: SLF001 - what the directory writer would do
    assert (op, key) == ("open", ("/", "game")) and generation is not None
    manager.directory.snapshot(key, generation, [manager.host_id])
    assert manager.only_here("/", "game") and manager.only_here("/", [local, "game"])
    manager._entered_elsewhere[key] = {"remote-sid"}  # noqa: SLF001 - as enter_room of a remote socket leaves it
    assert not manager.only_here("/", "game")
    manager._entered_elsewhere.clear()  # noqa: SLF001
    manager.directory.announced(key, "another-host", True)
    assert not manager.only_here("/", "game")
    manager.basic_leave_room(local, "/", "game")  # the last local member left: the view goes, a close is due
    assert key not in manager.directory and manager._ops.get_nowait() == ("close", key, None)  # noqa: SLF001


def test_a_render_from_another_process_is_still_latest_wins() -> None:
    manager, server, (local,) = manager_with("e1")
    message = {"method": "emit", "event": "render", "data": [{"t": 3, "packet": "diff"}], "namespace": "/",
               "room": local, "skip_sid": None, "callback": None, "host_id": "other", "latest_wins": "game-1",
               "full": {"t": 3, "packet": "full"}}
    run(manager._handle_emit(message))  # noqa: SLF001 - what the listener calls for a published emit
    [(eio_sid, frame)] = server.eio.sent
    assert eio_sid == "e1" and isinstance(frame, LatestWinsFrame) and frame.key == "game-1"
    assert frame.data == '2["render",{"t":3,"packet":"diff"}]'
    assert frame.as_full().data == '2["render",{"t":3,"packet":"full"}]'


def test_a_local_render_is_sent_without_computing_its_full_form() -> None:
    manager, server, (local,) = manager_with("e1")
    calls: list[int] = []
    payload = LatestWins({"t": 1}, key="g", full=lambda: calls.append(1) or {"t": 1, "full": True})
    run(manager.emit("render", payload, "/", to=local))
    [(_, frame)] = server.eio.sent
    assert isinstance(frame, LatestWinsFrame) and calls == [] and manager.published_emits == 0
