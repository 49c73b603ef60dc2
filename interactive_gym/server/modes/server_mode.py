"""Server mode: the server steps the env; waiting rooms per scene, forming games, re-attaching returning players.

The game itself runs in :class:`~interactive_gym.server.game_runner.GameRunner` tasks ticked by a shared
:class:`~interactive_gym.server.tick_scheduler.TickScheduler` per fps; this class decides who plays with whom
and moves participants in and out of games.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.game_runner import GameRunner
from interactive_gym.server.modes.base import START_FAILED_NOTICE, FlowHooks
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.modes.waiting import RoomSet
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.tick_scheduler import TickScheduler

log = logging.getLogger("interactive_gym.games")

# Keys a page sent just before it learned its game ended are a harmless race, not an error: for this long
# after a game ends, its former players' keys for it are ignored without an error reply.
ENDED_GAME_KEYS_QUIET_S = 5.0


class ServerMode:
    """Waiting rooms and running games of every server-mode scene.

    Args:
        sio: The Socket.IO server (emits, rooms).
        writer: The experiment's DataWriter.
        hooks: The participant flow.
        clock: Monotonic clock.
        groups: Who played with whom (shared with p2p mode), for ``keep_group_from`` scenes.
        rooms: Its waiting rooms (default: in this process; several workers share them through Redis).
    """

    name = "server"

    def __init__(self, sio: Any, writer: Any, hooks: FlowHooks, clock: Callable[[], float] = time.monotonic,
                 groups: GroupMemory | None = None,
                 rooms: RoomSet | None = None) -> None:
        self.sio = sio
        self._writer = writer
        self.hooks = hooks
        self.rooms = rooms or RoomSet(sio, hooks, groups)
        # game_id -> when its first episode starts (clock): the start countdown a (re)joining page is shown.
        self._starts_at: dict[str, float] = {}
        self.runners: dict[str, GameRunner] = {}
        # Running games asked to end early (end_game), until they have: a second ask is a duplicate.
        self.ending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # One shared ticker per fps: every game of that rate is stepped from one timer and one task.
        self._tickers: dict[float, TickScheduler] = {}
        self.games_started = 0
        self._clock = clock
        # game_id -> (when it ended, its human participant ids, its game-over record), for
        # ENDED_GAME_KEYS_QUIET_S and for a join that arrives between a game's end and its game-over.
        self._ended: dict[str, tuple[float, frozenset[str], dict[str, str]]] = {}

    # -- GameMode ---------------------------------------------------------------------------------------------
    async def scene_view(self, participant: Participant, scene: GymScene) -> dict[str, Any]:
        return {}

    async def presence_changed(self, participant: Participant) -> None:
        await self._presence(participant)

    async def disconnected(self, participant: Participant) -> None:
        runner = self.runners.get(participant.game_id or "")
        if runner is not None:
            for agent, pid in runner.game.humans.items():
                if pid == participant.participant_id:
                    runner.human_left(agent)
        await self._presence(participant)

    async def reconnected(self, participant: Participant) -> None:
        # The page sends join_game again on reconnect; that re-attaches it to a running game.
        await self._presence(participant)

    async def left_scene(self, participant: Participant, scene: GymScene) -> None:
        await self.rooms.leave(scene, participant.participant_id)

    async def dropped(self, participant: Participant) -> None:
        scene = participant.scene
        if isinstance(scene, GymScene):
            await self.rooms.leave(scene, participant.participant_id)

    async def excluded(self, participant: Participant) -> None:
        # Gone like a disconnected human: the default action until the scene's disconnect grace runs out, then
        # the partner-drop policy (the game ends, or an AI plays on). The excluded page stops getting renders.
        runner = self.runners.get(participant.game_id or "")
        if runner is None:
            return
        for agent, pid in runner.game.humans.items():
            if pid == participant.participant_id:
                runner.human_left(agent)
        if participant.sid:
            await self.sio.leave_room(participant.sid, runner.room)

    async def expire(self, now: float) -> None:
        for scene, group in await self.rooms.expire(now):  # regrouped after a gathering gave up
            await self._start_game(scene, group)

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ticker in self._tickers.values():
            await ticker.close()

    # -- events -----------------------------------------------------------------------------------------------
    async def join(self, participant: Participant, scene: GymScene) -> None:
        """The participant's page is ready for ``scene``: re-attach to their running game, or queue them."""
        runner = self.runners.get(participant.game_id or "")
        if runner is not None and participant.participant_id in runner.game.humans.values():
            await self._attach(participant, runner)
            return
        if participant.game_id is not None:
            # Their game has ended and its game-over is queued behind this event (a page that reconnected
            # at the end re-sends join_game and missed the room's game_over): never queue them for a second
            # game of the scene; show them the game-over once it applies.
            ended = self._ended.get(participant.game_id)
            if ended is not None:
                self.hooks.game_over(participant.participant_id, scene.scene_id, ended[2], show=True)
            return
        group = await self.rooms.join(scene, participant, self._clock())
        if group is not None:
            await self._start_game(scene, group)

    def set_keys(self, participant: Participant, game_id: str, held: list[str], seq: int) -> str | None:
        """Applies a key update; returns an error message if the participant is not in that game.

        Keys for a game that ended, from one of its players, are ignored quietly (None): the page has not heard of
        the end yet. Right after the end that is told by the ended-games record (the participant's own record of
        it is set on their queue a moment later), then by ``Participant.last_game_id``, however late they come:
        under load a game-over can reach a page seconds late, and answering each key with an error only adds load.
        """
        runner = self.runners.get(game_id)
        if runner is None and (participant.last_game_id == game_id
                               or self._just_ended(game_id, participant.participant_id)):
            return None
        if runner is None or participant.game_id != game_id:
            return "you are not in this game"
        for agent, pid in runner.game.humans.items():
            if pid == participant.participant_id:
                runner.game.set_keys(agent, held, seq)
                return None
        return "you are not in this game"

    # -- internals --------------------------------------------------------------------------------------------
    async def _presence(self, participant: Participant) -> None:
        scene = participant.scene
        if isinstance(scene, GymScene):
            group = await self.rooms.set_presence(scene, participant)
            if group is not None:
                await self._start_game(scene, group)

    async def _start_game(self, scene: GymScene, group: list[Participant]) -> None:
        """Starts a game for ``group``, or, if that fails, puts every member back in the queue with a notice."""
        try:
            runner = self._create_runner(scene, group)
        except Exception:  # noqa: BLE001 - a failing env must not leave a group stuck on "waiting"
            log.exception("server-mode game for scene %s could not start", scene.scene_id)
            await self.hooks.record_event("game_start_failed", {"players": len(group)}, scene_id=scene.scene_id)
            await self.rooms.requeue(scene, group, notice=START_FAILED_NOTICE)
            return
        countdown = scene.countdown_s
        self._starts_at[runner.game.game_id] = self._clock() + countdown
        for agent, participant in zip(scene.facts.humans, group, strict=True):
            participant.game_id = runner.game.game_id
            participant.game_over = None
            await self._attach(participant, runner, agent)
        await self.rooms.started(scene, group, runner.game.game_id)
        task = asyncio.create_task(self._run_after(runner, countdown), name=f"game-{runner.game.game_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _run_after(runner: GameRunner, countdown_s: float) -> None:
        """The game's first tick comes after the start countdown the pages show."""
        if countdown_s > 0:
            await asyncio.sleep(countdown_s)
        await runner.run()

    def _create_runner(self, scene: GymScene, group: list[Participant]) -> GameRunner:
        game_id = "g-" + secrets.token_hex(6)
        humans = dict(zip(scene.facts.humans, (p.participant_id for p in group), strict=True))
        seed = secrets.randbelow(2**31 - 1) if scene.seed is None else scene.seed + self.games_started
        game = ServerGame(game_id, scene, humans, game_seed=seed)
        self.games_started += 1
        runner = GameRunner(game, self.sio.emit, self._writer, self._finished, self._ticker_for(scene.fps))
        self.runners[game_id] = runner
        return runner

    def _ticker_for(self, fps: float) -> TickScheduler:
        ticker = self._tickers.get(fps)
        if ticker is None:
            ticker = self._tickers[fps] = TickScheduler(fps)
        return ticker

    async def _attach(self, participant: Participant, runner: GameRunner, agent: str | None = None) -> None:
        agent = agent or next(a for a, pid in runner.game.humans.items() if pid == participant.participant_id)
        if participant.sid is None:
            return
        await self.sio.enter_room(participant.sid, runner.room)
        runner.human_back(agent)
        game = runner.game
        # Pages learn agent roles, never other participants' ids.
        roles = {a: ("human" if a in game.humans else name) for a, name in game.agents.items()}
        await self.sio.emit("game_start", {
            "game_id": game.game_id, "scene_id": game.scene.scene_id, "agent_id": agent,
            "players": roles, "episode": max(game.episode, 0), "fps": game.scene.fps,
            "num_episodes": game.scene.num_episodes, "snapshot": runner.snapshot() if game.episode >= 0 else None,
            "countdown_s": round(max(0.0, self._starts_at.get(game.game_id, 0.0) - self._clock()), 3),
        }, to=participant.sid)

    def _just_ended(self, game_id: str, participant_id: str) -> bool:
        ended = self._ended.get(game_id)
        return ended is not None and participant_id in ended[1] and \
            self._clock() - ended[0] < ENDED_GAME_KEYS_QUIET_S

    def _remember_ended(self, game: ServerGame, record: dict[str, str]) -> None:
        now = self._clock()
        # Forget games ended long ago first, so the record stays as small as the recent end rate.
        for game_id in [gid for gid, (at, _, _) in self._ended.items() if now - at >= ENDED_GAME_KEYS_QUIET_S]:
            del self._ended[game_id]
        self._ended[game.game_id] = (now, frozenset(game.humans.values()), record)

    async def _finished(self, runner: GameRunner, reason: str) -> None:
        game = runner.game
        self.runners.pop(game.game_id, None)
        self.ending.discard(game.game_id)
        self._starts_at.pop(game.game_id, None)
        record = game_over_record(reason)
        if runner.error_text:
            record["error"] = runner.error_text
        self._remember_ended(game, record)
        await self.sio.emit("game_over", {"game_id": game.game_id, "reason": reason,
                                          "message": record["message"]}, room=runner.room)
        for pid in game.humans.values():
            participant = self.hooks.lookup(pid)
            if participant is not None and participant.sid and participant.game_id == game.game_id:
                await self.sio.leave_room(participant.sid, runner.room)
            self.hooks.game_over(pid, game.scene.scene_id, record, show=False)

    def lateness(self) -> dict[str, Any]:
        """Tick lateness of every running game (for logs and the capacity benchmark)."""
        return {gid: r.stats.summary() for gid, r in self.runners.items()}

    def end_game(self, game_id: str, reason: str = "ended_by_researcher") -> bool:
        """Ends a running game early (the researcher's dashboard): the episode being played is kept, marked
        partial, and the players get the game-over of ``reason``. False if no such game is running.

        A game asked to end stays in :attr:`ending` until it has ended (the dashboard answers a second ask as a
        duplicate)."""
        runner = self.runners.get(game_id)
        if runner is None:
            return False
        self.ending.add(game_id)
        runner.end(reason)
        return True
