"""The Python half of a p2p game page: rollback session, simulation, key mapping, rendering, confirmed data.

The page's JavaScript (``p2p_game.js``) owns the clock, the keyboard, the DataChannels and the canvas. Per frame
it hands received packets to :meth:`P2PGameHost.receive` and calls :meth:`P2PGameHost.tick` with its monotonic
clock and the held keys; one JSON string comes back with the packets to send, the render packet of the current
(predicted) frame, the session's events and the episodes whose data is complete. Strings cross the JS/Python
boundary cheaply; packets travel as base64 text inside them (a few dozen bytes per frame).

Data: the rows of this peer's uploads are collected once their frames are confirmed, by
:class:`~interactive_gym.browser.p2p_trajectory.ConfirmedTrajectory`; the config is read by
:func:`~interactive_gym.browser.p2p_host_config.host_parts`.

Input delay: fixed (``config["p2p"]["input_delay"]`` an integer) or ``"auto"`` (bounds and rollback budget in
``config["p2p"]["auto_input_delay"]``): then player 0 picks each episode's delay from the RTT its session measured
and every peer switches to the announced value when its simulation starts the episode, waiting for it if needed
(``netcode/episode_delays.py``). The delay each episode was played with is in ``stats["input_delays"]``.

Partner drop (``GymScene(on_partner_drop="ai")``): :class:`~interactive_gym.browser.p2p_takeover.PartnerTakeovers`
(:meth:`P2PGameHost.take_over`). Rejoin after a reload: :class:`~interactive_gym.browser.p2p_rejoin.RejoinState`
(:meth:`P2PGameHost.request_rejoin`, :meth:`P2PGameHost.add_snapshot_chunk`). Events, uploads and statistics:
``p2p_host_reports.py``.

Runs in Pyodide and in CPython (tests drive two hosts over the in-memory network simulator).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from interactive_gym.browser import p2p_host_reports as reports
from interactive_gym.browser.p2p_host_config import host_parts
from interactive_gym.browser.p2p_rejoin import GapLog, RejoinState
from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.browser.p2p_takeover import PartnerTakeovers
from interactive_gym.browser.p2p_trajectory import ConfirmedTrajectory
from interactive_gym.envs.agent_runtime import AgentPolicy
from interactive_gym.envs.multiagent import base_env
from interactive_gym.netcode import requests as rq
from interactive_gym.netcode.episode_delays import LEADER, EpisodeDelays
from interactive_gym.netcode.input_delay import AutoInputDelay
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.rejoin import SnapshotError
from interactive_gym.netcode.runner import P2PRunner

STATUS_NAMES = {
    rq.AdvanceStatus.ADVANCED: "advanced",
    rq.AdvanceStatus.PREDICTION_THRESHOLD: "stalled",
    rq.AdvanceStatus.NOT_SYNCHRONIZED: "not_synchronized",
    rq.AdvanceStatus.WAITING: "waiting",
    rq.AdvanceStatus.IDLE: "idle",
}


class P2PGameHost:
    """One participant's side of a p2p game.

    Args:
        sim: The simulation (environment, AI agents, episodes).
        session: The rollback session of this peer (peers are addressed by player id).
        my_player: This participant's player index.
        key_mapping: ``action_for(held_keys)`` and ``keys``.
        surface: Surface drawing API with ``commit() -> dict``.
        render_fn: ``render(env, surface)``.
        config: The p2p scene config (for ``scene_id``, ``seeds``, ``bundle.hash``).
        takeover: The partner-drop policy and its controller text, if the scene has one.
        auto_delay: The ``"auto"`` input delay settings, or ``None`` for the session's fixed delay.
    """

    def __init__(self, *, sim: P2PSimulation, session: P2PSession, my_player: int, key_mapping: Any, surface: Any,
                 render_fn: Callable[[Any, Any], Any], config: Mapping[str, Any],
                 takeover: tuple[AgentPolicy, str] | None = None, auto_delay: AutoInputDelay | None = None) -> None:
        self.sim = sim
        self.partner_drops = PartnerTakeovers(takeover)
        self.session = session
        self.runner = P2PRunner(session, sim, record_history=False)
        self.my_player = my_player
        self.my_agent = sim.player_agents[my_player]
        self._mapping = key_mapping
        self._allowed_keys = list(key_mapping.keys)
        self._codec = sim.codecs[my_player]
        self._surface = surface
        self._render_fn = render_fn
        self._base_env = base_env(sim.env)
        self.scene_id = str(config.get("scene_id", ""))
        self.bundle_hash = str((config.get("bundle") or {}).get("hash", ""))
        self.seeds = list(sim.seeds)
        self.delays = EpisodeDelays(auto_delay, leader=my_player == LEADER, episodes=len(self.seeds),
                                    max_steps=sim.max_steps, fps=session.settings.fps,
                                    prediction_window=session.settings.max_prediction)
        self.delay_wait_ticks = 0  # ticks that played no frame because the episode's delay was not known yet
        self._inbox: list[tuple[Hashable, bytes]] = []
        self._carry: list[str] = []
        self.trajectory = ConfirmedTrajectory(sim, self.my_agent)
        self.log = reports.SessionLog()
        self.bad_packets = 0
        self.ticks = 0
        self._rendered_once = False
        self.rejoins = RejoinState()

    # -- construction -----------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, config: Mapping[str, Any], my_player: int, *, now_ms: float = 0.0, surface: Any = None,
                    key_mapping: Any = None, isolate_global_random: bool = False,
                    clock: Callable[[], float] = time.time) -> P2PGameHost:
        """Builds the host from the p2p scene config (``browser_scene_config`` output plus ``config["p2p"]``).

        Raises:
            HostConfigError: for a config this host cannot play (no p2p block, a missing model, bad players).
        """
        parts = host_parts(config, my_player, surface=surface, key_mapping=key_mapping,
                           isolate_global_random=isolate_global_random, clock=clock)
        return cls(sim=parts.sim, session=P2PSession(parts.settings, now_ms=now_ms), my_player=my_player,
                   key_mapping=parts.key_mapping, surface=parts.surface, render_fn=parts.render_fn, config=config,
                   takeover=parts.takeover, auto_delay=parts.auto_delay)

    @classmethod
    def from_config_json(cls, text: str, my_player: int, now_ms: float = 0.0) -> P2PGameHost:
        """:meth:`from_config` for JSON text (what the page passes, once)."""
        return cls.from_config(json.loads(text), int(my_player), now_ms=float(now_ms))

    @property
    def takeovers(self) -> dict[int, dict[str, Any]]:
        """Player -> the record of its takeover (:class:`PartnerTakeovers`)."""
        return self.partner_drops.records

    @property
    def rejoined(self) -> dict[str, int] | None:
        """On a page that resumed from a snapshot, ``{"frame", "episode", "t"}`` of where; else ``None``."""
        return self.rejoins.rejoined

    @property
    def events(self) -> list[dict[str, Any]]:
        """The session's events so far (the first ``MAX_EVENTS_KEPT``), as JSON-ready data."""
        return self.log.events

    @property
    def desyncs(self) -> list[dict[str, Any]]:
        """Every desync and episode mismatch the session reported."""
        return self.log.desyncs

    @property
    def input_delay(self) -> int:
        """The input delay in use now (frames)."""
        return self.session.input_delay

    # -- per frame ----------------------------------------------------------------------------------------------
    def start(self, now_ms: float) -> None:
        """Restarts the session clock at the real start of play (before any frame was simulated).

        Peers load at different speeds; silence must be measured from the moment both are ready, not from when
        this host was built, or a slow-loading partner would be declared disconnected.
        """
        if self.session.current_frame != 0:
            raise RuntimeError("start() must be called before the first frame")
        self.session = P2PSession(self.session.settings, now_ms=now_ms)
        self.runner = P2PRunner(self.session, self.sim, record_history=False)

    def receive(self, peer: int, data: Any) -> None:
        """Queues a packet from ``peer`` (base64 text, bytes, or a Pyodide Uint8Array proxy) for the next tick."""
        if isinstance(data, str):
            try:
                payload = base64.b64decode(data, validate=True)
            except ValueError:
                self.bad_packets += 1
                return
        elif hasattr(data, "to_bytes"):
            payload = data.to_bytes()
        else:
            payload = bytes(data)
        self._inbox.append((int(peer), payload))

    def local_input(self, held_keys: str) -> tuple[list[str], bytes]:
        """The cleaned held keys and the input bytes they mean for this player."""
        from interactive_gym.controls import clean_held_keys

        keys = clean_held_keys(held_keys.split("\n"), self._allowed_keys) if held_keys else []
        data = self._codec.encode(self._mapping.action_for(keys))
        return keys, data.ljust(self.sim.input_size, b"\0")

    def tick(self, now_ms: float, held_keys: str = "") -> str:
        """Plays one frame (or waits, or stalls); returns the outcome as JSON text.

        Returns:
            ``{"frame", "status", "rollback", "simulated", "out": [[peer, base64], ...], "render": packet | null,
            "events": [...], "episodes": [completed episode numbers], "done", "episode", "t", "pause"}``;
            ``episode`` and ``t`` describe the displayed (predicted) frame, ``pause`` the frames it still holds
            before that episode's first step (the "next round" notice).
        """
        self.ticks += 1
        if self._carry:
            # Keys of ticks whose input was not committed (time-sync wait, not synchronized, repeated stall)
            # count in this one: a tap shorter than a frame must never be lost.
            held_keys = "\n".join([*self._carry, *(held_keys.split("\n") if held_keys else [])])
        keys, data = self.local_input(held_keys)
        sim = self.sim
        # At an episode start the session switches to that episode's input delay (and waits until it is known).
        delay_known = self.done or self.delays.ready(self.session, now_ms, sim.episode, sim.t, sim.finished)
        if not delay_known:
            self.delay_wait_ticks += 1
        target = self.session.current_frame + self.session.input_delay
        fresh_target = target not in self.trajectory.keys_by_frame
        packets, self._inbox = self._inbox, []
        self.rejoins.cut_requested(self.session)
        result = self.runner.tick(now_ms, {self.my_player: data}, packets, advance=delay_known and not self.done)
        committed = (not self.done and delay_known and not result.waited and fresh_target
                     and result.status in (rq.AdvanceStatus.ADVANCED, rq.AdvanceStatus.PREDICTION_THRESHOLD))
        if committed:
            self.trajectory.keys_by_frame[target] = keys  # a stalled frame keeps the first input given for it
        # Keys held while the first delay is measured belong to no frame (taps made while connecting do not act
        # on frame 0); keys of a wait at a later episode start are real inputs, carried like any other.
        before_play = not delay_known and self.session.current_frame == 0
        self._carry = [] if committed or self.done or before_play else keys
        events = [self.log.note_event(e) for e in result.events]
        for event in result.events:
            if isinstance(event, rq.Disconnected):
                self.partner_drops.note_disconnected(event)
                if event.frame <= self.trajectory.collected:
                    self.trajectory.reopen_from(event.frame)
        drops = self.partner_drops
        last_kept = drops.last_kept_frame(self.session.confirmed_frame, self.rejoins.coming_back())
        newly = self.trajectory.collect(self.session, min(self.session.confirmed_frame, last_kept),
                                        drops.note_row if drops.placing else None)
        rejoins = self.rejoins.serve_pending(self, now_ms) if self.rejoins.requests else {}
        render = None
        if result.frames_simulated or not self._rendered_once:
            render = self.render()
        self.log.sample_rtt(self.session, result.status)
        status = "waiting" if result.waited else STATUS_NAMES.get(result.status, result.status.name.lower())
        return json.dumps({
            "frame": self.session.current_frame,
            "status": status,
            "rollback": result.rollback_depth,
            "simulated": result.frames_simulated,
            "out": [[peer, base64.b64encode(packet).decode("ascii")] for peer, packet in result.outgoing],
            "render": render,
            "events": events,
            "episodes": newly,
            "done": self.done,
            "episode": min(self.sim.episode, len(self.seeds) - 1),
            "t": self.sim.t,
            "pause": self.sim.pause_left,
            "rejoin": rejoins,
        }, separators=(",", ":"))

    def render(self) -> dict[str, Any]:
        """Draws the current (predicted) state and returns the render packet."""
        self._rendered_once = True
        self._render_fn(self._base_env, self._surface)
        return self._surface.commit()

    def partner_left(self, player: int) -> None:
        """The server says ``player`` left for good: stop waiting for its inputs."""
        if int(player) != self.my_player:
            self.session.disconnect_player(int(player))

    def take_over(self, player: int) -> str:
        """The server says ``player`` is gone and this peer plays on: the takeover policy plays their agent.

        See :meth:`PartnerTakeovers.take_over`; the policy plays from :attr:`P2PSession.current_frame`, so no
        frame this peer already showed changes, and repeating the call for the same player changes nothing.

        Returns:
            JSON ``{"ok": true, "frame": n}`` or ``{"ok": false, "error": ...}`` (no takeover policy, not a remote
            player, or another peer is still connected: then every remaining peer would compute the policy).
        """
        return json.dumps(self.partner_drops.take_over(int(player), self.session, self.sim, self.my_player))

    def request_rejoin(self, player: int) -> str:
        """A player's new page (after a reload or a crash) asks this page for a snapshot.

        The snapshot is captured at the end of the next tick (its ``"rejoin"`` field has the chunks, by player);
        a repeated request for a snapshot already served answers with the same chunks at once.

        Returns:
            JSON ``{"ok": true, "pending": true}``, ``{"ok": true, "id": n, "chunks": [...]}`` or
            ``{"ok": false, "error": ...}`` (oneself, no such player, a player taken over, 3+ players).
        """
        return json.dumps(self.rejoins.request(self, int(player)))

    def partner_away(self, player: int) -> None:
        """A silent partner may come back on a new page (rejoin is possible in this game): the rows this peer plays
        with the default input for them (the gap) are kept from now on, as they would be for its snapshot, so the
        rows never fall behind the session's input history while the new page loads."""
        if int(player) != self.my_player:
            self.rejoins.may_return.add(int(player))

    def expect_rejoin(self, player: int) -> None:
        """The server says ``player`` is coming back on a new page: its old page is gone and a snapshot served
        before is stale.

        The player is disconnected in the session now (as a rejoin request would at its next tick), so this peer
        plays on with the default input for them while the new page loads, instead of stalling until the silence
        timeout when the old page's goodbye was lost.
        """
        self.rejoins.expect(self, int(player))

    def add_snapshot_chunk(self, snapshot_id: Any, index: Any, count: Any, text: Any, now_ms: float) -> str:
        """Takes one chunk of a snapshot for this (returning) page; loads it once complete.

        Returns:
            JSON ``{"ok": true, "loaded": false}`` while chunks are missing, ``{"ok": true, "loaded": true,
            "frame", "episode", "t"}`` once resumed (later chunks are ignored), or ``{"ok": false, "error"}``.
        """
        if self.rejoined is not None:
            return json.dumps({"ok": True, "loaded": True, "duplicate": True, **self.rejoined})
        try:
            place = self.rejoins.add_chunk(self, snapshot_id, index, count, text, float(now_ms))
        except SnapshotError as exc:
            return json.dumps({"ok": False, "error": str(exc)})
        if place is None:
            return json.dumps({"ok": True, "loaded": False})
        # Earlier episodes were played (and uploaded) by the old page; keys carried here belong to no frame.
        self._carry = []
        self.trajectory.resume_at(place["frame"])
        return json.dumps({"ok": True, "loaded": True, **place})

    def close_packets(self) -> str:
        """Goodbye packets for every connected peer (JSON ``[[peer, base64], ...]``), e.g. when the page closes."""
        self.session.close()
        return json.dumps([[p, base64.b64encode(d).decode("ascii")] for p, d in self.session.drain_outgoing()])

    # -- data -----------------------------------------------------------------------------------------------------
    @property
    def episodes(self) -> list[list[dict[str, Any]]]:
        """The confirmed rows of every episode (:class:`ConfirmedTrajectory`)."""
        return self.trajectory.episodes

    @property
    def completed(self) -> list[int]:
        return self.trajectory.completed

    @property
    def done(self) -> bool:
        return self.trajectory.done

    @property
    def gaps(self) -> GapLog:
        return self.trajectory.gaps

    @property
    def row_mismatches(self) -> int:
        return self.trajectory.row_mismatches

    @property
    def current_episode(self) -> int:
        """The first episode whose confirmed data is not complete (``len(seeds)`` when all are)."""
        return len(self.completed)

    def step_count(self, episode: int) -> int:
        """Confirmed steps of ``episode`` so far."""
        return len(self.episodes[episode])

    def episode_payload_json(self, episode: int, partial: bool = False, end_reason: str = "done") -> str:
        """The upload of ``episode`` (confirmed rows only) in the browser-mode payload format, as JSON text.

        The page adds ``game_id`` and ``stats`` before sending it.
        """
        return reports.episode_payload_json(self, episode, partial, end_reason)

    def stats_json(self) -> str:
        """Session statistics for the upload's ``stats`` (the page adds connection and latency figures)."""
        return reports.stats_json(self)
