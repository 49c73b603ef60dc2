"""A connection that breaks after a commit reached Redis but before its reply came back loses nothing.

Between the room and a real redis-server sits a TCP proxy that, once armed, cuts the connection carrying the
next EXEC after the server has applied it (the room's commit counter moved) and before the reply is passed
on. The room then cannot know from the reply whether its commit happened; it must find out and return the
result of the commit that was applied, not decide again (which, for a join that formed a group, would return
None and leave the group's members neither waiting nor told).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis_server import RedisServer

from interactive_gym.server.cluster.redis_rooms import RedisWaitingRoom


class CuttingProxy:
    """Forwards TCP to the Redis server; once armed, cuts the next EXEC's connection after it was applied.

    Args:
        target_port: The Redis server's port.
        direct: A client connected to the server directly (not through the proxy), to see the commit applied.
        clock_key: The room's commit counter: the commit was applied when it moved past its value at arming.
    """

    def __init__(self, target_port: int, direct: Redis, clock_key: str) -> None:
        self.target_port = target_port
        self.direct = direct
        self.clock_key = clock_key
        self.armed = False
        self.execs = 0  # EXEC commands that passed through
        self.cuts = 0
        self.port = 0
        self._clock_at_arming = 0
        self._server: asyncio.Server | None = None

    async def arm(self) -> None:
        self._clock_at_arming = await self._clock()
        self.armed = True

    async def _clock(self) -> int:
        return int(await self.direct.get(self.clock_key) or 0)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cutting = asyncio.Event()

        async def upstream() -> None:
            while data := await client_reader.read(65536):
                if b"\r\nEXEC\r\n" in data:
                    self.execs += 1
                    if self.armed:
                        self.armed = False
                        cutting.set()  # before the EXEC goes on, so its reply cannot slip through
                server_writer.write(data)
                await server_writer.drain()

        async def downstream() -> None:
            while data := await server_reader.read(65536):
                if cutting.is_set():
                    while await self._clock() <= self._clock_at_arming:
                        await asyncio.sleep(0.005)
                    self.cuts += 1
                    return  # the reply is dropped; the finally below closes both sides
                client_writer.write(data)
                await client_writer.drain()

        tasks = [asyncio.ensure_future(upstream()), asyncio.ensure_future(downstream())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()


def _run_through_proxy(server: RedisServer,
                       body: Callable[[Redis, Redis, CuttingProxy, str], Awaitable[None]]) -> None:
    name = f"scene-{uuid.uuid4().hex[:12]}"

    async def main() -> None:
        direct = Redis.from_url(server.url)
        proxy = CuttingProxy(server.port, direct, f"ig:{{{name}}}:clock")
        await proxy.start()
        proxied = Redis.from_url(f"redis://127.0.0.1:{proxy.port}/0")
        try:
            await body(direct, proxied, proxy, name)
        finally:
            await proxied.aclose()
            await direct.aclose()
            await proxy.stop()

    asyncio.run(main())


def test_a_join_whose_commit_reply_is_lost_returns_the_group_it_formed(redis_server: RedisServer) -> None:
    async def body(direct: Redis, proxied: Redis, proxy: CuttingProxy, name: str) -> None:
        assert await RedisWaitingRoom(direct, name, 2, 60).join("a", 1.0) is None
        room = RedisWaitingRoom(proxied, name, 2, 60)
        await proxy.arm()
        group = await room.join("b", 2.0)
        assert proxy.cuts == 1
        assert proxy.execs == 1, "the applied commit was decided again"
        assert group is not None and group.members == ("a", "b")
        assert await room.group_of("b") == group
        assert (await room.snapshot()).waiting() == []

    _run_through_proxy(redis_server, body)


def test_an_expiry_whose_commit_reply_is_lost_still_hands_over_who_timed_out(redis_server: RedisServer) -> None:
    async def body(direct: Redis, proxied: Redis, proxy: CuttingProxy, name: str) -> None:
        room = RedisWaitingRoom(proxied, name, 3, 10)
        await room.join("a", 1.0)
        await room.join("b", 5.0)
        await proxy.arm()
        assert await room.expire(12.0) == ["a"]
        assert proxy.cuts == 1 and proxy.execs == 3
        assert (await room.snapshot()).waiting() == ["b"]

    _run_through_proxy(redis_server, body)
