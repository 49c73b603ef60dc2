"""Stand-ins for what a game mode talks to, for tests without sockets: Socket.IO, the participant flow, WebRTC.

Each records what it was asked (``FakeSio.emits``, ``FakeHooks.events`` and ``timeouts``) so that tests assert on
what a participant's page would have been sent.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from interactive_gym.configurations.webrtc import TurnGrant
from interactive_gym.server.flow.participants import Participant


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread: in a full test session Playwright's loop owns this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class FakeSio:
    """The Socket.IO server as a mode uses it; every emit must name its target."""

    def __init__(self) -> None:
        self.emits: list[tuple[str, Any, str | None]] = []

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None) -> None:
        assert to or room, f"{event} emitted without a target"
        self.emits.append((event, data, to))

    async def enter_room(self, sid: str, room: str) -> None:
        pass

    async def leave_room(self, sid: str, room: str) -> None:
        pass

    def to(self, sid: str, event: str = "waiting") -> list[Any]:
        """What was sent to ``sid`` as ``event``, in order."""
        return [data for e, data, target in self.emits if e == event and target == sid]


class FakeHooks:
    """The participant flow as a mode sees it: lookups in ``people``, notices through ``sio``."""

    def __init__(self, people: dict[str, Participant], sio: FakeSio) -> None:
        self.people, self.sio = people, sio
        self.timeouts: list[str] = []
        self.events: list[tuple[str, dict[str, Any]]] = []

    def lookup(self, participant_id: str) -> Participant | None:
        return self.people.get(participant_id)

    def game_over(self, participant_id: str, scene_id: str, record: dict[str, str], show: bool) -> None:
        raise AssertionError("no game ends here")

    def wait_timeout(self, participant_id: str, scene_id: str) -> None:
        self.timeouts.append(participant_id)

    async def notify(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        if participant.sid:
            await self.sio.emit(event, data, to=participant.sid)

    async def record_event(self, kind: str, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        self.events.append((kind, data))


class FakeWebrtc:
    """WebRTC settings without TURN: host candidates only."""

    mode = "none"
    refresh_margin_s = 300.0

    def grant_for(self, participant_id: str, now: float) -> TurnGrant:
        return TurnGrant(None, {"iceServers": [], "iceTransportPolicy": "all"})
