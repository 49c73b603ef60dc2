"""The Socket.IO shell of peer-to-peer scenes: waiting rooms, game start, relay, uploads, partner loss.

The decisions live in :class:`~interactive_gym.server.pyodide_game_coordinator.PyodideGameCoordinator`
(state), :mod:`~interactive_gym.server.waiting_room` (matching) and :mod:`~interactive_gym.server.parity`
(agreement); this module moves events in and out and stores data.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.participants import Participant
from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator, PyodideGameState
from interactive_gym.server.signaling import SignalingRelay
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    UploadRejected,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)
from interactive_gym.server.waiting_room import WaitingRoom

log = logging.getLogger("interactive_gym.p2p")
MAX_STATS_CHARS = 64 * 1024


class P2PGames:
    """Peer-to-peer scenes of one experiment.

    Args:
        sio: The Socket.IO server (the signaling relay registers its events on it).
        writer: The experiment's DataWriter.
        browser: Bundles and configs of in-browser scenes (p2p games ship the same code).
        webrtc: Resolved ``WebRTCSettings`` (TURN/STUN for ``pyodide_game_ready``).
        lookup: Participant by id.
        test_faults: Fault profile for the transport (tests only; None in real experiments).
    """

    def __init__(self, sio: Any, writer: Any, browser: BrowserScenes, webrtc: Any,
                 lookup: Callable[[str], Participant | None], test_faults: Mapping[str, float] | None = None) -> None:
        self.sio = sio
        self.writer = writer
        self.browser = browser
        self.webrtc = webrtc
        self.lookup = lookup
        self.test_faults = test_faults
        self.coordinator = PyodideGameCoordinator()
        self.relay = SignalingRelay(self.coordinator)
        self.relay.register(sio)
        self.rooms: dict[str, WaitingRoom] = {}
        self.scenes: dict[str, GymScene] = {}
        self.configs: dict[str, dict[str, Any]] = {}  # game_id -> scene config shared by its players

    def room_for(self, scene: GymScene) -> WaitingRoom:
        if scene.scene_id not in self.rooms:
            kwargs = {"matchmaker": scene.matchmaker} if scene.matchmaker else {}
            self.rooms[scene.scene_id] = WaitingRoom(len(scene.facts.humans), scene.waiting_room_timeout_s, **kwargs)
            self.scenes[scene.scene_id] = scene
        return self.rooms[scene.scene_id]

    # -- joining --------------------------------------------------------------------------------------------
    async def join(self, participant: Participant, scene: GymScene, rtt_ms: float | None,
                   on_over: Callable[[Participant, str], Awaitable[None]]) -> None:
        """The participant's page is ready for a p2p scene: queue them or start a game."""
        running = self.coordinator.game_of(participant.participant_id)
        if running is not None:
            # A reloaded page lost its simulation: there is no resuming a rollback game, so the player has left.
            await self._player_left(running, participant)
            await on_over(participant, "left")
            return
        room = self.room_for(scene)
        group = room.join(participant.participant_id, time.monotonic(), rtt_ms)
        if group is None:
            await self.sio.emit("waiting", {"scene_id": scene.scene_id, "position": room.position(
                participant.participant_id), "needed": room.group_size, "timeout_s": room.timeout_s},
                to=participant.sid)
            return
        await self._start(scene, [p for p in map(self.lookup, group) if p is not None])

    def scene_config(self, scene: GymScene, game: PyodideGameState) -> dict[str, Any]:
        """The config every player of ``game`` runs (identical for all: seeds come from the game's seed)."""
        seeds = [scene.episode_seed(game.seed, e) for e in range(scene.num_episodes)]
        config = self.browser.scene_config(scene, seeds, mode="p2p")
        config["p2p"] = {"input_delay": scene.input_delay, "prediction_window": scene.prediction_window,
                         "num_players": len(game.players), "disconnect_timeout_ms": int(scene.disconnect_grace_s * 1000),
                         "checksum_interval": 30, "faults": self.test_faults}
        return config

    async def _start(self, scene: GymScene, players: list[Participant]) -> None:
        now = time.time()
        game = self.coordinator.create_game(scene.scene_id, [(p.participant_id, p.sid) for p in players],
                                            list(scene.facts.humans), now)
        config = self.scene_config(scene, game)
        self.configs[game.game_id] = config
        for player, participant in zip(sorted(game.players), players, strict=True):
            participant.game_id = game.game_id
            if participant.sid:
                await self.sio.enter_room(participant.sid, game.game_id)
            pid = participant.participant_id
            payload = self.coordinator.ready_payload(game, player, self.webrtc.turn_config_for(pid, now),
                                                     self.webrtc.ice_servers_for(pid, now), config)
            await self.sio.emit("pyodide_game_ready", payload, to=participant.sid)
        await self.writer.record_event("p2p_game_created", {"players": game.player_subjects, "seed": game.seed,
                                                            "turn_mode": self.webrtc.mode}, game_id=game.game_id,
                                       scene_id=scene.scene_id)
        log.info("p2p game %s started: %s", game.game_id, game.player_subjects)

    # -- leaving --------------------------------------------------------------------------------------------
    def leave_waiting(self, participant_id: str) -> None:
        for room in self.rooms.values():
            room.leave(participant_id)

    def set_presence(self, participant_id: str, present: bool) -> None:
        """Hidden tabs are not matched (their owner is not there to play)."""
        for room in self.rooms.values():
            room.set_presence(participant_id, present)

    def disconnected(self, sid: str) -> None:
        self.coordinator.disconnected(sid, time.monotonic())

    async def _player_left(self, game: PyodideGameState, participant: Participant) -> None:
        player = game.player_of(participant.participant_id)
        self.coordinator.finish_player(game, participant.participant_id)
        for other, sid in game.sids.items():
            if other != player and sid:
                await self.sio.emit("p2p_partner_left", {"game_id": game.game_id, "player_id": player}, to=sid)

    async def expire(self, on_wait_timeout: Callable[[str], Awaitable[None]]) -> None:
        """Housekeeping: waiting-room timeouts and partners gone past their grace period."""
        now = time.monotonic()
        for room in self.rooms.values():
            for pid in room.expire(now):
                await on_wait_timeout(pid)
        grace = {sid: s.disconnect_grace_s for sid, s in self.scenes.items()}
        for game, stay in self.coordinator.overdue(now, grace):
            gone = [p for p in game.players if p not in stay]
            for player in stay:
                await self.sio.emit("p2p_partner_left", {"game_id": game.game_id, "player_id": gone[0] if gone
                                                         else None}, to=game.sids[player])
            await self.writer.record_event("p2p_partner_left", {"gone": gone}, game_id=game.game_id,
                                           scene_id=game.scene_id)

    # -- data -----------------------------------------------------------------------------------------------
    async def upload(self, participant: Participant, payload: Any) -> dict[str, Any]:
        """A peer's confirmed trajectory of one episode: validate, store, and judge parity once all are in."""
        game_id = payload.get("game_id") if isinstance(payload, dict) else None
        game = self.coordinator.games.get(game_id) if isinstance(game_id, str) else None
        if game is None or game.player_of(participant.participant_id) is None:
            return {"ok": False, "code": "not_in_game", "error": "upload for a game you are not in",
                    "retryable": False}
        config = self.configs[game.game_id]
        scene = self.scenes[game.scene_id]
        result = validate_episode_upload(payload, participant_id=participant.participant_id,
                                         participant_scene_id=participant.scene.scene_id,
                                         rules=rules_from_config(config, scene.facts.agents))
        if isinstance(result, UploadRejected):
            return {"ok": False, "code": result.code, "error": result.message, "retryable": False}
        stats = payload.get("stats") or {}
        if not isinstance(stats, dict) or len(json.dumps(stats)) > MAX_STATS_CHARS:
            return {"ok": False, "code": "bad_stats", "error": "stats must be an object under 64 kB",
                    "retryable": False}
        await self.writer.write_episode(**self._write_kwargs(result, game, config, stats))
        verdict = self.coordinator.add_upload(game, result.episode, participant.participant_id,
                                              result.steps, result.partial)
        if verdict is not None:
            await self.writer.record_event("p2p_parity", {"episode": result.episode, **verdict.to_dict()},
                                           game_id=game.game_id, scene_id=game.scene_id)
            if not verdict.agree:
                log.warning("p2p game %s episode %d: peers disagree at %s", game.game_id, result.episode,
                            verdict.first_mismatch)
        return {"ok": True}

    def _write_kwargs(self, upload: EpisodeUpload, game: PyodideGameState, config: dict[str, Any],
                      stats: dict[str, Any]) -> dict[str, Any]:
        kwargs = episode_write_kwargs(upload, config, received_at=time.time())
        kwargs.update(mode="p2p", game_id=game.game_id, source=upload.participant_id)
        kwargs["agents"] = {**kwargs["agents"], **{game.agents[p]: pid for p, pid in game.players.items()}}
        kwargs["meta"] = {**(kwargs.get("meta") or {}), "network": stats, "turn_mode": self.webrtc.mode,
                          "player_id": game.player_of(upload.participant_id)}
        return kwargs

    async def game_end(self, participant: Participant, game_id: str, reason: str) -> dict[str, Any] | None:
        """A player's game is over; returns the game-over record, or None if they are not in that game."""
        game = self.coordinator.games.get(game_id)
        if game is None or game.player_of(participant.participant_id) is None:
            return None
        self.coordinator.finish_player(game, participant.participant_id)
        if participant.sid:
            await self.sio.leave_room(participant.sid, game_id)
        if game.game_id not in self.coordinator.games:
            self.configs.pop(game.game_id, None)
        return game_over_record(reason)
