"""The async shell around a :class:`ServerGame`: ticks it at the scene's fps, sends render packets to the
game's Socket.IO room, streams step records to storage, and ends the game when a human is gone too long.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from interactive_gym.server.game_clock import FixedRateClock
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.storage_records import StepRecord

log = logging.getLogger("interactive_gym.game")


class Emit(Protocol):
    async def __call__(self, event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None: ...


class GameRunner:
    """Runs one server-mode game to its end.

    Args:
        game: The game logic.
        emit: ``sio.emit``.
        writer: The experiment's ``DataWriter``.
        on_finished: Called once with ``(runner, reason)`` when the game ends for any reason.
    """

    def __init__(self, game: ServerGame, emit: Emit, writer: Any,
                 on_finished: Callable[[GameRunner, str], Awaitable[None]]) -> None:
        self.game = game
        self._emit = emit
        self._writer = writer
        self._on_finished = on_finished
        self.clock = FixedRateClock(game.scene.fps)
        self._gone_since: dict[str, float] = {}
        self.end_reason: str | None = None

    @property
    def room(self) -> str:
        return self.game.game_id

    def human_left(self, agent: str) -> None:
        """A human's socket went away: they play the default action until back or the grace runs out."""
        self.game.set_connected(agent, False)
        self._gone_since.setdefault(agent, self.clock.now())

    def human_back(self, agent: str) -> None:
        self.game.set_connected(agent, True)
        self._gone_since.pop(agent, None)

    def snapshot(self) -> dict[str, Any]:
        """A full render packet for a page that (re)joins mid-game."""
        return self.game.surface.snapshot()

    def _grace_expired(self) -> bool:
        grace = self.game.scene.disconnect_grace_s
        now = self.clock.now()
        return any(now - since >= grace for since in self._gone_since.values())

    async def run(self) -> None:
        """Plays every episode; always stores what was played and reports the end."""
        reason = "complete"
        try:
            while self.game.episode + 1 < self.game.scene.num_episodes:
                finished = await self._play_episode()
                if not finished:
                    reason = "partner_left"
                    break
        except Exception:  # noqa: BLE001 - a crashing env ends its own game, never the server
            log.exception("game %s crashed", self.game.game_id)
            reason = "error"
        self.end_reason = reason
        await self._on_finished(self, reason)

    async def _play_episode(self) -> bool:
        game = self.game
        packet = game.start_episode()
        episode_id = await self._writer.begin_episode(
            scene_id=game.scene.scene_id, game_id=game.game_id, episode=game.episode, mode="server",
            source="server", seed=game.seed, agents=game.agents, meta={"fps": game.scene.fps})
        await self._emit("episode_start", {"game_id": game.game_id, "episode": game.episode, "seed": game.seed,
                                           "packet": packet}, room=self.room)
        status = "partial"
        try:
            while True:
                await self.clock.wait_next()
                if self._grace_expired():
                    return False
                outcome = game.tick()
                self._writer.append_steps(episode_id, [StepRecord(**outcome.record)])
                await self._emit("render", {"game_id": game.game_id, "episode": game.episode,
                                            "t": game.t, "packet": outcome.packet}, room=self.room)
                if outcome.episode_done:
                    status = "complete"
                    return True
        finally:
            meta = {"fps": game.scene.fps, "tick_lateness": self.clock.stats.summary(),
                    "steps": game.t, "returns": game.episode_rewards}
            await self._writer.end_episode(episode_id, status=status, meta=meta)
