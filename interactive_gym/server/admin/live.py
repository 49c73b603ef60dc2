"""The dashboard's live view: a Socket.IO namespace ``/admin`` pushed about once a second while one is open.

Why a Socket.IO namespace rather than Server-Sent Events: the server already runs Socket.IO and shuts its
connections down with the app, while a never-ending SSE response keeps uvicorn waiting at shutdown; and the
push costs the same either way (one snapshot built and encoded per second, shared by every open dashboard,
one frame each). Nothing is built while no dashboard is connected: the push task runs only while one is.

A connection must carry the session cookie (``SameSite=Strict``, so a cross-site page cannot send it);
without one it is refused and counted. A session logged out or expired is disconnected at the next push.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from socketio.exceptions import ConnectionRefusedError as SocketRefused

from interactive_gym.server.admin.auth import COOKIE_NAME, AdminAuth
from interactive_gym.server.admin.reads import MAX_NEW_ROWS, StudyReader
from interactive_gym.server.admin.snapshot import History, StudyTally, build_snapshot

log = logging.getLogger("interactive_gym.admin")
NAMESPACE = "/admin"
ROOM = "dashboards"
PUSH_INTERVAL_S = 1.0
CATCH_UP_BATCHES = 20  # database reads per push at most (a dashboard opened late catches up quickly)
MAX_DASHBOARDS = 16


def cookie_from_environ(environ: dict[str, Any]) -> str | None:
    """The session cookie's value from an ASGI/WSGI environ's ``HTTP_COOKIE``, if any."""
    header = environ.get("HTTP_COOKIE")
    if not isinstance(header, str) or len(header) > 8192:
        return None
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(COOKIE_NAME)
    return morsel.value if morsel is not None else None


class LiveDashboard:
    """Pushes :func:`~interactive_gym.server.admin.snapshot.build_snapshot` to every open dashboard.

    Args:
        sio: The Socket.IO server.
        experiment: The Experiment.
        auth: The dashboard's sessions.
        reader: Read-only access to the database (rows added since the last push).
        clock: Wall clock.
        interval_s: Seconds between pushes.
    """

    def __init__(self, sio: Any, experiment: Any, auth: AdminAuth, reader: StudyReader,
                 clock: Callable[[], float] = time.time, interval_s: float = PUSH_INTERVAL_S) -> None:
        self.sio = sio
        self.experiment = experiment
        self.auth = auth
        self.reader = reader
        self.clock = clock
        self.interval_s = interval_s
        self.tally = StudyTally()
        self.history = History()
        self.pushes = 0
        # CPU seconds the pushes cost (reading new rows, building and encoding the view), for the view itself:
        # what an open dashboard costs the server, measured where it is spent (benchmarks/dashboard_cost.py).
        self.push_cpu_s = 0.0
        self._clients: dict[str, str] = {}  # socket id -> its session cookie
        self._task: asyncio.Task[None] | None = None
        self._sent_history = -1  # history version the open dashboards have

    def register(self) -> None:
        self.sio.on("connect", self._connect, namespace=NAMESPACE)
        self.sio.on("disconnect", self._disconnect, namespace=NAMESPACE)

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        cookie = cookie_from_environ(environ)
        if self.auth.session_of(cookie, self.clock()) is None:
            self.auth.refuse("socket:connect")
            raise SocketRefused("unauthorized: log in at /admin", {"status": 401})
        if len(self._clients) >= MAX_DASHBOARDS:
            raise SocketRefused("too many dashboards open", {"status": 429})
        assert cookie is not None
        self._clients[sid] = cookie
        await self.sio.enter_room(sid, ROOM, namespace=NAMESPACE)
        self._sent_history = -1  # the newcomer needs the plot series
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="admin-live")
        return True

    async def _disconnect(self, sid: str, *args: Any) -> None:
        self._clients.pop(sid, None)

    async def _run(self) -> None:
        while self._clients:
            try:
                await self.push()
            except Exception:  # noqa: BLE001 - the dashboard must never stop because of one bad push
                log.exception("dashboard push failed")
            await asyncio.sleep(self.interval_s)

    async def push(self) -> None:
        """Catches up with the database, drops logged-out dashboards, and sends the view to the rest."""
        await self.catch_up()
        started = time.thread_time()
        now = self.clock()
        for sid, cookie in list(self._clients.items()):
            if self.auth.session_of(cookie, now) is None:
                self._clients.pop(sid, None)
                await self.sio.disconnect(sid, namespace=NAMESPACE)
        if not self._clients:
            return
        view = self.view(with_history=self.history.version != self._sent_history)
        view["push_cpu_s"] = round(self.push_cpu_s + time.thread_time() - started, 6)  # up to this push
        await self.sio.emit("snapshot", view, room=ROOM, namespace=NAMESPACE)
        self._sent_history = view["history_version"]
        self.pushes += 1
        self.push_cpu_s += time.thread_time() - started

    async def catch_up(self) -> None:
        """Applies the events and p2p episodes written since the last read (off the event loop)."""
        for _ in range(CATCH_UP_BATCHES):
            events, episodes, cpu_s = await asyncio.to_thread(self._read_new_rows)
            self.push_cpu_s += cpu_s
            started = time.thread_time()
            self.tally.add_events(events)
            self.tally.add_episodes(episodes)
            self.push_cpu_s += time.thread_time() - started
            if len(events) < MAX_NEW_ROWS and len(episodes) < MAX_NEW_ROWS:
                return

    def _read_new_rows(self) -> tuple[Any, Any, float]:
        """The rows added since the last read, and the CPU time this thread spent reading them."""
        started = time.thread_time()
        events, episodes = self.reader.new_rows(self.tally.last_event_id, self.tally.last_episode_id)
        return events, episodes, time.thread_time() - started

    def view(self, with_history: bool = True) -> dict[str, Any]:
        """The current snapshot (without a database read)."""
        return build_snapshot(self.experiment, self.tally, self.history, now=self.clock(),
                              monotonic=self.experiment.monotonic(), enrolment_open=self.experiment.flow.enrolment_open,
                              unauthorized=sum(self.auth.unauthorized.values()), with_history=with_history)

    async def close(self) -> None:
        self._clients.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self.reader.close)
