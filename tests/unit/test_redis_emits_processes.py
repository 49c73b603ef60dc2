"""Emits across two real server processes on one real Redis, seen by real python-socketio clients.

Each server is its own Python interpreter running uvicorn with an ``ExperimentSocketServer`` whose client
manager is :class:`~interactive_gym.server.cluster.redis_emits.RedisEmitManager`, on its own port, both on the
session's ``redis-server``. A few test events let a client ask its server to emit (to a socket, to a room)
or to enter a room; a subscriber in the test counts what is published on the emit channel.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio
from redis.asyncio import Redis
from redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15.0  # every wait in these tests is bounded by this

SERVER = r"""
import asyncio, sys
import uvicorn
from interactive_gym.server.cluster.redis_emits import RedisEmitManager
from interactive_gym.server.fast_socketio import ExperimentSocketServer
from interactive_gym.server.latest_wins import LatestWins

url, channel, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
manager = RedisEmitManager(url, channel=channel)
sio = ExperimentSocketServer(async_mode="asgi", max_message_chars=1 << 20, client_manager=manager)

@sio.on("whoami")
async def whoami(sid, data):
    return {"sid": sid, "port": port}

@sio.on("enter")
async def enter(sid, data):
    await sio.enter_room(data.get("sid") or sid, data["room"])
    return True

@sio.on("send")
async def send(sid, data):
    # n emits to one target, one after another, as a game's ticks are
    for i in range(data["n"]):
        if data.get("render"):
            payload = {"i": i, "diff": True}
            body = LatestWins(payload, key=data["to"], full=lambda payload=payload: {**payload, "diff": False})
        else:
            body = {"i": i, "from": port}
        await sio.emit(data.get("event", "seq"), body, to=data["to"])
    return True

@sio.on("stats")
async def stats(sid, data):
    hosts = manager.directory.remote_hosts(("/", data["room"])) if data.get("room") else None
    return {"published": manager.published_emits, "host_id": manager.host_id,
            "remote_hosts": None if hosts is None else sorted(hosts)}

uvicorn.run(sio_app := __import__("socketio").ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread (in a full session Playwright's loop may own this thread), bounded."""
    async def bounded() -> Any:
        return await asyncio.wait_for(coro, 4 * WAIT_S)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


class Cluster:
    """Two server processes (``ports[0]`` is "A", ``ports[1]`` is "B") on one Redis channel."""

    def __init__(self, url: str) -> None:
        self.url, self.channel = url, f"ig-test-{uuid.uuid4().hex[:8]}"
        self.ports = [_free_port(), _free_port()]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.processes = [subprocess.Popen([sys.executable, "-c", SERVER, url, self.channel, str(port)], cwd=ROOT,
                                           env=env, stderr=subprocess.PIPE) for port in self.ports]

    def stop(self) -> str:
        errors = []
        for process in self.processes:
            process.terminate()
            try:
                _, stderr = process.communicate(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                _, stderr = process.communicate(timeout=WAIT_S)
            errors.append(stderr.decode(errors="replace"))
        return "\n".join(errors)


@pytest.fixture
def cluster(redis_server: RedisServer) -> Iterator[Cluster]:
    running = Cluster(redis_server.url)
    try:
        yield running
    finally:
        stderr = running.stop()
        assert "Traceback" not in stderr, stderr


class Page:
    """A real python-socketio client that records every event it gets, in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.got: list[tuple[str, Any]] = []
        self.sid = ""
        self.sio.on("*", self._record)

    async def _record(self, event: str, data: Any) -> None:
        self.got.append((event, data))

    async def open(self, port: int) -> Page:
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while True:  # the server process may still be starting: bounded polling of its port
            try:
                await self.sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=WAIT_S)
                break
            except socketio.exceptions.ConnectionError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.1)
        self.sid = (await self.call("whoami"))["sid"]
        return self

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data or {}, timeout=WAIT_S)

    async def until(self, count: int, event: str = "seq") -> list[Any]:
        """The payloads of ``event`` once ``count`` of them arrived (bounded)."""
        async def arrived() -> None:
            while sum(1 for name, _ in self.got if name == event) < count:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(arrived(), WAIT_S)
        return [data for name, data in self.got if name == event]

    async def until_render(self, last: int) -> list[Any]:
        """The renders once the one numbered ``last`` arrived (a waiting render may be replaced by a newer one)."""
        async def arrived() -> None:
            while not any(name == "render" and data["i"] == last for name, data in self.got):
                await asyncio.sleep(0.01)
        await asyncio.wait_for(arrived(), WAIT_S)
        return [data for name, data in self.got if name == "render"]


class Counter:
    """Counts the messages published on the emit channel (a plain subscriber: no MONITOR needed)."""

    def __init__(self, url: str, channel: str) -> None:
        self.client, self.channel, self.messages = Redis.from_url(url), channel, []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Counter:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.channel)
        ready = asyncio.get_running_loop().create_future()

        async def listen() -> None:
            async for message in pubsub.listen():
                if message["type"] == "subscribe":
                    ready.set_result(None)
                elif message["type"] == "message":
                    self.messages.append(json.loads(message["data"]))
        self._task = asyncio.create_task(listen())
        await asyncio.wait_for(ready, WAIT_S)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.aclose()

    def emits(self) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("method") == "emit"]


async def subscribed(url: str, channel: str, count: int = 2) -> None:
    """Until ``count`` server processes listen on the channel (PUBSUB NUMSUB; bounded)."""
    client = Redis.from_url(url)
    try:
        async def poll() -> None:
            while dict(await client.pubsub_numsub(channel)).get(channel.encode(), 0) < count:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(poll(), WAIT_S)
    finally:
        await client.aclose()


async def open_pages(cluster: Cluster, *where: int) -> list[Page]:
    pages = [await Page().open(cluster.ports[index]) for index in where]
    await subscribed(cluster.url, cluster.channel, count=1 + int(1 in where))
    return pages


async def close(*pages: Page) -> None:
    for page in pages:
        await page.sio.disconnect()


def assert_renders(renders: list[dict[str, Any]], last: int) -> None:
    """Renders arrive in order, end with ``last``, and one that replaced a waiting one is the full form."""
    numbers = [m["i"] for m in renders]
    assert numbers == sorted(set(numbers)) and numbers[-1] == last, numbers
    follows = [numbers[0] == 0] + [b == a + 1 for a, b in zip(numbers, numbers[1:], strict=False)]
    # A render after a gap (its predecessors were replaced while waiting) must be the full form.
    assert all(not m["diff"] for m, step in zip(renders, follows, strict=True) if not step), renders


def test_an_emit_to_a_socket_of_the_other_process_arrives_in_order(cluster: Cluster) -> None:
    async def main() -> list[Any]:
        a, b = await open_pages(cluster, 0, 1)
        assert await a.call("send", {"to": b.sid, "n": 200})
        got = await b.until(200)
        await close(a, b)
        return got

    got = run(main())
    assert [m["i"] for m in got] == list(range(200))
    assert {m["from"] for m in got} == {cluster.ports[0]}


def test_a_room_on_both_processes_gets_one_copy_each_and_local_members_skip_redis(cluster: Cluster) -> None:
    async def main() -> dict[str, Any]:
        a1, a2, b1, b2 = await open_pages(cluster, 0, 0, 1, 1)
        await a1.call("enter", {"room": "game"})
        await b1.call("enter", {"room": "game"})  # entered by its own process (B)
        await a1.call("enter", {"room": "game", "sid": b2.sid})  # a socket of B entered by A
        async with Counter(cluster.url, cluster.channel) as counter:
            assert await a1.call("send", {"to": "game", "n": 20})
            assert await b1.call("send", {"to": "game", "n": 20, "event": "from_b"})
            copies = {name: await page.until(20) for name, page in (("a1", a1), ("b1", b1), ("b2", b2))}
            from_b = {name: await page.until(20, "from_b") for name, page in (("a1", a1), ("b1", b1), ("b2", b2))}
            await asyncio.sleep(0.2)  # any extra copy would have arrived by now
            extra = {name: len(page.got) for name, page in (("a1", a1), ("a2", a2), ("b1", b1), ("b2", b2))}
            published = [(m["event"], m["room"]) for m in counter.emits()]
        await close(a1, a2, b1, b2)
        return {"copies": copies, "from_b": from_b, "extra": extra, "published": published}

    seen = run(main())
    for name in ("a1", "b1", "b2"):
        assert [m["i"] for m in seen["copies"][name]] == list(range(20)), name
        assert [m["i"] for m in seen["from_b"][name]] == list(range(20)), name
    # Exactly 40 events each for the members (no duplicates), none for the socket outside the room.
    assert seen["extra"] == {"a1": 40, "a2": 0, "b1": 40, "b2": 40}
    assert seen["published"] == [("seq", "game")] * 20 + [("from_b", "game")] * 20


def test_local_emits_never_touch_redis(cluster: Cluster) -> None:
    async def main() -> dict[str, Any]:
        a1, a2, b = await open_pages(cluster, 0, 0, 1)
        await a1.call("enter", {"room": "solo"})
        async def view_ready() -> None:  # A's directory read the room's set (nobody elsewhere)
            while (await a1.call("stats", {"room": "solo"}))["remote_hosts"] != []:
                await asyncio.sleep(0.02)
        await asyncio.wait_for(view_ready(), WAIT_S)
        async with Counter(cluster.url, cluster.channel) as counter:
            assert await a1.call("send", {"to": a2.sid, "n": 100})
            assert await a1.call("send", {"to": "solo", "n": 100, "render": True, "event": "render"})
            local = (await a2.until(100), await a1.until_render(99))
            published_local = len(counter.emits())
            stats_local = await a1.call("stats")
            assert await a1.call("send", {"to": b.sid, "n": 1})  # the control: a remote emit is counted
            await b.until(1)
            async def counted() -> None:
                while len(counter.emits()) < 1:
                    await asyncio.sleep(0.01)
            await asyncio.wait_for(counted(), WAIT_S)
            remote = counter.emits()
        await close(a1, a2, b)
        return {"local": local, "published_local": published_local, "stats_local": stats_local,
                "remote": remote, "b": b.sid}

    seen = run(main())
    to_a2, renders = seen["local"]
    assert [m["i"] for m in to_a2] == list(range(100))
    assert_renders(renders, 99)
    assert seen["published_local"] == 0 and seen["stats_local"]["published"] == 0
    assert [(m["room"], m["data"][0]["i"]) for m in seen["remote"]] == [(seen["b"], 0)]


def test_a_render_to_the_other_process_carries_its_full_form(cluster: Cluster) -> None:
    async def main() -> tuple[list[Any], list[dict[str, Any]]]:
        a, b = await open_pages(cluster, 0, 1)
        await a.call("enter", {"room": "game", "sid": b.sid})
        async with Counter(cluster.url, cluster.channel) as counter:
            assert await a.call("send", {"to": "game", "n": 5, "render": True, "event": "render"})
            got = await b.until_render(4)
            published = counter.emits()
        await close(a, b)
        return got, published

    got, published = run(main())
    assert_renders(got, 4)
    assert [(m["latest_wins"], m["full"]) for m in published] == [("game", {"i": i, "diff": False})
                                                                  for i in range(5)]


def test_a_client_gone_mid_emit_is_harmless(cluster: Cluster) -> None:
    async def main() -> tuple[bool, list[Any], list[Any]]:
        a, b, c = await open_pages(cluster, 0, 1, 1)
        sending = asyncio.create_task(a.call("send", {"to": b.sid, "n": 3000}))
        await b.until(10)
        await b.sio.disconnect()  # while A is still publishing to it
        finished = await sending
        assert await a.call("send", {"to": c.sid, "n": 3})  # both processes still deliver
        to_c = await c.until(3)
        assert await c.call("send", {"to": a.sid, "n": 3, "event": "back"})
        to_a = await a.until(3, "back")
        await close(a, c)
        return finished, to_c, to_a

    finished, to_c, to_a = run(main())
    assert finished is True
    assert [m["i"] for m in to_c] == [0, 1, 2] and [m["i"] for m in to_a] == [0, 1, 2]
