"""Server-mode games: waiting rooms per scene, forming games, running them, and re-attaching returning players.

Owned by :class:`~interactive_gym.server.experiment_server.ExperimentServer`; it talks to participants only
through the callbacks it is given, so the matching and lifecycle rules stay readable in one place.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.game_runner import Emit, GameRunner
from interactive_gym.server.participants import Participant
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.tick_scheduler import TickScheduler
from interactive_gym.server.waiting_room import WaitingRoom

log = logging.getLogger("interactive_gym.games")

# Called when a participant's game ended: (participant_id, reason, message).
GameOverCallback = Callable[[str, str, str], Awaitable[None]]
# Called when a participant waited too long: (participant_id,).
TimeoutCallback = Callable[[str], Awaitable[None]]

# Keys a page sent just before it learned its game ended are a harmless race, not an error: for this long
# after a game ends, its former players' keys for it are ignored without an error reply.
ENDED_GAME_KEYS_QUIET_S = 5.0



class GameManager:
    """Waiting rooms and running server-mode games."""

    def __init__(self, emit: Emit, writer: Any, enter_room: Callable[[str, str], Awaitable[None]],
                 on_game_over: GameOverCallback, on_wait_timeout: TimeoutCallback,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._emit = emit
        self._writer = writer
        self._enter_room = enter_room
        self._on_game_over = on_game_over
        self._on_wait_timeout = on_wait_timeout
        self.rooms: dict[str, WaitingRoom] = {}
        self.runners: dict[str, GameRunner] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._scenes: dict[str, GymScene] = {}
        # One shared ticker per fps: every game of that rate is stepped from one timer and one task.
        self._tickers: dict[float, TickScheduler] = {}
        self.games_started = 0
        self._clock = clock
        # game_id -> (when it ended, its human participant ids), for ENDED_GAME_KEYS_QUIET_S.
        self._ended: dict[str, tuple[float, frozenset[str]]] = {}

    def room_for(self, scene: GymScene) -> WaitingRoom:
        room = self.rooms.get(scene.scene_id)
        if room is None:
            room = WaitingRoom(len(scene.facts.humans), scene.waiting_room_timeout_s)
            self.rooms[scene.scene_id] = room
            self._scenes[scene.scene_id] = scene
        return room

    async def join(self, participant: Participant, scene: GymScene, now: float,
                   lookup: Callable[[str], Participant | None]) -> None:
        """A participant's page is ready for ``scene``: re-attach to their running game, or queue them."""
        runner = self.runners.get(participant.game_id or "")
        if runner is not None and participant.participant_id in runner.game.humans.values():
            await self._attach(participant, runner)
            return
        room = self.room_for(scene)
        group = room.join(participant.participant_id, now)
        if group is None:
            await self._emit("waiting", {"scene_id": scene.scene_id, "position": room.position(
                participant.participant_id), "needed": room.group_size, "timeout_s": room.timeout_s},
                to=participant.sid)
            return
        await self._start_game(scene, [lookup(pid) for pid in group])

    def leave_waiting(self, participant_id: str) -> None:
        for room in self.rooms.values():
            room.leave(participant_id)

    async def _start_game(self, scene: GymScene, members: list[Participant | None]) -> None:
        players = [m for m in members if m is not None]
        game_id = "g-" + secrets.token_hex(6)
        humans = dict(zip(scene.facts.humans, (p.participant_id for p in players), strict=True))
        game = ServerGame(game_id, scene, humans, game_seed=secrets.randbelow(2**31 - 1) if scene.seed is None
                          else scene.seed + self.games_started)
        self.games_started += 1
        runner = GameRunner(game, self._emit, self._writer, self._finished, self._ticker_for(scene.fps))
        self.runners[game_id] = runner
        for agent, participant in zip(scene.facts.humans, players, strict=True):
            participant.game_id = game_id
            participant.extra.pop("game_over", None)
            await self._attach(participant, runner, agent)
        task = asyncio.create_task(runner.run(), name=f"game-{game_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ticker_for(self, fps: float) -> TickScheduler:
        ticker = self._tickers.get(fps)
        if ticker is None:
            ticker = self._tickers[fps] = TickScheduler(fps)
        return ticker

    async def _attach(self, participant: Participant, runner: GameRunner, agent: str | None = None) -> None:
        agent = agent or next(a for a, pid in runner.game.humans.items() if pid == participant.participant_id)
        if participant.sid is None:
            return
        await self._enter_room(participant.sid, runner.room)
        runner.human_back(agent)
        game = runner.game
        await self._emit("game_start", {
            "game_id": game.game_id, "scene_id": game.scene.scene_id, "agent_id": agent,
            "players": game.agents, "episode": max(game.episode, 0), "fps": game.scene.fps,
            "num_episodes": game.scene.num_episodes, "snapshot": runner.snapshot() if game.episode >= 0 else None,
        }, to=participant.sid)

    def human_disconnected(self, participant: Participant) -> None:
        runner = self.runners.get(participant.game_id or "")
        if runner is None:
            return
        for agent, pid in runner.game.humans.items():
            if pid == participant.participant_id:
                runner.human_left(agent)

    def set_keys(self, participant: Participant, game_id: str, held: list[str], seq: int) -> str | None:
        """Applies a key update; returns an error message if the participant is not in that game.

        Keys for a game that ended moments ago, from one of its players, are ignored quietly (None).
        """
        runner = self.runners.get(game_id)
        if runner is None and self._just_ended(game_id, participant.participant_id):
            return None
        if runner is None or participant.game_id != game_id:
            return "you are not in this game"
        for agent, pid in runner.game.humans.items():
            if pid == participant.participant_id:
                runner.game.set_keys(agent, held, seq)
                return None
        return "you are not in this game"

    async def expire_waiters(self, now: float) -> None:
        for room in self.rooms.values():
            for pid in room.expire(now):
                await self._on_wait_timeout(pid)

    def _just_ended(self, game_id: str, participant_id: str) -> bool:
        ended = self._ended.get(game_id)
        return ended is not None and participant_id in ended[1] and \
            self._clock() - ended[0] < ENDED_GAME_KEYS_QUIET_S

    def _remember_ended(self, game: ServerGame) -> None:
        now = self._clock()
        # Forget games ended long ago first, so the record stays as small as the recent end rate.
        for game_id in [gid for gid, (at, _) in self._ended.items() if now - at >= ENDED_GAME_KEYS_QUIET_S]:
            del self._ended[game_id]
        self._ended[game.game_id] = (now, frozenset(game.humans.values()))

    async def _finished(self, runner: GameRunner, reason: str) -> None:
        self.runners.pop(runner.game.game_id, None)
        self._remember_ended(runner.game)
        message = game_over_record(reason)["message"]
        await self._emit("game_over", {"game_id": runner.game.game_id, "reason": reason, "message": message},
                         room=runner.room)
        for pid in runner.game.humans.values():
            await self._on_game_over(pid, reason, message)

    def lateness(self) -> dict[str, Any]:
        """Tick lateness of every running game (for logs and the capacity benchmark)."""
        return {gid: r.stats.summary() for gid, r in self.runners.items()}

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ticker in self._tickers.values():
            await ticker.close()
