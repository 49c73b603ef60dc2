"""The async shell around a :class:`ServerGame`: ticks it at the scene's fps, sends render packets to the
game's Socket.IO room, streams step records to storage, and ends the game when a human is gone too long (or,
with ``GymScene(on_partner_drop="ai")``, hands that human's agent to the scene's partner-drop policy while another
human still plays).

The ticks come from a :class:`~interactive_gym.server.tick_scheduler.TickScheduler` shared by every game of
the same fps, which calls :meth:`GameRunner.step`. The runner's own task (:meth:`GameRunner.run`) only wakes
at episode boundaries: it starts an episode, waits until a step or failure ends it, and stores the result.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from interactive_gym.server.game_clock import LatenessStats
from interactive_gym.server.latest_wins import LatestWins
from interactive_gym.server.remote_game import ServerGame, Takeover
from interactive_gym.server.storage_records import StepRecord
from interactive_gym.server.tick_scheduler import TickScheduler

log = logging.getLogger("interactive_gym.game")
MAX_ERROR_CHARS = 4000


class Emit(Protocol):
    async def __call__(self, event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None: ...


class GameRunner:
    """Runs one server-mode game to its end.

    Args:
        game: The game logic.
        emit: ``sio.emit``.
        writer: The experiment's ``DataWriter``.
        on_finished: Called once with ``(runner, reason)`` when the game ends for any reason.
        ticker: The shared ticker for the scene's fps (``ticker.fps == game.scene.fps``).
    """

    def __init__(self, game: ServerGame, emit: Emit, writer: Any,
                 on_finished: Callable[[GameRunner, str], Awaitable[None]], ticker: TickScheduler) -> None:
        if ticker.fps != game.scene.fps:
            raise ValueError(f"game {game.game_id} runs at {game.scene.fps} fps but was given a "
                             f"{ticker.fps} fps ticker")
        self.game = game
        self._emit = emit
        self._writer = writer
        self._on_finished = on_finished
        self._ticker = ticker
        self.stats = LatenessStats()
        self._gone_since: dict[str, float] = {}
        self._takeovers_to_announce: list[Takeover] = []
        self.end_reason: str | None = None
        # Set by end(): the game stops at its next tick (or before its next episode) with this reason.
        self._end_requested: str | None = None
        self.error_text: str | None = None
        # While an episode is being ticked: its storage id and the future its last step resolves
        # (True: played to the end; False: a human was gone too long; an exception: the game crashed).
        self._episode_id: Any = None
        self._episode_over: asyncio.Future[bool] | None = None

    @property
    def room(self) -> str:
        return self.game.game_id

    def human_left(self, agent: str) -> None:
        """A human's socket went away: they play the default action until back or the grace runs out."""
        if agent in self.game.takeovers:
            return  # an AI plays this agent now; its participant's absence changes nothing
        self.game.set_connected(agent, False)
        self._gone_since.setdefault(agent, self._ticker.now())

    def human_back(self, agent: str) -> None:
        self.game.set_connected(agent, True)
        self._gone_since.pop(agent, None)

    def end(self, reason: str) -> None:
        """Ends the game early with ``reason`` (the episode being played is kept, marked partial)."""
        self._end_requested = self._end_requested or reason
        self._end_episode(False)

    def snapshot(self) -> dict[str, Any]:
        """A full render packet for a page that (re)joins mid-game."""
        return self.game.surface.snapshot()

    def _overdue(self) -> list[str]:
        if not self._gone_since:  # the usual case: skip reading the clock every tick
            return []
        grace = self.game.scene.disconnect_grace_s
        now = self._ticker.now()
        return [agent for agent, since in self._gone_since.items() if now - since >= grace]

    def _grace_expired(self) -> bool:
        """True if a human gone past the grace period ends the episode.

        With ``on_partner_drop="ai"`` each such human's agent is taken over by the scene's policy instead, as
        long as some other human still plays (gone within the grace counts: they may come back); when every
        human is gone the game ends as with ``"end"``.
        """
        overdue = self._overdue()
        if not overdue:
            return False
        scene = self.game.scene
        if scene.on_partner_drop != "ai" or scene.takeover is None:
            return True
        if not [agent for agent in self.game.humans_in_control if agent not in overdue]:
            return True
        for agent in overdue:
            del self._gone_since[agent]
            self._takeovers_to_announce.append(self.game.take_over(agent, scene.takeover))
        return False

    async def run(self) -> None:
        """Plays every episode; always stores what was played and reports the end."""
        reason = "complete"
        try:
            while self.game.episode + 1 < self.game.scene.num_episodes:
                if self._end_requested is not None:
                    reason = self._end_requested
                    break
                finished = await self._play_episode()
                if not finished:
                    reason = self._end_requested or "partner_left"
                    break
        except Exception as exc:  # noqa: BLE001 - a crashing env ends its own game, never the server
            log.exception("game %s crashed", self.game.game_id)
            reason = "error"
            # Kept for the data (events row) and the participant flow; the last lines say where it failed.
            self.error_text = "".join(traceback.format_exception(exc))[-MAX_ERROR_CHARS:]
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
        self._episode_id = episode_id
        self._episode_over = asyncio.get_running_loop().create_future()
        self._ticker.add(self)
        try:
            finished = await self._episode_over
            if finished:
                status = "complete"
            return finished
        finally:
            self._ticker.discard(self)
            self._episode_over = None
            meta = {"fps": game.scene.fps, "tick_lateness": self.stats.summary(),
                    "steps": game.t, "returns": game.episode_rewards}
            if game.takeovers:
                meta["takeovers"] = game.takeover_meta()
            await self._writer.end_episode(episode_id, status=status, meta=meta)

    # ------------------------------------------------------------------------------ called by the ticker

    def step(self) -> Awaitable[None] | None:
        """One tick: the grace check, the game step, the step record; returns the render send to await."""
        if self._episode_over is None or self._episode_over.done():
            return None  # the episode already ended (e.g. cancelled at shutdown); nothing to tick
        if self._end_requested is not None or self._grace_expired():
            self._end_episode(False)
            return None
        game = self.game
        outcome = game.step()
        # Stored before rendering: if render_fn raises, the ticker hands the error to fail(), run() logs it and
        # ends the game as an error, and the step it was drawing is kept.
        self._writer.append_steps(self._episode_id, [StepRecord(**outcome.record)])
        payload = {"game_id": game.game_id, "episode": game.episode, "t": game.t, "packet": game.render()}
        send = self._send_render(payload, outcome.episode_done)
        if self._takeovers_to_announce:
            announced, self._takeovers_to_announce = self._takeovers_to_announce, []
            return self._announce_takeovers(announced, send)
        return send

    async def _announce_takeovers(self, takeovers: list[Takeover], send: Awaitable[None]) -> None:
        # The data first (an events row per takeover), then the players' pages, then this tick's render.
        game = self.game
        for record in takeovers:
            log.info("game %s: %s took over agent %s of participant %s at episode %d step %d", game.game_id,
                     record.controller, record.agent, record.participant, record.episode, record.t)
            await self._writer.record_event(
                "partner_takeover", {"agent": record.agent, "participant": record.participant,
                                     "controller": record.controller, "episode": record.episode, "frame": record.t},
                participant_id=record.participant, game_id=game.game_id, scene_id=game.scene.scene_id)
            await self._emit("partner_takeover", {"game_id": game.game_id, "agent_id": record.agent,
                                                  "episode": record.episode, "t": record.t}, room=self.room)
        await send

    def fail(self, error: Exception) -> None:
        """The step or its send raised: :meth:`run` logs it and ends the game with reason ``"error"``."""
        self._ticker.discard(self)
        if self._episode_over is not None and not self._episode_over.done():
            self._episode_over.set_exception(error)

    async def _send_render(self, payload: dict[str, Any], episode_done: bool) -> None:
        # Stop ticking at once, but end the episode only after the last render is out, so the page always
        # gets it before the next episode_start or the game_over.
        if episode_done:
            self._ticker.discard(self)
        # LatestWins: a slow reader's waiting render is replaced by this one, sent as a full snapshot (the
        # diff's predecessor never reached that page); see server/latest_wins.py.
        surface = self.game.surface
        await self._emit("render", LatestWins(payload, key=self.room,
                                              full=lambda: {**payload, "packet": surface.snapshot()}), room=self.room)
        if episode_done:
            self._end_episode(True)

    def _end_episode(self, finished: bool) -> None:
        self._ticker.discard(self)
        if self._episode_over is not None and not self._episode_over.done():
            self._episode_over.set_result(finished)
