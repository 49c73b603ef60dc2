"""Every Socket.IO event of an experiment, registered in one place.

The table in :meth:`EventRouter.routes` names each participant event, how its payload is checked, and which
handler runs it. The router validates the payload, finds the participant, and runs the handler under that
participant's lock, so one participant's events never interleave; anything a handler raises is answered with
an ``error`` to that client only and counted. Handlers here are thin: they translate an event into a call
on the flow or a mode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.experiment import Experiment
from interactive_gym.server.flow.participants import IdentityError, Participant
from interactive_gym.server.schemas import PayloadError, validate_payload
from interactive_gym.server.signaling import INPUT_RELAY_EVENT, SIGNAL_EVENT

log = logging.getLogger("interactive_gym.events")

Handler = Callable[[Participant, Any], Awaitable[Any]]
# The answer to an event over its client's rate limit: no error event (that would multiply a flood), and
# retryable, so a page that really needs the event (an upload) backs off and sends it again.
RATE_LIMITED = {"ok": False, "code": "rate_limited", "error": "too many events; slow down", "retryable": True}


@dataclass(frozen=True)
class Route:
    """One participant event.

    Attributes:
        event: The Socket.IO event name.
        handler: ``handler(participant, payload)``; the payload is the validated dict when ``schema``.
        schema: Whether the payload is checked against ``schemas.EVENT_SCHEMAS`` first (uploads and the
            signaling relay check their own, richer formats).

    Rate limits are per event class, declared in ``rate_limits.EVENT_CLASSES``.
    """

    event: str
    handler: Handler
    schema: bool = True


class EventRouter:
    """Registers and dispatches every event of one experiment.

    Args:
        sio: The Socket.IO server.
        experiment: The experiment state.
        limiter: Optional per-client rate limiter (``allow(sid, event, now) -> bool``, ``forget(sid)``).
    """

    def __init__(self, sio: Any, experiment: Experiment, limiter: Any = None) -> None:
        self.sio = sio
        self.experiment = experiment
        self.flow = experiment.flow
        self.limiter = limiter

    def routes(self) -> list[Route]:
        """The participant events and their handlers."""
        relay = self.experiment.p2p_mode.relay
        return [
            Route("advance", self._advance),
            Route("join_game", self._join_game),
            Route("keys", self._keys),
            Route("visibility", self._visibility),
            Route("screening_report", self._screening_report),
            Route("activity", self._activity),
            Route("p2p_join", self._p2p_join),
            Route("p2p_game_end", self._p2p_game_end),
            Route("browser_episode", self._browser_episode, schema=False),
            Route("p2p_episode", self._p2p_episode, schema=False),
            Route(SIGNAL_EVENT, lambda p, data: relay.on_webrtc_signal(p.sid or "", data), schema=False),
            Route(INPUT_RELAY_EVENT, lambda p, data: relay.on_input_relay(p.sid or "", data), schema=False),
        ]

    def register(self) -> None:
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("ping", self._ping)
        for route in self.routes():
            self.sio.on(route.event, self._dispatcher(route))

    # -- dispatch -------------------------------------------------------------------------------------------
    def _dispatcher(self, route: Route) -> Callable[..., Awaitable[Any]]:
        async def dispatch(sid: str, payload: Any = None) -> Any:
            if not self._allowed(sid, route.event):
                return RATE_LIMITED
            try:
                data = validate_payload(route.event, payload) if route.schema else payload
            except PayloadError as exc:
                return await self.flow.reject(sid, route.event, str(exc))
            participant_id = self.experiment.registry.participant_id_of(sid)
            if participant_id is None:
                return await self.flow.reject(sid, route.event, "not an active participant")
            try:
                async with self.experiment.serial.hold(participant_id):
                    participant = self.experiment.registry.by_sid(sid)
                    if participant is None or participant.sid != sid:
                        return await self.flow.reject(sid, route.event, "this connection was replaced")
                    return await route.handler(participant, data)
            except Exception:  # noqa: BLE001 - one client's event must never take the server down
                log.exception("handler %s failed for %s", route.event, sid)
                return await self.flow.reject(sid, route.event, "internal error handling this event")

        return dispatch

    async def _connect(self, sid: str, environ: dict, auth: Any = None) -> bool:
        try:
            participant_id, source, params = self.flow.identify(auth)
        except IdentityError as exc:
            await self.flow.reject(sid, "connect", str(exc))
            # The reason names the rule (e.g. a missing recruitment id), so the page and the tests can tell them apart.
            reason = getattr(exc, "reason", "bad_identity")
            await self.sio.emit("refused", {"reason": reason, "message": str(exc)}, to=sid)
            return True
        auth = auth if isinstance(auth, dict) else {}
        try:
            async with self.experiment.serial.hold(participant_id):
                old_sid = await self.flow.connect(sid, participant_id, source, params, auth)
        except Exception:  # noqa: BLE001 - a failing connect is answered, never fatal
            log.exception("connect failed for %s", sid)
            await self.flow.reject(sid, "connect", "internal error; please reload the page")
            return True
        if old_sid:
            # Outside the lock: disconnecting runs the old socket's disconnect handler, which takes it too.
            await self.sio.disconnect(old_sid)
        return True

    async def _disconnect(self, sid: str, *args: Any) -> None:
        if self.limiter is not None:
            self.limiter.forget(sid)
        participant_id = self.experiment.registry.participant_id_of(sid)
        if participant_id is None:
            return
        try:
            async with self.experiment.serial.hold(participant_id):
                await self.flow.disconnect(sid)
        except Exception:  # noqa: BLE001
            log.exception("disconnect failed for %s", sid)

    def _allowed(self, sid: str, event: str) -> bool:
        """Within the client's rate limit; a refusal is counted by the limiter and answered (retryable)."""
        return self.limiter is None or self.limiter.allow(sid, event, time.monotonic())

    async def _ping(self, sid: str, payload: Any = None) -> Any:
        if not self._allowed(sid, "ping"):
            return RATE_LIMITED
        try:
            data = validate_payload("ping", payload)
        except PayloadError as exc:
            return await self.flow.reject(sid, "ping", str(exc))
        return {"t": data["t"], "server_t": time.time() * 1000}

    # -- handlers ---------------------------------------------------------------------------------------------
    async def _advance(self, participant: Participant, data: dict[str, Any]) -> Any:
        return await self.flow.advance(participant, data["scene_index"], data["scene_id"], data.get("answers") or {})

    def _game_scene(self, participant: Participant, data: dict[str, Any], mode: str) -> GymScene | str:
        """The participant's current game scene of ``mode`` named by the event, or why not."""
        if participant.finished:
            return "not an active participant"
        if self.flow.screening.pending(participant):
            return "the browser check is not done yet"
        scene = participant.scene
        if data["scene_index"] != participant.index or data["scene_id"] != scene.scene_id \
                or not isinstance(scene, GymScene):
            return "that is not your current game scene"
        if scene.mode != mode:
            return f"scene {scene.scene_id!r} runs in {scene.mode} mode"
        return scene

    async def _join_game(self, participant: Participant, data: dict[str, Any]) -> Any:
        scene = self._game_scene(participant, data, "server")
        if isinstance(scene, str):
            return await self.flow.reject(participant.sid, "join_game", scene)
        if participant.game_over:
            await self.flow.send_scene(participant)
            return {"ok": True}
        await self.experiment.server_mode.join(participant, scene)
        return {"ok": True}

    async def _keys(self, participant: Participant, data: dict[str, Any]) -> None:
        error = self.experiment.server_mode.set_keys(participant, data["game_id"], data["held"], data["seq"])
        if error:
            await self.flow.reject(participant.sid, "keys", error)
        else:
            await self.flow.screening.input(participant)

    async def _screening_report(self, participant: Participant, data: dict[str, Any]) -> Any:
        return await self.flow.screening.report(participant, data)

    async def _activity(self, participant: Participant, data: dict[str, Any]) -> None:
        if data["scene_index"] == participant.index:  # input on a scene already left says nothing about this one
            await self.flow.screening.input(participant)

    async def _visibility(self, participant: Participant, data: dict[str, Any]) -> None:
        await self.flow.visibility(participant, data["visible"])

    async def _p2p_join(self, participant: Participant, data: dict[str, Any]) -> Any:
        scene = self._game_scene(participant, data, "p2p")
        if isinstance(scene, str):
            return await self.flow.reject(participant.sid, "p2p_join", scene)
        if participant.game_over is None:
            await self.experiment.p2p_mode.join(participant, scene, data.get("rtt_ms"))
        if participant.game_over is not None:
            await self.flow.send_scene(participant)
        return {"ok": True}

    async def _p2p_game_end(self, participant: Participant, data: dict[str, Any]) -> Any:
        ended = await self.experiment.p2p_mode.game_end(participant, data["game_id"], data["reason"],
                                                        data.get("error") or "")
        if not ended:
            return await self.flow.reject(participant.sid, "p2p_game_end", "you are not in this game")
        return {"ok": True}

    async def _browser_episode(self, participant: Participant, payload: Any) -> Any:
        ack = await self.experiment.browser_mode.upload(participant, payload)
        if not ack.get("ok") and not ack.get("retryable"):
            await self.flow.reject(participant.sid, "browser_episode", str(ack.get("error")))
        return ack

    async def _p2p_episode(self, participant: Participant, payload: Any) -> Any:
        ack = await self.experiment.p2p_mode.upload(participant, payload)
        if not ack.get("ok"):
            await self.flow.reject(participant.sid, "p2p_episode", str(ack.get("error")))
        return ack

    # -- beacons (HTTP, from a closing page) -----------------------------------------------------------------
    def knows_beacon_token(self, token: str) -> bool:
        return self.experiment.browser_mode.knows_beacon_token(token)

    async def beacon(self, token: str, payload: Any) -> bool:
        """A closing page's partial episode (``navigator.sendBeacon``: no socket, no ack).

        The participant is identified by the unguessable token in the URL the server gave their page, never
        by the payload. Returns whether the episode was stored.
        """
        participant = self.experiment.browser_mode.beacon_participant(token)
        if participant is None:
            self.flow.rejections["beacon"] += 1
            return False
        async with self.experiment.serial.hold(participant.participant_id):
            ack = await self.experiment.browser_mode.upload(participant, payload)
        if not ack.get("ok"):
            self.flow.rejections["beacon"] += 1
        return bool(ack.get("ok"))
