"""Experiment: the state of one running experiment, built once by the app (no module-level state).

It owns the participants (registry, event queues, flow) and the three game modes, restores participants
from the database after a restart, and runs housekeeping. Socket events reach it through ``events.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.keep_group import kept_scene_ids
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.flow.conditions import ConditionAssigner
from interactive_gym.server.flow.exclusion import screening_for
from interactive_gym.server.flow.participant_flow import ParticipantFlow
from interactive_gym.server.flow.participants import Participant, ParticipantRegistry, Status
from interactive_gym.server.flow.serial import ParticipantSerializer
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.lost_games import SERVER_LOST, game_left_behind
from interactive_gym.server.modes.base import GameMode
from interactive_gym.server.modes.browser_mode import BrowserMode
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.modes.p2p_mode import P2PMode
from interactive_gym.server.modes.server_mode import ServerMode
from interactive_gym.server.modes.waiting import RoomSet
from interactive_gym.server.storage import Storage
from interactive_gym.server.storage_records import EpisodeRow, EventRow, ParticipantRow

if TYPE_CHECKING:
    from interactive_gym.server.cluster.placement import Placement

log = logging.getLogger("interactive_gym.server")


class Experiment:
    """One experiment being served.

    Args:
        config: The validated configuration.
        sio: The Socket.IO server (a ``TargetedServer``).
        writer: A ``DataWriter`` (started by the app's lifespan).
        verifier: Optional replay verifier for browser-mode uploads.
        clock: Wall clock (``time.time``) of the participant flow (drop delays, restored participants).
        monotonic: Monotonic clock of the game modes and housekeeping (waiting-room timeouts). Tests pass
            fakes; the two must stay consistent within one experiment, so they are given here once.
        placement: One worker of several (cluster/placement.py): the waiting rooms are shared through its
            Redis, participants are loaded from the database when their page connects here, and the modes run
            on the wall clock (the rooms compare times that different processes wrote).
    """

    def __init__(self, config: RemoteConfig, sio: Any, writer: Any, verifier: Any = None, *,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 placement: Placement | None = None) -> None:
        assert config.stager is not None
        self.config = config
        self.clock = clock
        self.placement = placement
        self.monotonic = monotonic = clock if placement is not None else monotonic
        self.sio = sio
        self.writer = writer
        # Arms of AssignCondition blocks are balanced over the participants the registry knows.
        self.conditions = ConditionAssigner(config.stager, lambda: ((p.participant_id, p.status)
                                                                   for p in self.registry.all()))
        self.registry = ParticipantRegistry(self.conditions.sequence_for)
        self.serial = ParticipantSerializer()
        self.browser = BrowserScenes(config, writer)
        webrtc = config.webrtc_settings or config.resolve_webrtc()
        # The flow and the modes refer to each other (modes ask the flow to move participants); the flow is
        # built first with an empty mode table that is filled in right after.
        self.flow = ParticipantFlow(self.registry, self.serial, writer, sio, {}, self.browser.preload_for,
                                    clock=clock, conditions=self.conditions, required_id=config.required_id_param)
        # Who played with whom, shared by the modes: a keep_group_from scene may follow a game of the other mode.
        self.groups = GroupMemory(kept_scene_ids(config.stager))
        self.server_mode = ServerMode(sio, writer, self.flow, clock=monotonic, groups=self.groups,
                                      rooms=self._shared_rooms())
        self.browser_mode = BrowserMode(self.browser, self.flow, verifier)
        self.p2p_mode = P2PMode(sio, writer, self.browser, webrtc, self.flow, config.test_faults, verifier,
                                clock=monotonic, groups=self.groups, rooms=self._shared_rooms())
        self.verifier = verifier
        self.modes: dict[str, GameMode] = {m.name: m for m in (self.server_mode, self.browser_mode, self.p2p_mode)}
        self.flow.modes.update(self.modes)
        # Entry screening and in-game exclusion watch the participants of every mode (flow/exclusion.py).
        self.flow.screening = screening_for(self)
        if placement is not None:
            from interactive_gym.server.cluster.handover import Handovers  # the redis extra: workers only

            self.flow.handovers = Handovers(placement, self.registry, self.serial, sio, self.load_participant)

    def _shared_rooms(self) -> RoomSet | None:
        if self.placement is None:
            return None  # the mode's own rooms, in this process
        return RoomSet(self.sio, self.flow, self.groups, redis=self.placement.client,
                       prefix=self.config.experiment_id, placement=self.placement)

    async def restore_participants(self) -> int:
        """Loads every participant the database knows (server restarted): progress resumes, the finished stay
        finished, a server-mode game the stop cut short is over for its players. Returns how many."""
        if self.placement is not None:
            return 0  # each worker loads the participants whose pages connect to it (load_participant)
        path = self.config.database_path()
        if isinstance(path, Path) and not path.exists():  # a PostgreSQL URL: the writer made the tables at start
            return 0
        storage = Storage(path, readonly=True)
        try:
            rows = storage.participants()
            assigned = storage.events("condition_assigned")
            groups = storage.events("group_formed")
        finally:
            storage.close()
        # Arms first: a participant's scene order is rebuilt from them (and the loads of later arrivals counted).
        self._restore_conditions(assigned)
        for event in groups:  # in the order they formed: a later game of a scene replaces an earlier group
            members = event.data.get("members") if isinstance(event.data, dict) else None
            if event.scene_id and isinstance(members, list) and all(isinstance(m, str) for m in members):
                self.groups.remember(event.scene_id, members)
        now = self.clock()
        episodes: dict[str, list[EpisodeRow]] = {}  # by scene: read once, however many players it had
        for row in rows:
            await self._end_lost_game(self._restore_row(row, now), episodes)
        return len(rows)

    async def load_participant(self, participant_id: str) -> Participant | None:
        """Takes over a participant another worker served (or served before it stopped), as the database has
        them: their arms, scene and session. ``None`` if the database does not know them (a newcomer)."""
        row, assigned = await self.writer.stored_participant(participant_id)
        if row is None:
            return None
        self._restore_conditions(assigned)
        participant = self._restore_row(row, self.clock())
        await self._end_lost_game(participant, {})
        return participant

    async def _end_lost_game(self, participant: Participant, episodes: dict[str, list[EpisodeRow]]) -> None:
        """A participant restored at a server-mode game scene played or was playing its game in a process that
        is gone: they see that game as over (never a second game of the scene), and its episodes still
        ``in_progress`` are closed as ``partial``, with every step that was committed."""
        scene = participant.scene
        if participant.finished or not isinstance(scene, GymScene) or scene.mode != "server":
            return
        if scene.scene_id not in episodes:
            episodes[scene.scene_id] = await self.writer.scene_episodes(scene.scene_id)
        left = game_left_behind(episodes[scene.scene_id], participant.participant_id, scene.scene_id)
        if left is None:
            return
        closed = [episode_id for episode_id in left.unfinished
                  if await self.writer.close_left_episode(episode_id, {"ended_by": SERVER_LOST})]
        if closed:  # each episode once, by whichever of its players was taken over first
            await self.flow.record_event("game_lost", {"episodes": closed}, participant, scene_id=scene.scene_id)
        participant.game_over = game_over_record(left.reason)

    def _restore_conditions(self, assigned: list[EventRow]) -> None:
        for event in assigned:
            conditions = event.data.get("conditions") if isinstance(event.data, dict) else None
            if event.participant_id and isinstance(conditions, dict):
                self.conditions.restore(event.participant_id, conditions)

    def _restore_row(self, row: ParticipantRow, now: float) -> Participant:
        status = Status(row.status) if row.status in {s.value for s in Status} else Status.ACTIVE
        return self.registry.restore(row.participant_id, dict(row.url_params or {}), row.current_scene, status,
                                     row.resume_secret_hash, now)

    def mode_of(self, participant: Participant) -> GameMode | None:
        scene = participant.scene
        return self.modes[scene.mode] if isinstance(scene, GymScene) else None

    async def housekeeping(self) -> None:
        """Runs twice a second: waiting-room expiry, partners past their grace, dropped participants.

        Each part is isolated: one failing never stops the others.
        """
        now = self.monotonic()
        for mode in self.modes.values():
            try:
                await mode.expire(now)
            except Exception:  # noqa: BLE001 - housekeeping must go on for every other mode
                log.exception("housekeeping of %s mode failed", mode.name)
        try:
            self.flow.housekeeping()
        except Exception:  # noqa: BLE001
            log.exception("housekeeping of participants failed")

    async def shutdown(self) -> None:
        if self.flow.screening is not None:
            await self.flow.screening.shutdown()  # cancels its pending RTT probes
        for mode in self.modes.values():
            try:
                await mode.shutdown()
            except Exception:  # noqa: BLE001 - stop every mode even if one fails
                log.exception("shutting down %s mode failed", mode.name)
        await self.serial.drain()
        if self.verifier is not None:
            await self.verifier.close()  # pending verdicts are written before the writer closes
