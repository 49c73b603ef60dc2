"""Server CPU per 10,000 render emits: one process (DirectSendManager) vs RedisEmitManager, local and remote.

Three server processes (uvicorn + ``ExperimentSocketServer``, each on its own port): ``direct`` with
DirectSendManager (today's one-process server), ``redis_a`` and ``redis_b`` with RedisEmitManager on one real
``redis-server`` (tests/redis_server.py). Real python-socketio clients (websocket) in this process read every
packet. A server ticks ``--streams`` render streams at ``--fps``: every tick one render-sized
:class:`~interactive_gym.server.latest_wins.LatestWins` emit per stream, as a game's renders are, until
``--emits`` emits were made; then it waits until every socket's queue is empty (the writes count too) and
reports its own process CPU time (``time.process_time``: CPU, not wall) for the whole run. Cases:

- ``local_sid``: each stream to one local socket (``to=sid``), on ``direct`` and on ``redis_a``;
- ``local_room``: each stream to a room of two local sockets (a two-player game), on ``direct`` and on
  ``redis_a`` (its room directory has read that no other process has members);
- ``remote_sid``: ``redis_a`` emits each stream to a socket connected to ``redis_b`` (the Redis path): CPU of
  the sender and of the receiving process.

Within a run the two managers of a local case alternate in ``--blocks`` blocks each (AB BA ..., the emits
split evenly), so both see the same (shared) machine; ratios are taken within a run. Besides the process CPU
of the whole run, the CPU spent inside the ``emit`` calls alone is summed (the manager's own work; it excludes
the socket writes, which both managers leave to Engine.IO alike). ``--runs`` runs (default 3), medians and
ranges. Raw JSON in ``benchmarks/results/redis_emits_cost.json``.

First, in this process and without sockets or Redis, the emit path alone: both managers on a stand-in
Engine.IO whose sockets are real ``LatestWinsQueue``s emptied after each tick, alternating blocks of
``--emits`` emits to local sockets and to local two-socket rooms (CPU inside ``emit``, median of the blocks;
the steadiest figure on a shared machine, since nothing else varies).

Usage::

    flock /tmp/ig-bench.lock .venv/bin/python benchmarks/redis_emits_cost.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

RESULTS = ROOT / "benchmarks" / "results" / "redis_emits_cost.json"
WAIT_S = 120.0


def render_payload(stream: str, t: int) -> dict[str, Any]:
    """A render packet of the size a small two-player grid game sends (about 0.9 KB of JSON)."""
    objects = [{"uid": f"fruit-{k}", "type": "sprite", "x": (t * 7 + k * 13) % 400, "y": (k * 29) % 300,
                "depth": 1, "image": "fruit.png"} for k in range(8)]
    return {"game_id": stream, "episode": 0, "t": t, "packet": {"seq": t, "kind": "diff", "objects": objects}}


# ------------------------------------------------------------------------------------------------ server side

def serve(kind: str, port: int, redis_url: str, channel: str) -> None:
    import socketio
    import uvicorn

    from interactive_gym.server.cluster.redis_emits import RedisEmitManager
    from interactive_gym.server.fast_socketio import DirectSendManager, ExperimentSocketServer
    from interactive_gym.server.latest_wins import LatestWins

    manager = DirectSendManager() if kind == "direct" else RedisEmitManager(redis_url, channel=channel)
    sio = ExperimentSocketServer(async_mode="asgi", max_message_chars=1 << 20, client_manager=manager)

    @sio.on("whoami")
    async def whoami(sid: str, data: Any) -> Any:
        return sid

    @sio.on("enter")
    async def enter(sid: str, data: Any) -> Any:
        await sio.enter_room(data.get("sid") or sid, data["room"])
        return True

    @sio.on("cpu")
    async def cpu(sid: str, data: Any) -> Any:
        return time.process_time()

    def queued() -> int:
        return sum(s.queue.qsize() for s in list(sio.eio.sockets.values()))

    def superseded() -> int:
        return sum(getattr(s.queue, "superseded", 0) for s in list(sio.eio.sockets.values()))

    @sio.on("run")
    async def run(sid: str, data: Any) -> Any:
        targets, emits, period = data["targets"], data["emits"], 1.0 / data["fps"]
        dropped = superseded()
        published = getattr(manager, "published_emits", 0)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        made, t, next_tick, in_emit = 0, 0, time.perf_counter(), 0.0
        while made < emits:
            for target in targets:
                payload = render_payload(target, t)
                started = time.process_time()
                await sio.emit("render", LatestWins(payload, key=target, full=lambda p=payload: {**p, "full": 1}),
                               to=target)
                in_emit += time.process_time() - started
                made += 1
            t += 1
            next_tick += period
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        deadline = time.perf_counter() + 30
        while queued() and time.perf_counter() < deadline:
            await asyncio.sleep(0.005)
        return {"cpu_s": time.process_time() - cpu0, "emit_call_cpu_s": in_emit, "wall_s": time.perf_counter() - wall0, "emits": made,
                "superseded": superseded() - dropped,
                "published": getattr(manager, "published_emits", 0) - published}

    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning")


# ------------------------------------------------------------------------------------ in-process emit path

class _Engine:
    """Engine.IO stand-in: each socket a real LatestWinsQueue, read empty after every tick (a reader that
    keeps up), so no render is replaced and both managers do exactly the same sends."""

    def __init__(self) -> None:
        from interactive_gym.server.latest_wins import LatestWinsQueue

        self.queues: dict[str, Any] = {}
        self.ids = iter(range(1_000_000))
        self._queue_class = LatestWinsQueue

    def generate_id(self) -> str:
        return f"s{next(self.ids)}"

    async def send_packet(self, eio_sid: str, packet: Any) -> None:
        queue = self.queues.get(eio_sid)
        if queue is None:
            queue = self.queues[eio_sid] = self._queue_class()
        queue.put_nowait(packet)

    def drain(self) -> None:
        for queue in self.queues.values():
            while not queue.empty():
                queue.get_nowait()


class _Server:
    def __init__(self) -> None:
        from interactive_gym.server.fast_socketio import JsonFirstPacket

        self.packet_class = JsonFirstPacket
        self.eio = _Engine()


async def emit_path(args: argparse.Namespace) -> dict[str, Any]:
    """CPU inside ``emit`` per 10,000 render emits to local sockets and rooms, both managers in this process,
    alternating blocks of ``--emits`` emits (``--micro-blocks`` each); the room directory of the Redis manager
    is filled as its Redis read would (nobody elsewhere), and nothing here talks to Redis."""
    from interactive_gym.server.cluster.redis_emits import RedisEmitManager
    from interactive_gym.server.fast_socketio import DirectSendManager
    from interactive_gym.server.latest_wins import LatestWins

    managers: dict[str, Any] = {"direct": DirectSendManager(), "redis": RedisEmitManager("redis://127.0.0.1:1/0")}
    targets: dict[str, dict[str, list[str]]] = {}
    for kind, manager in managers.items():
        server = _Server()
        manager.set_server(server)
        if kind == "redis":
            manager.directory.resubscribed()
        sids = [await manager.connect(f"e{i}", "/") for i in range(args.streams * 3)]
        rooms = []
        for index in range(args.streams):
            room = f"game-{index}"
            for sid in sids[args.streams + 2 * index:args.streams + 2 * index + 2]:
                manager.basic_enter_room(sid, "/", room)
            rooms.append(room)
        if kind == "redis":
            while not manager._ops.empty():  # noqa: SLF001 - the directory writer's job, done here without Redis
                op, key, generation = manager._ops.get_nowait()  # noqa: SLF001
                manager.directory.snapshot(key, generation, [manager.host_id])
            assert all(manager.only_here("/", room) for room in rooms)
        targets[kind] = {"local_sid": sids[:args.streams], "local_room": rooms}

    async def block(kind: str, case: str) -> float:
        manager, server = managers[kind], managers[kind].server
        spent, t, made = 0.0, 0, 0
        while made < args.emits:
            payloads = [render_payload(target, t) for target in targets[kind][case]]
            started = time.process_time()
            for target, payload in zip(targets[kind][case], payloads, strict=True):
                await manager.emit("render", LatestWins(payload, key=target, full=lambda p=payload: p), "/",
                                   to=target)
            spent += time.process_time() - started
            server.eio.drain()
            made += len(payloads)
            t += 1
        return spent * 10_000 / made

    results: dict[str, Any] = {}
    for case in ("local_sid", "local_room"):
        spent: dict[str, list[float]] = {"direct": [], "redis": []}
        for index in range(args.micro_blocks):
            for kind in (("direct", "redis") if index % 2 == 0 else ("redis", "direct")):
                spent[kind].append(await block(kind, case))
        results[case] = {
            "direct_ms_per_10k": round(statistics.median(spent["direct"]) * 1e3, 1),
            "redis_ms_per_10k": round(statistics.median(spent["redis"]) * 1e3, 1),
            "ratio": round(statistics.median(r / d for r, d in zip(spent["redis"], spent["direct"], strict=True)),
                           3),
        }
    return results


# ------------------------------------------------------------------------------------------------ driver side

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Reader:
    """A python-socketio client that counts the renders it reads."""

    def __init__(self) -> None:
        import socketio

        self.sio = socketio.AsyncClient(reconnection=False)
        self.renders = 0
        self.sid = ""

        @self.sio.on("render")
        async def render(data: Any) -> None:
            self.renders += 1

    async def open(self, port: int) -> Reader:
        import socketio

        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                await self.sio.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=30)
                break
            except socketio.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        self.sid = await self.call("whoami")
        return self

    async def call(self, event: str, data: Any = None) -> Any:
        return await self.sio.call(event, data or {}, timeout=WAIT_S)


async def measure(args: argparse.Namespace, ports: dict[str, int]) -> list[dict[str, Any]]:
    streams = args.streams
    clients: dict[str, Any] = {}
    for kind in ("direct", "redis_a"):
        sids = [await Reader().open(ports[kind]) for _ in range(streams)]
        rooms = [[await Reader().open(ports[kind]) for _ in range(2)] for _ in range(streams)]
        for index, pair in enumerate(rooms):
            for reader in pair:
                await reader.call("enter", {"room": f"game-{index}"})
        clients[kind] = (sids, rooms)
    remote = [await Reader().open(ports["redis_b"]) for _ in range(streams)]
    await asyncio.sleep(1.0)  # room directories written and read; listeners subscribed
    driver_a, driver_b = clients["redis_a"][0][0], remote[0]
    cases = [("direct", "local_sid", [r.sid for r in clients["direct"][0]]),
             ("redis_a", "local_sid", [r.sid for r in clients["redis_a"][0]]),
             ("direct", "local_room", [f"game-{i}" for i in range(streams)]),
             ("redis_a", "local_room", [f"game-{i}" for i in range(streams)]),
             ("redis_a", "remote_sid", [r.sid for r in remote])]
    totals: dict[tuple[str, str], dict[str, float]] = {}
    blocks = [(kind, case, targets) for kind, case, targets in cases if case == "remote_sid"]
    for block in range(args.blocks):  # direct and redis alternate (AB BA ...): both see the same machine
        for pair in (cases[0:2], cases[2:4]):
            blocks.extend(pair if block % 2 == 0 else pair[::-1])
    for kind, case, targets in blocks:
        caller = clients[kind][0][0]
        emits = args.emits if case == "remote_sid" else args.emits // args.blocks
        b_before = await driver_b.call("cpu")
        outcome = await caller.call("run", {"targets": targets, "emits": emits, "fps": args.fps})
        outcome["receiver_cpu_s"] = await driver_b.call("cpu") - b_before
        total = totals.setdefault((kind, case), {})
        for field, value in outcome.items():
            total[field] = total.get(field, 0) + value
    results = []
    for (kind, case), total in totals.items():
        per_10k = 1e3 * 10_000 / total["emits"]
        row = {"server": kind, "case": case, **{k: round(v, 4) for k, v in total.items()},
               "cpu_ms_per_10k_emits": round(total["cpu_s"] * per_10k, 1),
               "emit_call_cpu_ms_per_10k_emits": round(total["emit_call_cpu_s"] * per_10k, 1)}
        if case == "remote_sid":
            row["receiver_cpu_ms_per_10k_emits"] = round(total["receiver_cpu_s"] * per_10k, 1)
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    del driver_a
    for sids, rooms in clients.values():
        for reader in [*sids, *(r for pair in rooms for r in pair)]:
            await reader.sio.disconnect()
    for reader in remote:
        await reader.sio.disconnect()
    return results


def one_run(args: argparse.Namespace, redis_url: str) -> list[dict[str, Any]]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    ports = {kind: _free_port() for kind in ("direct", "redis_a", "redis_b")}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    processes = [subprocess.Popen([sys.executable, __file__, "--serve", "direct" if kind == "direct" else "redis",
                                   "--port", str(port), "--redis-url", redis_url, "--channel", channel],
                                  cwd=ROOT, env=env) for kind, port in ports.items()]
    try:
        return asyncio.run(asyncio.wait_for(measure(args, ports), 20 * WAIT_S))
    finally:
        for process in processes:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


def summarize(runs: list[list[dict[str, Any]]]) -> dict[str, Any]:
    def per(server: str, case: str, field: str = "cpu_ms_per_10k_emits") -> list[float]:
        return [row[field] for run in runs for row in run if row["server"] == server and row["case"] == case]

    def stats(values: list[float]) -> dict[str, float]:
        return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
                "max": round(max(values), 2)}

    def ratios(case: str, field: str = "cpu_s") -> list[float]:
        return [next(r[field] for r in run if r["server"] == "redis_a" and r["case"] == case)
                / next(r[field] for r in run if r["server"] == "direct" and r["case"] == case) for run in runs]

    pairs = (("direct", "local_sid"), ("redis_a", "local_sid"), ("direct", "local_room"), ("redis_a", "local_room"),
             ("redis_a", "remote_sid"))

    return {
        "cpu_ms_per_10k_emits": {f"{server}/{case}": stats(per(server, case)) for server, case in pairs},
        "emit_call_cpu_ms_per_10k_emits": {f"{server}/{case}": stats(per(server, case,
                                                                         "emit_call_cpu_ms_per_10k_emits"))
                                           for server, case in pairs},
        "receiver_cpu_ms_per_10k_remote_emits": stats(per("redis_a", "remote_sid", "receiver_cpu_ms_per_10k_emits")),
        "ratio_redis_to_direct_local_sid": stats(ratios("local_sid")),
        "ratio_redis_to_direct_local_room": stats(ratios("local_room")),
        "emit_call_ratio_local_sid": stats(ratios("local_sid", "emit_call_cpu_s")),
        "emit_call_ratio_local_room": stats(ratios("local_room", "emit_call_cpu_s")),
        "published_in_local_cases": sum(r["published"] for run in runs for r in run if r["case"] != "remote_sid"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--emits", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=25)
    parser.add_argument("--blocks", type=int, default=10, help="alternating blocks per manager, local cases")
    parser.add_argument("--micro-blocks", type=int, default=10, help="alternating blocks, in-process emit path")
    parser.add_argument("--fps", type=float, default=40.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--serve", choices=["direct", "redis"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--redis-url")
    parser.add_argument("--channel")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.redis_url, args.channel)
        return

    from redis_server import running_redis

    load_before = os.getloadavg()
    path = asyncio.run(emit_path(args))
    print(json.dumps({"emit_path": path}), file=sys.stderr, flush=True)
    with running_redis() as redis:
        runs = [one_run(args, redis.url) for _ in range(args.runs)]
    report = {
        "benchmark": "redis_emits_cost",
        "settings": {"emits": args.emits, "streams": args.streams, "fps": args.fps, "runs": args.runs,
                     "blocks": args.blocks,
                     "payload_bytes": len(json.dumps(render_payload("game-0", 1), separators=(",", ":")))},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_before": load_before, "load_after": os.getloadavg()},
        "emit_path_cpu_in_process": path,
        "summary": summarize(runs),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["summary"], indent=2))


if __name__ == "__main__":
    main()
