"""Who serves each participant (cluster/placement.py) on a real Redis: one owner however many workers claim
at once, a dead worker's participants claimable, handovers only from the owner, and the handover messages."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from typing import Any

import pytest
from redis.asyncio import Redis

from interactive_gym.server.cluster.placement import Placement, parse_handover


def run(coro: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def _placements(url: str, prefix: str, names: list[str]) -> tuple[Redis, list[Placement]]:
    client = Redis.from_url(url)
    return client, [Placement(client, prefix, name) for name in names]


def test_workers_claiming_one_participant_at_once_agree_on_one_owner(redis_server, request) -> None:
    async def scenario() -> list[str]:
        client, workers = await _placements(redis_server.url, request.node.name, ["w0", "w1", "w2"])
        for worker in workers:
            await worker._beat()
        try:
            return list(await asyncio.gather(*(w.claim("p1") for w in workers for _ in range(10))))
        finally:
            await client.aclose()

    owners = run(scenario())
    assert len(owners) == 30 and len(set(owners)) == 1  # whoever came first; everyone else is told so


def test_a_dead_workers_participant_is_claimed_by_the_next_and_a_live_one_is_kept(redis_server, request) -> None:
    async def scenario() -> tuple[str, str, str]:
        client, (w0, w1) = await _placements(redis_server.url, request.node.name, ["w0", "w1"])
        try:
            await w0._beat()
            await w1._beat()
            assert await w0.claim("p1") == "w0"
            kept = await w1.claim("p1")  # w0 runs: p1 stays with it
            await client.delete(f"{request.node.name}:alive:w0")  # w0's heartbeat ran out
            taken = await w1.claim("p1")
            again = await w0.claim("p1")  # w0 is back (restarted): w1 serves p1 now
            return kept, taken, again
        finally:
            await client.aclose()

    assert run(scenario()) == ("w0", "w1", "w1")


def test_only_the_owner_or_nobody_can_hand_a_participant_over(redis_server, request) -> None:
    async def scenario() -> list[bool | str]:
        client, (w0, w1, w2) = await _placements(redis_server.url, request.node.name, ["w0", "w1", "w2"])
        try:
            for worker in (w0, w1, w2):
                await worker._beat()
            await w0.claim("p1")
            results: list[bool | str] = [await w1.assign("p1", "w2"),  # w1 does not serve p1
                                         await w0.assign("p1", "w1"),
                                         await w1.claim("p1"),
                                         await w2.assign("new", "w0")]  # nobody served "new"
            results.append(await w1.claim("new"))
            return results
        finally:
            await client.aclose()

    assert run(scenario()) == [False, True, "w1", True, "w0"]


def test_a_handover_request_reaches_the_other_workers_not_the_asker(redis_server, request) -> None:
    async def scenario() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        client, (w0, w1) = await _placements(redis_server.url, request.node.name, ["w0", "w1"])
        got: dict[str, list[tuple[str, str]]] = {"w0": [], "w1": []}
        arrived = asyncio.Event()

        def handler(name: str) -> Any:
            async def on_handover(pid: str, to: str) -> None:
                got[name].append((pid, to))
                arrived.set()
            return on_handover

        try:
            await w0.start(handler("w0"))
            await w1.start(handler("w1"))
            await asyncio.sleep(0.2)  # both subscribed
            await client.publish(f"{request.node.name}:handover", "not json")  # ignored, listener lives on
            await w1.ask_for(["alice"])
            await asyncio.wait_for(arrived.wait(), timeout=10)
            await asyncio.sleep(0.2)
            return got["w0"], got["w1"]
        finally:
            await w0.close()
            await w1.close()
            await client.aclose()

    assert run(scenario()) == ([("alice", "w1")], [])


@pytest.mark.parametrize(("raw", "expected"), [
    (json.dumps({"pid": "alice", "to": "w1"}), ("alice", "w1")),
    (json.dumps({"pid": "alice", "to": "w1"}).encode(), ("alice", "w1")),
    (json.dumps({"pid": "alice", "to": "worker1"}), None),
    (json.dumps({"pid": "", "to": "w1"}), None),
    (json.dumps({"pid": "x" * 129, "to": "w1"}), None),
    (json.dumps({"pid": 7, "to": "w1"}), None),
    (json.dumps(["alice", "w1"]), None),
    ("{not json", None),
    ("x" * 600, None),
    (None, None),
    (b"\xff\xfe", None),
])
def test_handover_messages_are_checked(raw: Any, expected: tuple[str, str] | None) -> None:
    assert parse_handover(raw) == expected
