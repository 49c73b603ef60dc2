"""Screening and exclusion on the server: the thin shell around :mod:`interactive_gym.screening`.

Entry: a new participant's page is asked for its facts (``screening_request``) before it sees the first
scene; its ``screening_report`` plus round trips this server measures itself (``rtt_probe`` events the page
acknowledges) are judged by :func:`~interactive_gym.screening.entry.judge_entry`. In game: the participant's
hidden tab, inputs and round trips feed a :class:`~interactive_gym.screening.monitors.GameMonitors`, polled
from housekeeping; warnings, cleared warnings and exclusions are applied on the participant's own queue. The
decisions are the pure package's; this module only moves events and times in and out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.screening.entry import EntryFacts, judge_entry, needed_features
from interactive_gym.screening.monitors import CLEAR, EXCLUDE, WARN, GameMonitors, Signal
from interactive_gym.screening.rules import (
    EntryRule,
    InGameRule,
    MaxPing,
    TurnPretest,
    entry_rules,
    in_game_rules,
)
from interactive_gym.server.flow.participants import Participant, Status

log = logging.getLogger("interactive_gym.screening")
PROBE_EVENT = "rtt_probe"
CHECKING_SCENE = "screening"


@dataclass
class _Watch:
    """One participant's monitors on one game scene (by index: a repeated scene is watched afresh)."""

    index: int
    monitors: GameMonitors
    next_probe_at: float = 0.0
    probing: bool = False


class Screening:
    """Entry screening and in-game exclusion of one experiment.

    Args:
        flow: The participant flow (``ParticipantFlow``: registry, serial, sio, record_event, notify,
            send_scene, exclude).
        entry: The study's checked entry rules.
        in_game: The study's checked in-game rules (a scene's own ``exclusion`` replaces them).
        needs: Browser features the study's scenes need (``needed_features``).
        ice_servers_for: ``(participant_id, now) -> iceServers`` of the TURN pre-test.
        test_faults: Tests only: the fault profile the page applies to its probe answers (sent with the
            screening request and with every probe).
        monotonic: Clock of the in-game monitors.
        watch_games: Whether any game scene has in-game rules (housekeeping skips everything otherwise).
    """

    def __init__(self, flow: Any, entry: Sequence[EntryRule] = (), in_game: Sequence[InGameRule] = (),
                 needs: frozenset[str] = frozenset(),
                 ice_servers_for: Callable[[str, float], list[dict[str, Any]]] | None = None,
                 test_faults: Mapping[str, Any] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, watch_games: bool = True) -> None:
        self.flow = flow
        self.entry = tuple(entry)
        self.in_game = tuple(in_game)
        self.needs = needs
        self.ice_servers_for = ice_servers_for
        self.test_faults = dict(test_faults) if test_faults else None
        self.monotonic = monotonic
        self.watch_games = watch_games
        self._screened: set[str] = set()
        self._watches: dict[str, _Watch] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- entry ----------------------------------------------------------------------------------------------
    def pending(self, participant: Participant) -> bool:
        """Whether the participant must pass entry screening before they see their first scene."""
        return bool(self.entry) and participant.index == 0 and participant.status is Status.ACTIVE \
            and participant.participant_id not in self._screened

    async def request(self, participant: Participant) -> None:
        """Asks the page for its facts (sent instead of the first scene while screening is pending)."""
        turn = next((r for r in self.entry if isinstance(r, TurnPretest)), None)
        ping = next((r for r in self.entry if isinstance(r, MaxPing)), None)
        request: dict[str, Any] = {"ping": ping is not None, "turn": None}
        if turn is not None and self.ice_servers_for is not None:
            request["turn"] = {"ice_servers": self.ice_servers_for(participant.participant_id, time.time()),
                               "timeout_ms": int(turn.timeout_s * 1000)}
        if self.test_faults:
            request["test_faults"] = self.test_faults
        await self.flow.notify(participant, "screening_request", request)

    async def report(self, participant: Participant, data: dict[str, Any]) -> dict[str, Any]:
        """The page's facts (caller holds the participant's lock): judge them, then show consent or exclude."""
        if not self.pending(participant):
            return {"ok": True, "duplicate": True}
        sid = participant.sid
        ping = next((r for r in self.entry if isinstance(r, MaxPing)), None)
        samples = await self._pings(sid, ping) if ping is not None and sid else []
        if participant.sid != sid or not self.pending(participant):
            return {"ok": False, "error": "this connection was replaced", "retryable": True}
        facts = EntryFacts.from_report(data, samples, participant.url_params)
        verdict = judge_entry(self.entry, facts, self.needs)
        for error in verdict.errors:
            log.warning("screening rule %s raised for %s (let through): %s", error.rule,
                        participant.participant_id, error.error)
            await self.flow.record_event("screening_rule_error", {"rule": error.rule, "error": error.error},
                                         participant, scene_id=participant.scene.scene_id)
        if verdict.failure is None:
            self._screened.add(participant.participant_id)
            await self.flow.record_event("screening_passed", {"facts": facts.as_dict()}, participant,
                                         scene_id=participant.scene.scene_id)
            await self.flow.send_scene(participant)
            return {"ok": True, "passed": True}
        failure = verdict.failure
        await self.flow.exclude(participant, failure.rule, {**failure.figures, "facts": facts.as_dict()},
                                failure.message, stage="entry")
        return {"ok": True, "passed": False}

    async def _pings(self, sid: str, rule: MaxPing) -> list[float]:
        """``rule.samples`` round trips to the page, one after another; no answer counts as the timeout."""
        samples = []
        for n in range(rule.samples):
            samples.append(await self._round_trip(sid, n, rule.timeout_ms))
        return samples

    async def _round_trip(self, sid: str, n: int, timeout_ms: float) -> float:
        # Tests only: every probe carries the fault profile, so a page with in-game rules and no entry rules
        # (it never gets a screening_request) delays its answers too.
        probe: dict[str, Any] = {"n": n, "test_faults": self.test_faults} if self.test_faults else {"n": n}
        started = time.perf_counter()
        try:
            await self.flow.sio.call(PROBE_EVENT, probe, to=sid, timeout=timeout_ms / 1000)
        except Exception:  # noqa: BLE001 - no answer in time (socketio.exceptions.TimeoutError) or a lost socket
            return float(timeout_ms)
        return min(float(timeout_ms), (time.perf_counter() - started) * 1000)

    # -- in game --------------------------------------------------------------------------------------------
    def rules_for(self, scene: GymScene) -> tuple[InGameRule, ...]:
        return scene.exclusion if scene.exclusion is not None else self.in_game

    def _playing(self, participant: Participant) -> bool:
        """In a game that runs (browser mode: from the scene's start; server and p2p: once matched)."""
        scene = participant.scene
        if participant.finished or participant.game_over is not None or not isinstance(scene, GymScene):
            return False
        return scene.mode == "browser" or participant.game_id is not None

    def _watch(self, participant: Participant, now: float) -> _Watch | None:
        """The participant's current watch (made when they start playing), or None when not playing."""
        watch = self._watches.get(participant.participant_id)
        if not self._playing(participant):
            if watch is not None:
                del self._watches[participant.participant_id]
            return None
        if watch is None or watch.index != participant.index:
            scene = participant.scene
            assert isinstance(scene, GymScene)
            rules = self.rules_for(scene)
            if not rules:
                return None
            watch = _Watch(participant.index, GameMonitors(rules, now, participant.visible), next_probe_at=now)
            self._watches[participant.participant_id] = watch
        return watch

    async def visibility(self, participant: Participant) -> None:
        """The tab was hidden or shown (caller holds the participant's lock)."""
        now = self.monotonic()
        watch = self._watch(participant, now)
        if watch is not None:
            await self._apply(participant, watch.monitors.visibility(now, participant.visible))

    async def input(self, participant: Participant) -> None:
        """A key press or click (server-mode keys, or an ``activity`` event; caller holds the lock)."""
        now = self.monotonic()
        watch = self._watch(participant, now)
        if watch is not None:
            await self._apply(participant, watch.monitors.input(now))

    def housekeeping(self) -> None:
        """Polls every playing participant's monitors; posts what is due to their queue; starts RTT probes."""
        if not self.watch_games:
            return
        now = self.monotonic()
        for participant in self.flow.registry.all():
            watch = self._watch(participant, now)
            if watch is None:
                continue
            signals = watch.monitors.poll(now)
            if signals:
                self._post(participant, watch, signals)
            rtt = watch.monitors.rtt
            if rtt is not None and participant.sid and not watch.probing and now >= watch.next_probe_at:
                watch.probing = True
                watch.next_probe_at = now + rtt.rule.probe_every_s
                task = asyncio.create_task(self._probe(participant, watch, participant.sid, rtt.rule.timeout_ms))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        for participant_id in [p for p in self._watches if self.flow.registry.get(p) is None]:
            del self._watches[participant_id]

    async def _probe(self, participant: Participant, watch: _Watch, sid: str, timeout_ms: float) -> None:
        try:
            rtt_ms = await self._round_trip(sid, 0, timeout_ms)
        finally:
            watch.probing = False
        if participant.sid != sid or self._watches.get(participant.participant_id) is not watch:
            return  # the socket went away (that is the drop rules' business, not a slow round trip)
        signals = watch.monitors.rtt_sample(self.monotonic(), rtt_ms)
        if signals:
            self._post(participant, watch, signals)

    def _post(self, participant: Participant, watch: _Watch, signals: list[Signal]) -> None:
        async def apply() -> None:
            if self._watches.get(participant.participant_id) is watch and self._playing(participant):
                await self._apply(participant, signals)

        self.flow.serial.post(participant.participant_id, apply, "screening")

    async def _apply(self, participant: Participant, signals: list[Signal]) -> None:
        scene_id = participant.scene.scene_id
        for signal in signals:
            if signal.kind == WARN:
                await self.flow.record_event("exclusion_warning", {"rule": signal.rule, "figures": signal.figures},
                                             participant, scene_id=scene_id, game_id=participant.game_id)
                await self.flow.notify(participant, "exclusion_warning", {
                    "rule": signal.rule, "active": True, "message": signal.message,
                    "seconds_left": signal.figures.get("seconds_left")})
            elif signal.kind == CLEAR:
                await self.flow.record_event("exclusion_warning_cleared", {"rule": signal.rule,
                                                                           "figures": signal.figures},
                                             participant, scene_id=scene_id, game_id=participant.game_id)
                await self.flow.notify(participant, "exclusion_warning", {"rule": signal.rule, "active": False})
            elif signal.kind == EXCLUDE:
                self._watches.pop(participant.participant_id, None)
                await self.flow.exclude(participant, signal.rule, signal.figures, signal.message, stage="in_game")
                return

    async def shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def screening_for(experiment: Any) -> Screening:
    """The screening shell of an ``Experiment``, from its ``RemoteConfig.screening(...)`` and scenes."""
    config = experiment.config
    args = config.screening_args
    scenes = config.stager.all_scenes()
    games = [s for s in scenes if isinstance(s, GymScene)]
    in_game = in_game_rules(args.get("in_game", ()))
    return Screening(experiment.flow, entry=entry_rules(args.get("entry", ())), in_game=in_game,
                     needs=needed_features([s.mode for s in games]),
                     ice_servers_for=experiment.p2p_mode.webrtc.ice_servers_for, test_faults=config.test_faults,
                     monotonic=experiment.monotonic,
                     watch_games=any(s.exclusion if s.exclusion is not None else in_game for s in games))
