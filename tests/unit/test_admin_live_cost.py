"""The live dashboard counts the CPU its pushes cost and sends the figure with each view."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from interactive_gym.server.admin.live import LiveDashboard


class RecordingSio:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any]] = []

    async def emit(self, event: str, data: Any, **kwargs: Any) -> None:
        self.emitted.append((event, data))

    async def disconnect(self, sid: str, **kwargs: Any) -> None:
        raise AssertionError("no session was logged out")


class AnySession:
    def session_of(self, cookie: str | None, now: float | None) -> str | None:
        return "session"


class SlowReader:
    """Spends some CPU on every read, as a real database read does."""

    def new_rows(self, last_event_id: int, last_episode_id: int) -> tuple[list[Any], list[Any]]:
        spin(0.01)
        return [], []


def spin(cpu_s: float) -> None:
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass


class CostlyView(LiveDashboard):
    def view(self, with_history: bool = True) -> dict[str, Any]:
        spin(0.02)
        return {"history_version": 1}


def test_each_push_carries_the_cpu_the_pushes_cost_so_far() -> None:
    sio = RecordingSio()
    live = CostlyView(sio, experiment=None, auth=AnySession(), reader=SlowReader())  # type: ignore[arg-type]
    live._clients["sid-1"] = "cookie"

    async def two_pushes() -> None:
        await live.push()
        await live.push()

    asyncio.run(two_pushes())
    (_, first), (_, second) = sio.emitted
    # Reading (in a worker thread) and building the view (on the loop) both count: at least 30 ms a push.
    assert first["push_cpu_s"] >= 0.03
    assert second["push_cpu_s"] >= first["push_cpu_s"] + 0.03
    assert live.push_cpu_s >= second["push_cpu_s"] and live.pushes == 2
