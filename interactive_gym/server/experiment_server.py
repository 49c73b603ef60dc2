"""ExperimentServer: the state of one running experiment and what each participant event does to it.

It owns the participant registry, the data writer and the game manager; the Socket.IO handlers in
``handlers.py`` only validate payloads and call the methods here. Nothing is module-level: the app builds one
ExperimentServer and everything hangs off it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import Counter
from typing import Any

import socketio

from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.scenes.form_inputs import AnswerError
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import EndScene
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.game_manager import GameManager
from interactive_gym.server.game_over import game_over_record
from interactive_gym.server.p2p_games import P2PGames
from interactive_gym.server.participants import (
    ConnectKind,
    IdentityError,
    Participant,
    ParticipantRegistry,
    Status,
    clean_url_params,
    participant_id_from,
)
from interactive_gym.server.storage import Storage

log = logging.getLogger("interactive_gym.server")

REFUSALS = {
    ConnectKind.REFUSED_OTHER_TAB: "This study is already open in another tab or window. Please continue there.",
    ConnectKind.REFUSED_FINISHED: "You have already completed this study. Thank you!",
}


class ExperimentServer:
    """One experiment being served.

    Args:
        config: The validated configuration.
        sio: The Socket.IO server the handlers are registered on.
        writer: A started ``DataWriter``.
    """

    def __init__(self, config: RemoteConfig, sio: socketio.AsyncServer, writer: Any) -> None:
        assert config.stager is not None
        self.config = config
        self.sio = sio
        self.writer = writer
        self.registry = ParticipantRegistry(config.stager.sequence_for)
        self.games = GameManager(sio.emit, writer, self._enter_room, self._game_over, self._wait_timeout)
        self.rejections: Counter[str] = Counter()
        self.beacon_tokens: dict[str, str] = {}  # secret token in a page's beacon URL -> participant id
        self.browser = BrowserScenes(config, writer)
        webrtc = config.webrtc_settings or config.resolve_webrtc()
        self.p2p = P2PGames(sio, writer, self.browser, webrtc, self.registry.get, config.test_faults)

    def restore_participants(self) -> int:
        """Loads every participant the database knows (server restarted): progress resumes, the finished stay
        finished. Returns how many were restored."""
        path = self.config.database_path()
        if not path.exists():
            return 0
        storage = Storage(path, readonly=True)
        try:
            rows = storage.participants()
        finally:
            storage.close()
        for row in rows:
            status = Status(row.status) if row.status in {s.value for s in Status} else Status.ACTIVE
            self.registry.restore(row.participant_id, dict(row.url_params or {}), row.current_scene, status)
        return len(rows)

    # -- connection ------------------------------------------------------------------------------------
    async def connect(self, sid: str, auth: Any) -> bool:
        """Identifies the participant of a new socket and shows them their current scene."""
        auth = auth if isinstance(auth, dict) else {}
        try:
            params = clean_url_params(auth.get("url_params") or {})
            participant_id, source = participant_id_from(params, auth.get("generated_id"))
        except IdentityError as exc:
            await self.reject(sid, "connect", str(exc))
            await self.sio.emit("refused", {"reason": "bad_identity", "message": str(exc)}, to=sid)
            return True
        tab_id = str(auth.get("tab_id") or "")[:64]
        outcome = self.registry.connect(participant_id, tab_id, sid, params, time.time())
        participant = outcome.participant
        assert participant is not None
        if outcome.kind in REFUSALS:
            data: dict[str, Any] = {"reason": outcome.kind.value, "message": REFUSALS[outcome.kind]}
            if outcome.kind is ConnectKind.REFUSED_FINISHED and isinstance(participant.scene, EndScene):
                data["end"] = participant.scene.client_view(participant_id)
            await self.sio.emit("refused", data, to=sid)
            return True
        if outcome.kind is ConnectKind.NEW:
            await self.writer.upsert_participant(participant_id, url_params=params, status=Status.ACTIVE.value,
                                                 current_scene=participant.scene.scene_id)
            await self.writer.record_event("participant_identified", {"id_source": source},
                                           participant_id=participant_id)
            log.info("participant %s joined (%s)", participant_id, source)
        if outcome.old_sid:
            await self.sio.disconnect(outcome.old_sid)
        await self.send_scene(participant)
        return True

    async def disconnect(self, sid: str) -> None:
        participant = self.registry.disconnect(sid)
        if participant is None:
            return
        self.games.leave_waiting(participant.participant_id)
        self.games.human_disconnected(participant)
        self.p2p.leave_waiting(participant.participant_id)
        self.p2p.disconnected(sid)

    # -- scenes ----------------------------------------------------------------------------------------
    async def send_scene(self, participant: Participant, notice: str | None = None) -> None:
        """Shows the participant their current scene (also on reload)."""
        scene = participant.scene
        view = scene.client_view(participant.participant_id) if isinstance(scene, EndScene) else scene.to_client()
        if notice:
            view["notice"] = notice
        if participant.extra.get("game_over"):
            view["game_over"] = participant.extra["game_over"]
        elif isinstance(scene, GymScene) and scene.mode == "browser":
            view["browser"] = await self.browser.config_for(participant, scene)
            view["beacon_url"] = f"/beacon/{self._beacon_token(participant)}"
        preload = self.browser.preload_for(participant)
        if preload:
            view["preload"] = preload
        await self.sio.emit("scene", {"index": participant.index, "total": len(participant.sequence),
                                      "participant_id": participant.participant_id, "scene": view},
                            to=participant.sid)

    async def advance(self, sid: str, scene_index: int, scene_id: str, answers: dict[str, Any]) -> dict[str, Any]:
        """The participant continues past the current scene: validate, store (committed), show the next."""
        participant = self.registry.by_sid(sid)
        if participant is None or participant.finished:
            return await self.reject(sid, "advance", "not an active participant")
        if scene_index != participant.index or scene_id != participant.scene.scene_id:
            # A stale page (e.g. double click, old tab state): tell it where the participant really is.
            await self.send_scene(participant)
            return {"ok": False, "error": "stale scene; the current scene was sent again"}
        scene = participant.scene
        if isinstance(scene, GymScene) and not participant.extra.get("game_over"):
            return await self.reject(sid, "advance", "the game is not over yet")
        if isinstance(scene, EndScene):
            return await self.reject(sid, "advance", "the end scene is the last one")
        try:
            cleaned = scene.clean_answers(answers or {})
        except AnswerError as exc:
            return await self.reject(sid, "advance", str(exc))
        meta = {"game_over": participant.extra.pop("game_over")} if isinstance(scene, GymScene) else None
        await self.writer.record_scene(participant.participant_id, scene.scene_id, participant.index,
                                       participant.scene_started_at, time.time(), cleaned, meta)
        await self._move_to(participant, participant.index + 1)
        return {"ok": True}

    async def _move_to(self, participant: Participant, index: int, notice: str | None = None,
                       status: Status | None = None) -> None:
        participant.index = index
        participant.scene_started_at = time.time()
        participant.game_id = None
        scene = participant.scene
        if isinstance(scene, EndScene):
            participant.status = status or Status.COMPLETED
        await self.writer.upsert_participant(
            participant.participant_id, status=participant.status.value, current_scene=scene.scene_id,
            completion_code=scene.completion_code if isinstance(scene, EndScene) else None)
        if participant.sid:
            await self.send_scene(participant, notice)

    # -- games -----------------------------------------------------------------------------------------
    async def join_game(self, sid: str, scene_index: int, scene_id: str) -> dict[str, Any]:
        participant = self.registry.by_sid(sid)
        if participant is None or participant.finished:
            return await self.reject(sid, "join_game", "not an active participant")
        scene = participant.scene
        if scene_index != participant.index or scene_id != scene.scene_id or not isinstance(scene, GymScene):
            return await self.reject(sid, "join_game", "that is not your current game scene")
        if scene.mode != "server":
            return await self.reject(sid, "join_game", f"scene {scene_id!r} runs in {scene.mode} mode")
        if participant.extra.get("game_over"):
            await self.send_scene(participant)
            return {"ok": True}
        await self.games.join(participant, scene, time.monotonic(), self.registry.get)
        return {"ok": True}

    async def keys(self, sid: str, game_id: str, held: list[str], seq: int) -> None:
        participant = self.registry.by_sid(sid)
        error = "not an active participant" if participant is None else self.games.set_keys(
            participant, game_id, held, seq)
        if error:
            await self.reject(sid, "keys", error)

    async def visibility(self, sid: str, visible: bool) -> None:
        participant = self.registry.by_sid(sid)
        if participant is not None:
            participant.visible = visible
            self.p2p.set_presence(participant.participant_id, visible)
            await self.writer.record_event("visibility", {"visible": visible},
                                           participant_id=participant.participant_id,
                                           scene_id=participant.scene.scene_id)

    async def p2p_join(self, sid: str, scene_index: int, scene_id: str, rtt_ms: float | None = None) -> dict:
        participant = self.registry.by_sid(sid)
        if participant is None or participant.finished:
            return await self.reject(sid, "p2p_join", "not an active participant")
        scene = participant.scene
        if scene_index != participant.index or scene_id != scene.scene_id or not isinstance(scene, GymScene) \
                or scene.mode != "p2p":
            return await self.reject(sid, "p2p_join", "that is not your current p2p game scene")
        if participant.extra.get("game_over"):
            await self.send_scene(participant)
            return {"ok": True}
        await self.p2p.join(participant, scene, rtt_ms, self._p2p_over)
        return {"ok": True}

    async def _p2p_over(self, participant: Participant, reason: str) -> None:
        over = await self.p2p.game_end(participant, participant.game_id or "", reason)
        participant.extra["game_over"] = over or game_over_record(reason)
        await self.send_scene(participant)

    async def p2p_episode(self, sid: str, payload: Any) -> dict[str, Any]:
        participant = self.registry.by_sid(sid)
        if participant is None:
            return await self.reject(sid, "p2p_episode", "not a participant")
        ack = await self.p2p.upload(participant, payload)
        if not ack["ok"]:
            await self.reject(sid, "p2p_episode", ack["error"])
        return ack

    async def p2p_game_end(self, sid: str, game_id: str, reason: str) -> dict[str, Any]:
        participant = self.registry.by_sid(sid)
        over = await self.p2p.game_end(participant, game_id, reason) if participant else None
        if participant is None or over is None:
            return await self.reject(sid, "p2p_game_end", "you are not in this game")
        participant.extra["game_over"] = over
        participant.game_id = None
        return {"ok": True}

    def _beacon_token(self, participant: Participant) -> str:
        token = participant.extra.get("beacon_token")
        if token is None:
            token = participant.extra["beacon_token"] = secrets.token_urlsafe(24)
            self.beacon_tokens[token] = participant.participant_id
        return token

    async def beacon(self, token: str, payload: Any) -> bool:
        """A page that was closing sent its partial episode with ``navigator.sendBeacon`` (no socket, no ack).

        The participant is identified by the unguessable token in the URL the server gave their page, never
        by the payload. Returns whether the episode was stored.
        """
        participant = self.registry.get(self.beacon_tokens.get(token, ""))
        stored = participant is not None and (await self._store_browser_episode(participant, payload))["ok"]
        if not stored:
            self.rejections["beacon"] += 1
        return stored

    async def browser_episode(self, sid: str, payload: Any) -> dict[str, Any]:
        """An episode played in the page: validate, store (committed), then acknowledge."""
        participant = self.registry.by_sid(sid)
        if participant is None:
            return await self.reject(sid, "browser_episode", "not a participant")
        ack = await self._store_browser_episode(participant, payload)
        if not ack["ok"] and not ack.get("retryable"):
            await self.reject(sid, "browser_episode", ack["error"])
        return ack

    async def _store_browser_episode(self, participant: Participant, payload: Any) -> dict[str, Any]:
        result = await self.browser.receive_upload(participant, payload)
        if result.game_over is not None:
            participant.extra["game_over"] = result.game_over
        return result.ack

    async def _enter_room(self, sid: str, room: str) -> None:
        await self.sio.enter_room(sid, room)

    async def _game_over(self, participant_id: str, reason: str, message: str) -> None:
        participant = self.registry.get(participant_id)
        if participant is None:
            return
        participant.extra["game_over"] = {"reason": reason, "message": message}
        if participant.sid and participant.game_id:
            await self.sio.leave_room(participant.sid, participant.game_id)
        participant.game_id = None

    async def _wait_timeout(self, participant_id: str) -> None:
        participant = self.registry.get(participant_id)
        if participant is None or participant.finished:
            return
        scene = participant.scene
        await self.writer.record_event("waiting_room_timeout", {}, participant_id=participant_id,
                                       scene_id=scene.scene_id)
        notice = "No other participant arrived in time, so the game could not start. Thank you for waiting."
        target = getattr(scene, "timeout_scene_id", None)
        index = len(participant.sequence) - 1
        if target:
            index = next((i for i, s in enumerate(participant.sequence) if s.scene_id == target), index)
        await self._move_to(participant, index, notice=notice, status=Status.TIMED_OUT)

    async def tick_housekeeping(self) -> None:
        """Runs twice a second: expires waiting-room entries."""
        await self.games.expire_waiters(time.monotonic())
        await self.p2p.expire(self._wait_timeout)

    # -- errors ----------------------------------------------------------------------------------------
    async def reject(self, sid: str, event: str, message: str) -> dict[str, Any]:
        """Counts a rejected event and tells that client (only) what was wrong."""
        self.rejections[event] += 1
        await self.sio.emit("error", {"event": event, "message": message}, to=sid)
        return {"ok": False, "error": message}
