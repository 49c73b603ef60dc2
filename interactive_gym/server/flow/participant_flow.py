"""ParticipantFlow: a participant's path through the scenes, one event at a time.

Identity and sessions (who a socket is, resume secrets), scene moves (``advance``), what the page is shown,
and the participant's status (active, completed, timed out, errored, dropped). Game scenes are delegated to
their :class:`~interactive_gym.server.modes.base.GameMode`. Every method that changes a participant runs under
that participant's lock (:class:`~interactive_gym.server.flow.serial.ParticipantSerializer`): the event
dispatcher holds it around each event, and work from elsewhere is posted to the same queue.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from interactive_gym.scenes.form_inputs import AnswerError
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import EndScene, Scene
from interactive_gym.server.flow.conditions import ConditionAssigner
from interactive_gym.server.flow.participants import (
    ConnectKind,
    Participant,
    ParticipantRegistry,
    Status,
    clean_url_params,
    participant_id_from,
)
from interactive_gym.server.flow.scene_moves import Advance, AdvanceInput, judge_advance
from interactive_gym.server.flow.serial import ParticipantSerializer
from interactive_gym.server.flow.sessions import presented_secrets
from interactive_gym.server.modes.base import Ack, GameMode

log = logging.getLogger("interactive_gym.flow")

if TYPE_CHECKING:
    from interactive_gym.server.cluster.handover import Handovers

REFUSALS = {
    ConnectKind.REFUSED_OTHER_TAB: "This study is already open in another tab or window. Please continue there.",
    ConnectKind.REFUSED_FINISHED: "You have already completed this study. Thank you!",
    ConnectKind.REFUSED_NOT_YOURS: (
        "This study was started in another browser or device, so it cannot continue here. Please go back to "
        "the browser you started in, or contact the researcher."),
    ConnectKind.REFUSED_PAUSED: "This study is not taking participants right now. Please try again later.",
}
TIMEOUT_NOTICE = "No other participant arrived in time, so the game could not start. Thank you for waiting."
# A participant whose socket has been gone this long on a page scene is marked dropped (a game scene uses
# its own disconnect_grace_s, after which the game has ended for the partners anyway).
DEFAULT_DROP_AFTER_S = 300.0


class ParticipantFlow:
    """Scene flow and sessions of one experiment.

    Args:
        registry: The participants.
        serial: Their event queues.
        writer: The experiment's DataWriter.
        sio: The Socket.IO server (emits always name a socket).
        modes: The game modes by name.
        preload_for: What the page may start loading for the participant's next in-browser scene.
        drop_after_s: How long a page scene's participant may be gone before they count as dropped.
        clock: Wall clock (``time.time``).
        conditions: The arms of ``AssignCondition`` blocks (recorded when a participant is first seen).
        required_id: An id URL parameter every newcomer must bring (``RemoteConfig.recruitment``).
    """

    def __init__(self, registry: ParticipantRegistry, serial: ParticipantSerializer, writer: Any, sio: Any,
                 modes: Mapping[str, GameMode], preload_for: Callable[[Participant], dict | None],
                 drop_after_s: float = DEFAULT_DROP_AFTER_S, clock: Callable[[], float] = time.time,
                 conditions: ConditionAssigner | None = None, required_id: str | None = None) -> None:
        self.conditions = conditions
        self.required_id = required_id
        self.registry = registry
        self.serial = serial
        self.writer = writer
        self.sio = sio
        self.modes = dict(modes)
        self.preload_for = preload_for
        self.drop_after_s = drop_after_s
        self.clock = clock
        self.rejections: Counter[str] = Counter()
        # The researcher's dashboard can pause enrolment: new participants are refused, known ones go on.
        self.enrolment_open = True
        # Screening and exclusion (flow/exclusion.py Screening), set by the experiment's wiring; None: none.
        self.screening: Any = None
        # One worker of several (cluster/handover.py), set by the experiment's wiring; None: one process.
        self.handovers: Handovers | None = None

    # -- FlowHooks (what game modes may ask) ----------------------------------------------------------------
    def lookup(self, participant_id: str) -> Participant | None:
        return self.registry.get(participant_id)

    def game_over(self, participant_id: str, scene_id: str, record: dict[str, str], show: bool) -> None:
        async def apply() -> None:
            participant = self.registry.get(participant_id)
            if participant is None or participant.finished or participant.scene.scene_id != scene_id:
                return
            if participant.game_over is not None:  # applied already (a join that raced the end asks again)
                if show:
                    await self.send_scene(participant)
                return
            participant.game_over = dict(record)
            participant.last_game_id, participant.game_id = participant.game_id, None
            if record.get("reason") == "error":
                await self.record_event("game_error", {"error": record.get("error", "")[:4000]}, participant,
                                        scene_id=scene_id)
            if show:
                await self.send_scene(participant)

        self.serial.post(participant_id, apply, "game_over")

    def wait_timeout(self, participant_id: str, scene_id: str) -> None:
        async def apply() -> None:
            participant = self.registry.get(participant_id)
            if participant is None or participant.finished or participant.scene.scene_id != scene_id:
                return
            # The expiry was decided outside this participant's queue: a join_game of theirs handled before
            # this ran may have matched them (a page re-sends it on every reconnect). Being matched wins;
            # moving them on now would leave their partners in a game with nobody on the other side.
            if participant.game_id is not None or participant.game_over is not None:
                return
            await self.record_event("waiting_room_timeout", {}, participant, scene_id=scene_id)
            scene = participant.scene
            target = getattr(scene, "timeout_scene_id", None)
            index = len(participant.sequence) - 1
            if target:
                index = next((i for i, s in enumerate(participant.sequence) if s.scene_id == target), index)
            await self.move_to(participant, index, notice=TIMEOUT_NOTICE, status=Status.TIMED_OUT)

        self.serial.post(participant_id, apply, "wait_timeout")

    async def notify(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        if participant.sid:
            await self.sio.emit(event, data, to=participant.sid)

    async def record_event(self, kind: str, data: dict[str, Any], participant: Participant | None = None,
                           scene_id: str | None = None, game_id: str | None = None) -> None:
        await self.writer.record_event(kind, data, participant_id=participant.participant_id if participant
                                       else None, scene_id=scene_id, game_id=game_id)

    # -- connection -----------------------------------------------------------------------------------------
    def identify(self, auth: Any) -> tuple[str, str, dict[str, str]]:
        """``(participant_id, id source, url params)`` from a connection's auth data.

        Raises:
            IdentityError: when the URL cannot identify a participant.
        """
        auth = auth if isinstance(auth, dict) else {}
        params = clean_url_params(auth.get("url_params") or {})
        participant_id, source = participant_id_from(params, auth.get("generated_id"), self.required_id)
        return participant_id, source, params

    async def connect(self, sid: str, participant_id: str, source: str, params: dict[str, str],
                      auth: Mapping[str, Any]) -> str | None:
        """Identifies a new socket's participant and shows them their scene (caller holds their lock).

        Returns:
            A superseded socket of the same tab to disconnect once the lock is released, or None.
        """
        if not self.enrolment_open and self.registry.get(participant_id) is None:
            # Checked before the registry sees them, so a refused newcomer leaves no trace and can come back.
            self.rejections["enrolment_paused"] += 1
            await self.sio.emit("refused", {"reason": ConnectKind.REFUSED_PAUSED.value,
                                            "message": REFUSALS[ConnectKind.REFUSED_PAUSED]}, to=sid)
            return None
        if self.handovers is not None and not await self.handovers.place(sid, participant_id):
            return None  # another worker serves them: the page was told to reconnect there
        tab_id = str(auth.get("tab_id") or "")[:64]
        secret = presented_secrets(auth.get("resume")).get(participant_id)
        outcome = self.registry.connect(participant_id, tab_id, sid, params, self.clock(), secret)
        participant = outcome.participant
        assert participant is not None
        if outcome.kind in REFUSALS:
            await self._refuse(sid, participant, outcome.kind)
            return None
        if self.conditions is not None and (arms := self.conditions.unrecorded(participant_id)):
            # Committed before the participant row and before they see a scene: after a restart their arms,
            # hence their scene order, are read back from this event.
            await self.record_event("condition_assigned", {"conditions": arms}, participant)
            self.conditions.recorded(participant_id)
        participant.page_id = str(auth.get("page_id") or "")[:64]
        if outcome.new_secret:
            await self.sio.emit("session", {"participant_id": participant_id, "resume_secret": outcome.new_secret},
                                to=sid)
            await self.writer.upsert_participant(participant_id, resume_secret_hash=participant.resume_secret_hash)
        if outcome.kind is ConnectKind.NEW:
            await self.writer.upsert_participant(participant_id, url_params=params, status=Status.ACTIVE.value,
                                                 current_scene=participant.scene.scene_id,
                                                 resume_secret_hash=participant.resume_secret_hash)
            await self.record_event("participant_identified", {"id_source": source}, participant)
            log.info("participant %s joined (%s)", participant_id, source)
        elif participant.status is Status.DROPPED:
            participant.status = Status.ACTIVE
            await self.writer.upsert_participant(participant_id, status=Status.ACTIVE.value)
            await self.record_event("returned", {"scene_index": participant.index}, participant,
                                    scene_id=participant.scene.scene_id)
        mode = self._mode_of(participant.scene)
        if mode is not None and outcome.kind is not ConnectKind.NEW:
            await mode.reconnected(participant)
        await self.send_scene(participant)
        return outcome.old_sid

    async def _refuse(self, sid: str, participant: Participant, kind: ConnectKind) -> None:
        data: dict[str, Any] = {"reason": kind.value, "message": REFUSALS[kind]}
        if kind is ConnectKind.REFUSED_FINISHED and isinstance(participant.scene, EndScene):
            data["end"] = participant.scene.client_view(participant.participant_id, participant.status.value)
            if participant.status is Status.TIMED_OUT:
                # Their socket may have been away when the wait ran out: this end page is the first they see.
                data["end"]["notice"] = TIMEOUT_NOTICE
        if kind is ConnectKind.REFUSED_NOT_YOURS:
            self.rejections["resume_refused"] += 1
            await self.record_event("resume_refused", {}, participant)
        await self.sio.emit("refused", data, to=sid)

    async def disconnect(self, sid: str) -> None:
        """A socket closed (caller holds its participant's lock)."""
        participant = self.registry.disconnect(sid, self.clock())
        if participant is None:
            return
        mode = self._mode_of(participant.scene)
        if mode is not None:
            await mode.disconnected(participant)

    # -- scenes ---------------------------------------------------------------------------------------------
    async def send_scene(self, participant: Participant, notice: str | None = None) -> None:
        """Shows the participant their current scene (also after a reload). Nothing when disconnected."""
        if not participant.sid:
            return
        if self.screening is not None and self.screening.pending(participant):
            await self.screening.request(participant)  # the first scene follows once the facts pass
            return
        scene = participant.scene
        if isinstance(scene, EndScene):
            view = scene.client_view(participant.participant_id, participant.status.value)
        else:
            view = scene.to_client()
        if notice:
            view["notice"] = notice
        if participant.game_over:
            # The page gets the reason and its message, never the traceback: a server-mode one names the
            # server's files and code (it is kept for the data, in the game_error event).
            view["game_over"] = {k: v for k, v in participant.game_over.items() if k != "error"}
        elif isinstance(scene, GymScene):
            mode = self.modes[scene.mode]
            view.update(await mode.scene_view(participant, scene))
        preload = self.preload_for(participant)
        if preload:
            view["preload"] = preload
        if participant.sid:  # the mode's view may have awaited the database
            await self.sio.emit("scene", {"index": participant.index, "total": len(participant.sequence),
                                          "participant_id": participant.participant_id, "scene": view},
                                to=participant.sid)

    async def advance(self, participant: Participant, scene_index: int, scene_id: str,
                      answers: dict[str, Any]) -> Ack:
        """The participant continues past the scene the event names: validate, store (committed), move on."""
        scene = participant.scene
        verdict = judge_advance(AdvanceInput(
            scene_ids=[s.scene_id for s in participant.sequence], index=participant.index,
            is_game=isinstance(scene, GymScene), game_over=participant.game_over is not None,
            is_end=isinstance(scene, EndScene)), scene_index, scene_id)
        # Judged before the finished check: a double click on the last page before the end page is a
        # duplicate of the move that finished the participant, not an error to show on their end page.
        if verdict is Advance.DUPLICATE:
            return {"ok": True, "duplicate": True}
        if self.screening is not None and self.screening.pending(participant):
            return await self.reject(participant.sid, "advance", "the browser check is not done yet")
        if participant.finished:
            return await self.reject(participant.sid, "advance", "you have finished the study")
        if verdict is Advance.STALE:
            await self.send_scene(participant)
            return {"ok": False, "error": "stale scene; the current scene was sent again"}
        if verdict is Advance.AT_END:
            return await self.reject(participant.sid, "advance", "the end scene is the last one")
        if verdict is Advance.GAME_RUNNING:
            return await self.reject(participant.sid, "advance", "the game is not over yet")
        try:
            cleaned = scene.clean_answers(answers or {})
        except AnswerError as exc:
            return await self.reject(participant.sid, "advance", str(exc))
        over = participant.game_over
        meta = {"game_over": over} if isinstance(scene, GymScene) else None
        await self.writer.record_scene(participant.participant_id, scene.scene_id, participant.index,
                                       participant.scene_started_at, self.clock(), cleaned, meta)
        if isinstance(scene, GymScene) and over and over.get("reason") == "error" and scene.on_error == "end":
            await self.move_to(participant, len(participant.sequence) - 1, status=Status.ERRORED)
        else:
            await self.move_to(participant, participant.index + 1)
        return {"ok": True}

    async def move_to(self, participant: Participant, index: int, notice: str | None = None,
                      status: Status | None = None) -> None:
        """Moves the participant to ``index`` (stored before they see it)."""
        left = participant.scene
        mode = self._mode_of(left)
        if mode is not None:
            assert isinstance(left, GymScene)
            await mode.left_scene(participant, left)
        participant.index = index
        participant.scene_started_at = self.clock()
        participant.game_id = None
        participant.game_over = None
        scene = participant.scene
        if isinstance(scene, EndScene):
            participant.status = status or Status.COMPLETED
        code = scene.code_for(participant.status.value) if isinstance(scene, EndScene) else None
        await self.writer.upsert_participant(participant.participant_id, status=participant.status.value,
                                             current_scene=scene.scene_id, completion_code=code)
        await self.send_scene(participant, notice)

    async def visibility(self, participant: Participant, visible: bool) -> None:
        participant.visible = visible
        mode = self._mode_of(participant.scene)
        if mode is not None:
            await mode.presence_changed(participant)
        await self.record_event("visibility", {"visible": visible}, participant, scene_id=participant.scene.scene_id)
        if self.screening is not None:
            await self.screening.visibility(participant)

    async def exclude(self, participant: Participant, rule: str, figures: dict[str, Any], message: str,
                      stage: str) -> None:
        """A screening rule ends the study for the participant: stored, their game let go (the partners'
        scene policy applies), then the end page with status ``excluded`` and the screen-out code."""
        if participant.finished:
            return
        scene = participant.scene
        await self.record_event("excluded", {"rule": rule, "stage": stage, "figures": figures}, participant,
                                scene_id=scene.scene_id, game_id=participant.game_id)
        mode = self._mode_of(scene)
        if mode is not None:
            await mode.excluded(participant)
        log.info("participant %s excluded at scene %s by %s", participant.participant_id, scene.scene_id, rule)
        await self.move_to(participant, len(participant.sequence) - 1, notice=message, status=Status.EXCLUDED)

    # -- housekeeping ---------------------------------------------------------------------------------------
    def drop_after(self, scene: Scene) -> float:
        """How long a participant on ``scene`` may be gone before they count as dropped."""
        if isinstance(scene, GymScene) and scene.mode in ("server", "p2p"):
            return scene.disconnect_grace_s
        return self.drop_after_s

    def housekeeping(self) -> None:
        """Marks participants gone past their scene's drop delay as dropped (each on their own queue)."""
        now = self.clock()
        for participant in self.registry.all():
            if participant.finished or participant.status is Status.DROPPED or participant.gone_since is None:
                continue
            if now - participant.gone_since >= self.drop_after(participant.scene):
                self.serial.post(participant.participant_id, functools.partial(self._drop, participant), "drop")
        if self.screening is not None:
            self.screening.housekeeping()

    async def _drop(self, participant: Participant) -> None:
        if participant.connected or participant.finished or participant.status is Status.DROPPED \
                or participant.gone_since is None:
            return
        participant.status = Status.DROPPED
        mode = self._mode_of(participant.scene)
        if mode is not None:
            await mode.dropped(participant)
        gone_s = round(self.clock() - participant.gone_since, 3)
        await self.writer.upsert_participant(participant.participant_id, status=Status.DROPPED.value)
        await self.record_event("dropped", {"scene_index": participant.index, "gone_s": gone_s,
                                            "reason": "disconnected"}, participant,
                                scene_id=participant.scene.scene_id)
        log.info("participant %s dropped at scene %s (gone %.0f s)", participant.participant_id,
                 participant.scene.scene_id, gone_s)

    # -- errors ---------------------------------------------------------------------------------------------
    async def reject(self, sid: str | None, event: str, message: str) -> Ack:
        """Counts a rejected event and tells that client (only) what was wrong."""
        self.rejections[event] += 1
        if sid:
            await self.sio.emit("error", {"event": event, "message": message}, to=sid)
        return {"ok": False, "error": message}

    def _mode_of(self, scene: Scene) -> GameMode | None:
        return self.modes[scene.mode] if isinstance(scene, GymScene) else None
