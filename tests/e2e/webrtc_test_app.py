"""Test-only ASGI app for the WebRTC transport tests: static files, the test pages, and the SignalingRelay.

It stands in for the product's game coordinator (written elsewhere): a test-only ``test_join`` event
``{game_id, player_id, participant_id}`` puts a connection into a game, and once ``players_per_game`` members are in,
every member gets its own ``pyodide_game_ready`` (own ``turn_config`` and ``rtc_configuration``: ephemeral
credentials are per participant).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import socketio
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from interactive_gym.configurations.webrtc import WebRTCSettings
from interactive_gym.server.signaling import SignalingRelay
from interactive_gym.server.static_files import static_mounts

PAGES_DIR = Path(__file__).parent / "pages"


class MembershipTable:
    """game_id -> {player_id: sid}; implements the relay's GameMembership protocol."""

    def __init__(self) -> None:
        self.games: dict[str, dict[int, str]] = {}
        self.subjects: dict[str, dict[int, str]] = {}

    def add(self, sid: str, game_id: str, player_id: int, participant_id: str) -> None:
        self.games.setdefault(game_id, {})[player_id] = sid
        self.subjects.setdefault(game_id, {})[player_id] = participant_id

    def remove(self, sid: str) -> None:
        for players in self.games.values():
            for pid in [p for p, s in players.items() if s == sid]:
                del players[pid]

    def member_of(self, sid: str) -> tuple[str, int] | None:
        for game_id, players in self.games.items():
            for pid, psid in players.items():
                if psid == sid:
                    return game_id, pid
        return None

    def sid_of(self, game_id: str, player_id: int) -> str | None:
        return self.games.get(game_id, {}).get(player_id)


class WebRTCTestApp:
    """Builds the ASGI app; ``.relay.stats`` and ``.membership`` are readable from the test thread.

    Args:
        settings: resolved WebRTC settings (what ``RemoteConfig.webrtc`` would produce), or None for no TURN/STUN.
        players_per_game: members needed before ``pyodide_game_ready`` is sent.
        now: clock for minting credentials (tests pass a past clock to get expired credentials).
    """

    def __init__(self, settings: WebRTCSettings | None, players_per_game: int = 2,
                 now: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.players_per_game = players_per_game
        self.now = now
        self.membership = MembershipTable()
        self.sio = socketio.AsyncServer(async_mode="asgi")
        self.relay = SignalingRelay(self.membership)
        self.relay.register(self.sio)
        self.sio.on("test_join", self._on_join)
        self.sio.on("disconnect", self._on_disconnect)
        starlette = Starlette(routes=[*static_mounts(), Mount("/test-pages", app=StaticFiles(directory=PAGES_DIR))])
        self.asgi = socketio.ASGIApp(self.sio, other_asgi_app=starlette)

    async def _on_join(self, sid: str, data: dict[str, Any]) -> None:
        game_id, player_id, participant = data["game_id"], int(data["player_id"]), data["participant_id"]
        self.membership.add(sid, game_id, player_id, participant)
        members = self.membership.games[game_id]
        if len(members) < self.players_per_game:
            return
        subjects = self.membership.subjects[game_id]
        for pid, member_sid in sorted(members.items()):
            payload: dict[str, Any] = {
                "game_id": game_id,
                "players": sorted(members),
                "player_subjects": {str(p): subjects[p] for p in sorted(members)},
                "seed": 1234,
                "turn_config": None,
                "rtc_configuration": {"iceServers": [], "iceTransportPolicy": "all"},
            }
            if self.settings is not None:
                grant = self.settings.grant_for(subjects[pid], self.now())
                payload["turn_config"] = grant.turn_config
                payload["rtc_configuration"] = grant.rtc_configuration
            await self.sio.emit("pyodide_game_ready", payload, to=member_sid)

    async def _on_disconnect(self, sid: str, *args: Any) -> None:
        self.membership.remove(sid)
