"""Experiment: the state of one running experiment, built once by the app (no module-level state).

It owns the participants (registry, event queues, flow) and the three game modes, restores participants
from the database after a restart, and runs housekeeping. Socket events reach it through ``events.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.keep_group import kept_scene_ids
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.flow.conditions import ConditionAssigner
from interactive_gym.server.flow.exclusion import screening_for
from interactive_gym.server.flow.participant_flow import ParticipantFlow
from interactive_gym.server.flow.participants import Participant, ParticipantRegistry, Status
from interactive_gym.server.flow.serial import ParticipantSerializer
from interactive_gym.server.modes.base import GameMode
from interactive_gym.server.modes.browser_mode import BrowserMode
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.modes.p2p_mode import P2PMode
from interactive_gym.server.modes.server_mode import ServerMode
from interactive_gym.server.storage import Storage

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
    """

    def __init__(self, config: RemoteConfig, sio: Any, writer: Any, verifier: Any = None, *,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        assert config.stager is not None
        self.config = config
        self.clock = clock
        self.monotonic = monotonic
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
        self.server_mode = ServerMode(sio, writer, self.flow, clock=monotonic, groups=self.groups)
        self.browser_mode = BrowserMode(self.browser, self.flow, verifier)
        self.p2p_mode = P2PMode(sio, writer, self.browser, webrtc, self.flow, config.test_faults, verifier,
                                clock=monotonic, groups=self.groups)
        self.verifier = verifier
        self.modes: dict[str, GameMode] = {m.name: m for m in (self.server_mode, self.browser_mode, self.p2p_mode)}
        self.flow.modes.update(self.modes)
        # Entry screening and in-game exclusion watch the participants of every mode (flow/exclusion.py).
        self.flow.screening = screening_for(self)

    def restore_participants(self) -> int:
        """Loads every participant the database knows (server restarted): progress resumes, the finished stay
        finished. Returns how many were restored."""
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
        for event in assigned:
            conditions = event.data.get("conditions") if isinstance(event.data, dict) else None
            if event.participant_id and isinstance(conditions, dict):
                self.conditions.restore(event.participant_id, conditions)
        for event in groups:  # in the order they formed: a later game of a scene replaces an earlier group
            members = event.data.get("members") if isinstance(event.data, dict) else None
            if event.scene_id and isinstance(members, list) and all(isinstance(m, str) for m in members):
                self.groups.remember(event.scene_id, members)
        now = self.clock()
        for row in rows:
            status = Status(row.status) if row.status in {s.value for s in Status} else Status.ACTIVE
            self.registry.restore(row.participant_id, dict(row.url_params or {}), row.current_scene, status,
                                  row.resume_secret_hash, now)
        return len(rows)

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
