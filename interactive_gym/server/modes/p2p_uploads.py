"""The peers' episode uploads of p2p games: validated, stored, and compared with each other (parity).

Every player of a p2p game uploads the trajectory their page confirmed; the steps are stored per player (the
data of each participant's own page), and once every player's upload of an episode is in, the coordinator
compares them frame by frame (:mod:`~interactive_gym.server.parity`) and the verdict is stored as a
``p2p_parity`` event. Takeovers and the gaps of a rejoined player are flagged on the stored steps.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.base import Ack
from interactive_gym.server.modes.p2p_gaps import flag_gap_steps, rejoin_source
from interactive_gym.server.parity import ParityVerdict
from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator, PyodideGameState
from interactive_gym.server.turn_fallback import server_relay_report
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    UploadRejected,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)

log = logging.getLogger("interactive_gym.p2p")
MAX_STATS_CHARS = 64 * 1024


class P2PUploads:
    """Stores the uploads of every p2p game of an experiment and records the peers' agreement.

    Args:
        writer: The experiment's DataWriter.
        coordinator: The p2p games (their uploads kept until judged, takeovers, rejoins).
        verifier: Optional replay verifier: every stored peer trajectory is replayed off the event loop.
        webrtc: Resolved ``WebRTCSettings``: its TURN mode is stored with each episode's network stats.
    """

    def __init__(self, writer: Any, coordinator: PyodideGameCoordinator, verifier: Any, webrtc: Any) -> None:
        self.writer = writer
        self.coordinator = coordinator
        self.verifier = verifier
        self.webrtc = webrtc

    async def store(self, game: PyodideGameState, participant: Participant, payload: Mapping[str, Any],
                    config: dict[str, Any], scene: GymScene) -> Ack:
        """Validates and stores one player's upload of ``game`` (played with ``config``), judging parity once
        every player's is in; returns the page's acknowledgement."""
        received_at = time.time()
        # Every p2p upload has steps stamped with the page's clock, so it always carries `clock`
        # (p2p_game.js, clock_sync.clockFromSteps); the time window is checked against the arrival.
        rules = dataclasses.replace(rules_from_config(config, scene.facts.agents), require_clock=True)
        # Pure CPU work, ~0.2 s for a cap-sized upload: in a thread, so every game's loop keeps ticking.
        result = await asyncio.to_thread(validate_episode_upload, payload, participant_id=participant.participant_id,
                                         participant_scene_id=participant.scene.scene_id,
                                         rules=rules, received_at=received_at)
        if isinstance(result, UploadRejected):
            return {"ok": False, "code": result.code, "error": result.message, "retryable": False}
        if result.episode in game.verdicts:
            # The peers' agreement was judged on what was uploaded; a later upload cannot change it.
            return {"ok": True, "already_judged": True}
        stats = payload.get("stats") or {}
        if not isinstance(stats, dict) or len(json.dumps(stats)) > MAX_STATS_CHARS:
            return {"ok": False, "code": "bad_stats", "error": "stats must be an object under 64 kB",
                    "retryable": False}
        reporter = game.player_of(participant.participant_id)
        relayed = server_relay_report(stats)
        if relayed is not None and not game.server_relay_warned:
            game.server_relay_warned = True  # set before any await: the partner's upload may run meanwhile
            log.warning(relayed.message(game.game_id, reporter))
            await self.writer.record_event("p2p_server_relay", {"player_id": reporter, **relayed.to_dict()},
                                           participant_id=participant.participant_id, game_id=game.game_id,
                                           scene_id=game.scene_id)
        for record in self.coordinator.note_takeovers(game, reporter, stats.get("takeovers")):
            gone = record["player"]
            await self.writer.record_event("partner_takeover", {
                "agent": game.agents[gone], "participant": game.players[gone], "frame": record["frame"],
                "episode": record["episode"], "t": record["t"], "by_player": reporter,
                "controller": scene.takeover.controller if scene.takeover else None},
                participant_id=game.players[gone], game_id=game.game_id, scene_id=game.scene_id)
        await self.writer.write_episode(**self._write_kwargs(result, game, config, scene, stats, received_at))
        if self.verifier is not None and not result.first_t:  # a suffix cannot be replayed from the reset
            self.verifier.submit(scene, participant.participant_id, {
                "scene_id": game.scene_id, "game_id": game.game_id, "episode": result.episode,
                "source": participant.participant_id}, result, mode="p2p")
        verdict = self.coordinator.add_upload(game, result.episode, participant.participant_id, result.steps,
                                              result.partial, rejoined_page=isinstance(stats.get("rejoined"), dict))
        await self.record_verdicts(game, [(result.episode, verdict)] if verdict is not None else [])
        return {"ok": True}

    async def record_verdicts(self, game: PyodideGameState,
                               judged_now: list[tuple[int, ParityVerdict]] | None = None) -> None:
        """Stores ``judged_now`` and the verdicts that waited for a rejoining page which uploads no more."""
        for episode, judged in [*(judged_now or []), *self.coordinator.pending_verdicts(game)]:
            await self.writer.record_event("p2p_parity", {"episode": episode, **judged.to_dict()},
                                           game_id=game.game_id, scene_id=game.scene_id)
            if not judged.agree:
                log.warning("p2p game %s episode %d: peers disagree at %s", game.game_id, episode,
                            judged.first_mismatch)

    def _write_kwargs(self, upload: EpisodeUpload, game: PyodideGameState, config: dict[str, Any],
                      scene: GymScene, stats: dict[str, Any], received_at: float) -> dict[str, Any]:
        kwargs = episode_write_kwargs(upload, config, received_at=received_at)
        kwargs.update(mode="p2p", game_id=game.game_id, source=upload.participant_id)
        kwargs["agents"] = {**kwargs["agents"], **{game.agents[p]: pid for p, pid in game.players.items()}}
        kwargs["meta"] = {**(kwargs.get("meta") or {}), "network": stats, "turn_mode": self.webrtc.mode,
                          "player_id": game.player_of(upload.participant_id)}
        if game.takeovers and scene.takeover is not None:
            kwargs["steps"], kwargs["meta"]["takeovers"] = flag_takeover_steps(
                kwargs["steps"], upload.episode, game, scene.takeover.controller)
        if upload.gaps:  # steps played with the default input for a player who was away (p2p_gaps.py)
            humans = {game.agents[p]: pid for p, pid in game.players.items()}
            kwargs["steps"], kwargs["meta"]["gaps"] = flag_gap_steps(kwargs["steps"], upload.gaps, humans)
        if upload.first_t:
            kwargs["source"] = rejoin_source(upload.participant_id, upload.first_t)
            kwargs["meta"]["first_t"] = upload.first_t
        return kwargs


def flag_takeover_steps(steps: list[Any], episode: int, game: PyodideGameState,
                        controller: str) -> tuple[list[Any], list[dict[str, Any]]]:
    """The steps with ``controllers`` set on those the partner-drop policy played, and the episode meta's list.

    A takeover reported at ``(episode e, step t)`` covers steps ``t..`` of episode ``e`` and every step of later
    episodes.
    """
    flags: dict[str, int] = {}
    meta = []
    for player, record in sorted(game.takeovers.items()):
        if episode < record["episode"]:
            continue
        agent = game.agents[player]
        flags[agent] = record["t"] if episode == record["episode"] else 0
        meta.append({"agent": agent, "participant": game.players[player], "controller": controller,
                     "from_t": flags[agent], "since_episode": record["episode"], "frame": record["frame"]})
    if not flags:
        return steps, meta
    flagged = [dataclasses.replace(step, controllers={a: controller for a, t in flags.items() if step.t >= t} or None)
               for step in steps]
    return flagged, meta
