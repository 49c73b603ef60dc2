"""Simulated participants for the capacity benchmark: python-socketio clients that play like people.

Run by ``server_capacity.py``, one or more processes of it, each driving ``2 * --pairs`` clients. The
protocol with the orchestrator is line-based on stdin/stdout:

1. every client connects and receives its game scene, then this process prints ``READY``;
2. on a ``GO`` line from stdin, every client sends ``join_game`` (so all games start within a moment);
3. each client holds a new random arrow key (or none) every ~``--key-interval`` seconds (default 0.1),
   and records the monotonic arrival time and tick of every ``render`` packet;
4. when every client saw ``game_over`` (or ``--timeout`` passed), it disconnects all clients and prints one
   ``RESULT <json>`` line with per-client figures and the raw lateness samples.

Behind ``interactive-gym run --workers N`` the clients follow the server's ``route`` and ``relocate`` events
as the page does (see :class:`SimClient`); each client's ``relocations`` says how often it was moved.

Arrival times use ``time.monotonic()``, which on Linux is one clock for all processes, so the orchestrator can
line them up with its own CPU samples.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
from typing import Any

import socketio
from server_capacity_stats import client_rate, delivery_lateness, inter_arrival_jitter

ARROWS = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight")
SIZE_SAMPLE_EVERY = 50  # measure the JSON size of every n-th render payload (sizing costs client CPU)


class SimClient:
    """One simulated participant.

    Behind ``interactive-gym run --workers N`` it behaves like the page: it keeps the worker name the server
    sends (``route``) for its later handshakes (``?ig_route=w1``), follows ``relocate`` to another worker
    with a fresh connection (presenting the resume secret it was given), and re-sends ``join_game`` there.
    Against one process neither event comes and nothing of this happens.

    Args:
        url: The server's base URL.
        subject_id: The participant id sent as the ``subject_id`` URL parameter.
        rng: This client's random source for key choices and timing.
        key_interval: Mean seconds between key changes.
    """

    def __init__(self, url: str, subject_id: str, rng: random.Random, key_interval: float) -> None:
        self.url = url
        self.subject_id = subject_id
        self.rng = rng
        self.key_interval = key_interval
        self.sio = self._new_client()
        self.route: str | None = None  # the worker serving this client, once the server named it
        self.relocations = 0
        self.secrets: dict[str, str] = {}  # resume secrets the server issued, as the page keeps them
        self.joined = False
        self.scene: dict[str, Any] | None = None
        self.scene_index = 0
        self.scene_ready = asyncio.Event()
        self.game_over = asyncio.Event()
        self.game_id: str | None = None
        self.arrivals: list[float] = []
        self.ticks: list[int] = []
        self.payload_bytes: list[int] = []
        self.errors: list[str] = []
        self.keys_sent = 0
        # First and last key sent (monotonic), for the achieved key rate.
        self.first_key_at: float | None = None
        self.last_key_at: float | None = None
        self.joined_at: float | None = None
        self._connected = asyncio.Event()
        self._moves: set[asyncio.Task[None]] = set()

    def _new_client(self) -> socketio.AsyncClient:
        # A fresh client per connection: python-socketio closes its HTTP session when the server disconnects
        # it (as a worker does after a relocate), so one client cannot be reused for the next connection.
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)

        @sio.on("connect")
        async def on_connect() -> None:
            self._connected.set()
            if self.joined:
                await self.join()  # a reconnect (relocation) re-joins, as the page's game view does

        @sio.on("scene")
        async def on_scene(data: dict[str, Any]) -> None:
            scene = data.get("scene") or {}
            if scene.get("kind") == "gym":
                self.scene, self.scene_index = scene, int(data.get("index", 0))
                self.scene_ready.set()

        @sio.on("session")
        async def on_session(data: dict[str, Any]) -> None:
            self.secrets[data["participant_id"]] = data["resume_secret"]

        @sio.on("route")
        async def on_route(data: dict[str, Any]) -> None:
            self.route = data["route"]

        @sio.on("relocate")
        async def on_relocate(data: dict[str, Any]) -> None:
            self.relocations += 1
            self.route = data["route"]
            task = asyncio.create_task(self._reconnect())
            self._moves.add(task)
            task.add_done_callback(self._moves.discard)

        @sio.on("game_start")
        async def on_game_start(data: dict[str, Any]) -> None:
            self.game_id = data.get("game_id")

        @sio.on("render")
        async def on_render(data: dict[str, Any]) -> None:
            self.arrivals.append(time.monotonic())
            self.ticks.append(int(data["t"]))
            if len(self.ticks) % SIZE_SAMPLE_EVERY == 1:
                self.payload_bytes.append(len(json.dumps(data, separators=(",", ":"))))

        @sio.on("game_over")
        async def on_game_over(data: dict[str, Any]) -> None:
            self.game_over.set()

        @sio.on("error")
        async def on_error(data: dict[str, Any]) -> None:
            self.errors.append(f"{data.get('event')}: {data.get('message')}")

        @sio.on("refused")
        async def on_refused(data: dict[str, Any]) -> None:
            self.errors.append(f"refused: {data.get('reason')}")
            self.game_over.set()

        return sio

    async def _open(self) -> None:
        """Opens a connection, to the worker named by ``route`` if there is one (the front reads ``ig_route``)."""
        self._connected.clear()
        auth = {"url_params": {"subject_id": self.subject_id}, "tab_id": f"tab-{self.subject_id}",
                "generated_id": None, "page_id": f"page-{self.subject_id}", "resume": dict(self.secrets)}
        url = f"{self.url}?ig_route={self.route}" if self.route else self.url
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=30)

    async def connect(self) -> None:
        await self._open()
        await asyncio.wait_for(self.scene_ready.wait(), timeout=60)

    async def _reconnect(self) -> None:
        try:
            # python-socketio hands a client events that arrive before its connect is acknowledged: leave only
            # once connected, or the old connection's teardown races the new one.
            await asyncio.wait_for(self._connected.wait(), timeout=30)
            with contextlib.suppress(Exception):  # the worker may have closed it already
                await self.sio.disconnect()
            self.sio = self._new_client()
            await self._open()
        except Exception as exc:  # noqa: BLE001 - reported with the client's figures, not raised in a callback
            self.errors.append(f"relocate to {self.route}: {exc!r}")

    async def join(self) -> None:
        assert self.scene is not None
        self.joined = True
        self.joined_at = self.joined_at or time.monotonic()
        await self.sio.emit("join_game", {"scene_index": self.scene_index, "scene_id": self.scene["scene_id"]})

    async def press_keys(self) -> None:
        """Changes the held key every ~key_interval seconds until the game is over."""
        seq = 0
        while not self.game_over.is_set():
            await asyncio.sleep(self.key_interval * self.rng.uniform(0.5, 1.5))
            if self.game_id is None or self.game_over.is_set() or not self.sio.connected:
                continue
            seq += 1
            held = [] if self.rng.random() < 0.2 else [self.rng.choice(ARROWS)]
            await self.sio.emit("keys", {"game_id": self.game_id, "held": held, "seq": seq})
            self.keys_sent += 1
            self.last_key_at = time.monotonic()
            if self.first_key_at is None:
                self.first_key_at = self.last_key_at

    def summary(self, period: float) -> dict[str, Any]:
        """Per-client figures plus raw lateness and jitter samples (seconds, rounded to microseconds)."""
        return {
            "subject_id": self.subject_id,
            "game_id": self.game_id,
            "packets": len(self.ticks),
            "first_arrival": self.arrivals[0] if self.arrivals else None,
            "last_arrival": self.arrivals[-1] if self.arrivals else None,
            "rate": client_rate(self.arrivals, self.ticks),
            "game_over": self.game_over.is_set(),
            "relocations": self.relocations,
            "route": self.route,
            "errors": self.errors,
            "keys_sent": self.keys_sent,
            "key_span_s": (self.last_key_at - self.first_key_at) if self.first_key_at is not None
                          and self.last_key_at is not None else None,
            "payload_bytes": self.payload_bytes,
            "lateness": [round(v, 6) for v in delivery_lateness(self.arrivals, self.ticks, period,
                                                                   window=max(1, round(1 / period)))],
            "jitter": [round(v, 6) for v in inter_arrival_jitter(self.arrivals, period)],
        }


async def _bounded(coros: list[Any], limit: int) -> None:
    """Awaits ``coros`` with at most ``limit`` running at once (a burst of 400 handshakes stalls the server)."""
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    clients = [SimClient(args.url, f"{args.id_prefix}{i}", random.Random(rng.random()), args.key_interval)
               for i in range(2 * args.pairs)]
    await _bounded([c.connect() for c in clients], args.connect_concurrency)
    print("READY", flush=True)
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    if line.strip() != "GO":
        raise SystemExit(f"expected GO on stdin, got {line!r}")
    go = time.monotonic()
    await asyncio.gather(*(c.join() for c in clients))
    pressers = [asyncio.create_task(c.press_keys()) for c in clients]
    with contextlib.suppress(TimeoutError):  # reported below as clients without game_over
        await asyncio.wait_for(asyncio.gather(*(c.game_over.wait() for c in clients)), timeout=args.timeout)
    ended = time.monotonic()
    for task in pressers:
        task.cancel()
    await asyncio.gather(*pressers, return_exceptions=True)
    await asyncio.gather(*(c.sio.disconnect() for c in clients), return_exceptions=True)
    return {"go": go, "ended": ended, "clients": [c.summary(1.0 / args.fps) for c in clients]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Simulated Socket.IO participants (see module docstring).")
    parser.add_argument("--url", required=True)
    parser.add_argument("--pairs", type=int, required=True, help="games' worth of clients (2 per game)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--id-prefix", default="sim")
    parser.add_argument("--key-interval", type=float, default=0.1)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for every game_over")
    parser.add_argument("--connect-concurrency", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    result = asyncio.run(run(args))
    print("RESULT " + json.dumps(result, separators=(",", ":")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
