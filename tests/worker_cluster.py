"""Worker processes of one experiment on one real Redis, each on its own port, for the worker tests.

Each worker is ``python -m interactive_gym.tools.worker``, as ``interactive-gym run --workers`` starts them
(there behind the front; here each listens on its own port, ``--listen-port``, so a test chooses and can tell
which worker a client talks to). :class:`Participant` is a python-socketio client that
behaves like the page: it keeps the route the server names and follows ``relocate`` to another worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import socketio

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = Path(__file__).resolve().parent / "fixtures" / "cluster_pairs.py"
START_TIMEOUT_S = 60.0
RECONNECT_S = 0.5  # socket.io's first reconnection delay



def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Worker:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def answers_healthz(port: int) -> bool:
    """Whether a server on ``port`` answers ``/healthz`` with 200 (the app, not only an open socket)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            return conn.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def _command(name: str, db: str, redis_url: str, port: int) -> list[str]:
    """A worker of several on its own port, or (``redis_url`` "-") plain ``interactive-gym run``."""
    if redis_url == "-":
        return [sys.executable, "-m", "interactive_gym.cli", "run", str(EXPERIMENT), "--db", db, "--port",
                str(port), "--skip-preflight", "--log-level", "warning"]
    return [sys.executable, "-m", "interactive_gym.tools.worker", str(EXPERIMENT), "--worker", name, "--redis",
            redis_url, "--db", db, "--listen-port", str(port), "--log-level", "warning"]


def start_worker(name: str, db: str, redis_url: str, folder: Path, max_steps: int) -> Worker:
    """Starts one worker and waits until it answers ``/healthz``."""
    port = free_port()
    log = folder / f"{name}.log"
    env = {**os.environ, "IG_TEST_MAX_STEPS": str(max_steps), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(_command(name, db, redis_url, port), stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=ROOT)
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers_healthz(port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"worker {name} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return Worker(name, port, process, log)


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()


@contextlib.contextmanager
def running_workers(names: list[str], db: str, redis_url: str, folder: Path,
                    max_steps: int = 30) -> Iterator[dict[str, Worker]]:
    workers: dict[str, Worker] = {}
    try:
        for name in names:
            workers[name] = start_worker(name, db, redis_url, folder, max_steps)
        yield workers
    finally:
        for worker in workers.values():
            stop_worker(worker)


@dataclass
class Participant:
    """One simulated page: connects to a worker, follows ``relocate``, joins the game scene, holds a key."""

    subject_id: str
    workers: dict[str, Worker]
    route: str
    sio: socketio.AsyncClient | None = None
    scene: dict[str, Any] | None = None
    routes_seen: list[str] = field(default_factory=list)  # every worker this page was connected to
    relocations: int = 0
    joined: bool = False
    ignore_relocations: int = 0  # the first n are not followed, as by a page closed at that moment
    ignored: int = 0
    game_id: str | None = None
    game_over: dict[str, Any] | None = None
    renders: int = 0
    errors: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # resume secrets the server issued, as the page keeps
    done: asyncio.Event = field(default_factory=asyncio.Event)
    _scene_ready: asyncio.Event = field(default_factory=asyncio.Event)
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _moves: set[asyncio.Task[None]] = field(default_factory=set)
    _leaving: bool = False  # this client is disconnecting on purpose (no automatic reconnect)
    _closed: bool = False

    def _new_client(self) -> socketio.AsyncClient:
        # A fresh client per connection, as the page's manager opens a fresh engine: python-socketio's client
        # closes its HTTP session when the server disconnects it, so it cannot be reused for the next one.
        sio = socketio.AsyncClient(reconnection=False, handle_sigint=False)
        sio.on("scene", self._on_scene)
        sio.on("connect", self._on_connect)

        async def on_disconnect(reason: Any = None) -> None:
            # As the page's client: a server that closed the socket on purpose is not reconnected to.
            if reason != sio.reason.SERVER_DISCONNECT:
                await self._on_disconnect(sio)

        sio.on("disconnect", on_disconnect)
        sio.on("session", lambda data: self.secrets.__setitem__(data["participant_id"], data["resume_secret"]))
        sio.on("route", lambda data: setattr(self, "route", data["route"]))
        sio.on("relocate", self._on_relocate)
        sio.on("game_start", lambda data: setattr(self, "game_id", data.get("game_id")))
        sio.on("render", self._on_render)
        sio.on("game_over", self._on_game_over)
        sio.on("error", lambda data: self.errors.append(f"{data.get('event')}: {data.get('message')}"))
        sio.on("refused", lambda data: self.errors.append(f"refused: {data.get('reason')}"))
        return sio

    def front(self) -> Worker:
        """Where the front sends this page: the worker its route names while that one runs, else a running one."""
        named = self.workers[self.route]
        if named.process.poll() is None:
            return named
        return next(w for w in self.workers.values() if w.process.poll() is None)

    async def connect(self) -> None:
        self._scene_ready.clear()
        self._connected.clear()
        self.sio = self._new_client()
        worker = self.front()
        self.routes_seen.append(worker.name)
        auth = {"url_params": {"subject_id": self.subject_id}, "tab_id": f"tab-{self.subject_id}",
                "generated_id": None, "page_id": f"page-{self.subject_id}", "resume": self.secrets}
        await self.sio.connect(worker.url, auth=auth, transports=["websocket"], wait_timeout=30)

    async def enter(self) -> None:
        """Connects and waits for the game scene (following relocations meanwhile)."""
        await self.connect()
        await asyncio.wait_for(self._scene_ready.wait(), timeout=60)
        await asyncio.wait_for(self._connected.wait(), timeout=60)  # python-socketio may hand the scene first

    async def join(self) -> None:
        assert self.scene is not None
        self.joined = True
        assert self.sio is not None
        await self.sio.emit("join_game", {"scene_index": self.scene["index"], "scene_id": self.scene["scene_id"]})

    async def _on_scene(self, data: dict[str, Any]) -> None:
        scene = data.get("scene") or {}
        if scene.get("kind") == "gym" and not scene.get("game_over"):
            self.scene = {"index": data["index"], "scene_id": scene["scene_id"]}
            self._scene_ready.set()
        elif scene.get("kind") == "end" or scene.get("game_over"):
            self.game_over = self.game_over or scene.get("game_over")
            self.done.set()

    async def _on_connect(self) -> None:
        self._connected.set()
        if self.joined:
            await self.join()  # a reconnect (relocation) re-joins, as the page's game view does

    async def _on_disconnect(self, client: socketio.AsyncClient) -> None:
        if client is self.sio and not self._leaving:  # the server went away: reconnect as the page does
            self._spawn(self._reconnect(RECONNECT_S, leave=False))

    async def _on_relocate(self, data: dict[str, Any]) -> None:
        if self.ignored < self.ignore_relocations:
            self.ignored += 1
            return  # a page that stopped (closed) before it could follow
        self.relocations += 1
        self.route = data["route"]
        # The page's rule (static/js/relocation.js, without its window: a test lasts less): moves close together
        # wait longer each.
        wait = 0.0 if self.relocations < 2 else min(2.0, 0.25 * 2 ** (self.relocations - 2))
        self._spawn(self._reconnect(wait, leave=True))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._moves.add(task)
        task.add_done_callback(self._moves.discard)

    async def _reconnect(self, wait: float, leave: bool) -> None:
        if leave:
            # python-socketio hands this client events that arrive before its connect is acknowledged (the
            # page's client holds them back until then): leave only once connected.
            await asyncio.wait_for(self._connected.wait(), timeout=30)
            assert self.sio is not None
            self._leaving = True
            await self.sio.disconnect()
        await asyncio.sleep(wait)
        self._leaving = False
        if not self._closed:
            await self.connect()

    async def _on_render(self, data: dict[str, Any]) -> None:
        self.renders += 1

    async def _on_game_over(self, data: dict[str, Any]) -> None:
        self.game_over = data
        self.done.set()

    async def close(self) -> None:
        self._closed = self._leaving = True
        if self.sio is not None:
            with contextlib.suppress(Exception):
                await self.sio.disconnect()
