"""500 simultaneous joins from two OS processes to one Redis waiting room give disjoint groups.

Each process is a separate Python interpreter (as two server workers are) with its own Redis connections and
four room objects (four turn locks, so transactions also race inside a process); it waits for the go, then
fires its joins at once. The groups the processes report and the room left in Redis are then checked
against each other: nobody in two groups, everybody in exactly one group or still waiting, fewer than a
group waiting at the end, and every group in Redis reported by exactly one process.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis_server import RedisServer

from interactive_gym.server.cluster.redis_rooms import RedisWaitingRoom
from interactive_gym.server.cluster.room_records import decode_group, decode_waiters

ROOT = Path(__file__).resolve().parents[2]
GROUP_SIZE = 2
PARTICIPANTS = 500

WORKER = r"""
import asyncio, json, sys, time
from redis.asyncio import Redis
from interactive_gym.server.cluster.redis_rooms import RedisWaitingRoom

url, room_name, group_size, ids = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4].split(",")

async def main():
    client = Redis.from_url(url, max_connections=64)
    rooms = [RedisWaitingRoom(client, room_name, group_size, 600) for _ in range(4)]
    await client.ping()
    print("ready", flush=True)
    sys.stdin.readline()  # the go: both processes start their joins together
    results = await asyncio.gather(*(rooms[i % 4].join(pid, time.time()) for i, pid in enumerate(ids)))
    groups = [[g.group_id, list(g.members)] for g in results if g is not None]
    print(json.dumps({"groups": groups, "conflicts": sum(r.conflicts for r in rooms)}), flush=True)
    await client.aclose()

asyncio.run(main())
"""


def _read_room(url: str, name: str) -> tuple[dict[str, list[str]], dict[str, str], list[str]]:
    async def main() -> tuple[dict[str, list[str]], dict[str, str], list[str]]:
        client = Redis.from_url(url, decode_responses=True)
        try:
            groups = {gid: list(decode_group(gid, raw).members)
                      for gid, raw in (await client.hgetall(f"ig:{{{name}}}:groups")).items()}
            grouped = await client.hgetall(f"ig:{{{name}}}:grouped")
            waiting = list(decode_waiters(await client.hgetall(f"ig:{{{name}}}:waiters")))
            snapshot = await RedisWaitingRoom(client, name, GROUP_SIZE, 600).snapshot()
            assert sorted(snapshot.waiting()) == sorted(waiting)
            return groups, grouped, waiting
        finally:
            await client.aclose()

    return asyncio.run(main())


@pytest.mark.parametrize("overlap", [False, True], ids=["250 each", "all 500 in both"])
def test_500_simultaneous_joins_from_two_processes_give_disjoint_groups(redis_server: RedisServer,
                                                                        overlap: bool) -> None:
    name = f"scene-{uuid.uuid4().hex[:12]}"
    everyone = [f"p{i:03d}" for i in range(PARTICIPANTS)]
    # Either each process joins its half, or both join everyone (each join arrives twice, from two workers).
    shares = [everyone, everyone] if overlap else [everyone[0::2], everyone[1::2]]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, redis_server.url, name, str(GROUP_SIZE),
                                 ",".join(share)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT) for share in shares]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = worker.stdout.readline()
            assert line.strip() == "ready", worker.stderr.read() if worker.stderr else line
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        outputs = [worker.communicate(timeout=240) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]

    reported = [(gid, members) for report in reports for gid, members in report["groups"]]
    stored, grouped, waiting = _read_room(redis_server.url, name)

    members = [pid for _, group in reported for pid in group]
    assert len(members) == len(set(members)), "someone is in two groups"
    assert all(len(group) == GROUP_SIZE for _, group in reported)
    assert dict(reported) == stored, "every stored group was reported by exactly one process, and only those"
    assert len(reported) == len(stored)
    assert grouped == {pid: gid for gid, group in stored.items() for pid in group}
    assert not set(waiting) & set(members), "someone is both waiting and in a group"
    assert sorted(members + waiting) == everyone, "everyone is in exactly one group or still waiting"
    assert len(waiting) < GROUP_SIZE
