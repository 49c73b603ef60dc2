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

Partner drop (``GymScene(on_partner_drop="ai")``): when the server says a partner is gone for good and this is
the last peer, :meth:`P2PGameHost.take_over` disconnects them in the session (their inputs are final from then
on) and has the simulation's takeover policy play their agent from the next frame to simulate. The uploads of
this peer then carry ``stats["takeovers"]`` (the agent, the frame and its episode/step, and where the partner's
own inputs stopped), from which the server flags the steps and bounds the parity check.

Runs in Pyodide and in CPython (tests drive two hosts over the in-memory network simulator).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import asdict
from typing import Any

from interactive_gym.browser.p2p_host_config import host_parts
from interactive_gym.browser.p2p_rejoin import GapLog, resume_session, serve_snapshot, snapshot_ready
from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.browser.p2p_trajectory import ConfirmedTrajectory
from interactive_gym.envs.agent_runtime import AgentPolicy
from interactive_gym.envs.multiagent import base_env
from interactive_gym.netcode import requests as rq
from interactive_gym.netcode.episode_delays import LEADER, EpisodeDelays
from interactive_gym.netcode.input_delay import AutoInputDelay
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.rejoin import ChunkAssembler, SnapshotError, split_chunks
from interactive_gym.netcode.runner import P2PRunner
from interactive_gym.netcode.sync_layer import SessionError

STATUS_NAMES = {
    rq.AdvanceStatus.ADVANCED: "advanced",
    rq.AdvanceStatus.PREDICTION_THRESHOLD: "stalled",
    rq.AdvanceStatus.NOT_SYNCHRONIZED: "not_synchronized",
    rq.AdvanceStatus.WAITING: "waiting",
    rq.AdvanceStatus.IDLE: "idle",
}
RTT_SAMPLE_EVERY = 30  # frames between RTT samples for the statistics
MAX_RTT_SAMPLES = 4096
MAX_EVENTS_KEPT = 256


def _event_json(event: rq.Event) -> dict[str, Any]:
    data = asdict(event)
    for key, value in data.items():
        if isinstance(value, int) and abs(value) > 2**52:
            data[key] = f"{value & 0xFFFFFFFFFFFFFFFF:016x}"  # 64-bit checksums do not fit a JS number
    data["type"] = type(event).__name__
    return data


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


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
        self._takeover_policy = takeover  # (policy, controller text) from config["p2p"]["takeover"], if any
        self.takeovers: dict[int, dict[str, Any]] = {}  # player -> what the uploads report about its takeover
        self._drop_frames: dict[int, int] = {}  # player -> first frame played without their own input
        self._drop_points: dict[int, tuple[int, int, int]] = {}  # player -> (that frame, its episode, its t)
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
        self.events: list[dict[str, Any]] = []
        self.desyncs: list[dict[str, Any]] = []
        self.bad_packets = 0
        self.rtt_samples: list[float] = []
        self.ticks = 0
        self._rendered_once = False
        # Rejoin (p2p_rejoin.py): players asking for a snapshot, the snapshots served (resent on a repeated
        # request), the gap steps of every episode, and, on a page that resumed, where it resumed.
        self._rejoin_requests: set[int] = set()
        self._may_return: set[int] = set()  # silent partners whose new page may rejoin (partner_away)
        self._served: dict[int, tuple[int, list[str]]] = {}
        self._snapshot_ids = 0
        self._assembler = ChunkAssembler()
        self.rejoined: dict[str, int] | None = None

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
        for player in self._rejoin_requests:
            if not self.session.player_disconnected(player):
                self.session.disconnect_player(player)  # its old page is gone: its inputs are final from the cut
        result = self.runner.tick(now_ms, {self.my_player: data}, packets, advance=delay_known and not self.done)
        committed = (not self.done and delay_known and not result.waited and fresh_target
                     and result.status in (rq.AdvanceStatus.ADVANCED, rq.AdvanceStatus.PREDICTION_THRESHOLD))
        if committed:
            self.trajectory.keys_by_frame[target] = keys  # a stalled frame keeps the first input given for it
        # Keys held while the first delay is measured belong to no frame (taps made while connecting do not act
        # on frame 0); keys of a wait at a later episode start are real inputs, carried like any other.
        before_play = not delay_known and self.session.current_frame == 0
        self._carry = [] if committed or self.done or before_play else keys
        events = [self._note_event(e) for e in result.events]
        for event in result.events:
            if isinstance(event, rq.Disconnected):
                self._drop_frames[event.player] = event.frame
                if self._drop_points.get(event.player, (event.frame,))[0] > event.frame:
                    del self._drop_points[event.player]  # survivors agreed on an earlier cut: place it again
            if isinstance(event, rq.Disconnected) and event.frame <= self.trajectory.collected:
                self.trajectory.reopen_from(event.frame)
        on_row = self._note_takeover_point if self._drop_frames or self.takeovers else None
        newly = self.trajectory.collect(self.session, min(self.session.confirmed_frame, self._last_kept_frame()),
                                        on_row)
        rejoins = self._serve_rejoins(now_ms) if self._rejoin_requests else {}
        render = None
        if result.frames_simulated or not self._rendered_once:
            render = self.render()
        if self.session.current_frame % RTT_SAMPLE_EVERY == 0 and result.status == rq.AdvanceStatus.ADVANCED:
            self._sample_rtt()
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

        The player is disconnected in the session (every input of theirs is final from then: the default input
        up to the takeover, then ignored), and the policy plays from :attr:`P2PSession.current_frame`, the first
        frame this peer has not simulated yet, so no frame it already showed changes. Repeating the call for the
        same player changes nothing.

        Returns:
            JSON ``{"ok": true, "frame": n}`` or ``{"ok": false, "error": ...}`` (no takeover policy, not a remote
            player, or another peer is still connected: then every remaining peer would compute the policy).
        """
        player = int(player)
        if player in self.takeovers:
            return json.dumps({"ok": True, "frame": self.takeovers[player]["frame"], "duplicate": True})
        if self._takeover_policy is None:
            return json.dumps({"ok": False, "error": "this scene has no partner_drop_policy"})
        if player == self.my_player or not 0 <= player < len(self.sim.player_agents):
            return json.dumps({"ok": False, "error": f"player {player} is not a remote player of this game"})
        others = [p for p in range(len(self.sim.player_agents)) if p not in (player, self.my_player)]
        if any(not self.session.player_disconnected(p) for p in others):
            return json.dumps({"ok": False, "error": "another peer is still connected; the takeover runs only "
                                                     "on the last peer"})
        self.session.disconnect_player(player)
        frame = self.session.current_frame
        policy, controller = self._takeover_policy
        agent = self.sim.player_agents[player]
        self.sim.take_over(agent, policy, frame, controller)
        self.takeovers[player] = {"player": player, "agent": agent, "controller": controller, "frame": frame,
                                  "episode": None, "t": None, "drop_frame": None, "drop_episode": None,
                                  "drop_t": None}
        return json.dumps({"ok": True, "frame": frame})

    def request_rejoin(self, player: int) -> str:
        """A player's new page (after a reload or a crash) asks this page for a snapshot.

        The snapshot is captured at the end of the next tick (its ``"rejoin"`` field has the chunks, by player);
        a repeated request for a snapshot already served answers with the same chunks at once.

        Returns:
            JSON ``{"ok": true, "pending": true}``, ``{"ok": true, "id": n, "chunks": [...]}`` or
            ``{"ok": false, "error": ...}`` (oneself, no such player, a player taken over, 3+ players).
        """
        player = int(player)
        if player == self.my_player or not 0 <= player < len(self.sim.player_agents):
            return json.dumps({"ok": False, "error": f"player {player} is not a remote player of this game"})
        if player in self.takeovers:
            return json.dumps({"ok": False, "error": f"player {player} is played by the takeover policy now"})
        if len(self.sim.player_agents) > 2:
            # The other survivors would have to reconnect the player at the same frame; not supported yet.
            return json.dumps({"ok": False, "error": "rejoin is supported in two-player games only"})
        served = self._served.get(player)
        if served is not None and not self.session.player_disconnected(player):
            return json.dumps({"ok": True, "id": served[0], "chunks": served[1]})
        self._served.pop(player, None)
        self._rejoin_requests.add(player)
        return json.dumps({"ok": True, "pending": True})

    def partner_away(self, player: int) -> None:
        """A silent partner may come back on a new page (rejoin is possible in this game): the rows this peer plays
        with the default input for them (the gap) are kept from now on, as they would be for its snapshot, so the
        rows never fall behind the session's input history while the new page loads."""
        if int(player) != self.my_player:
            self._may_return.add(int(player))

    def expect_rejoin(self, player: int) -> None:
        """The server says ``player`` is coming back on a new page: its old page is gone and a snapshot served
        before is stale.

        The player is disconnected in the session now (as a rejoin request would at its next tick), so this peer
        plays on with the default input for them while the new page loads, instead of stalling until the silence
        timeout when the old page's goodbye was lost.
        """
        player = int(player)
        self._served.pop(player, None)
        if player != self.my_player and 0 <= player < len(self.sim.player_agents) \
                and not self.session.player_disconnected(player):
            self.session.disconnect_player(player)

    def add_snapshot_chunk(self, snapshot_id: Any, index: Any, count: Any, text: Any, now_ms: float) -> str:
        """Takes one chunk of a snapshot for this (returning) page; loads it once complete.

        Returns:
            JSON ``{"ok": true, "loaded": false}`` while chunks are missing, ``{"ok": true, "loaded": true,
            "frame", "episode", "t"}`` once resumed (later chunks are ignored), or ``{"ok": false, "error"}``.
        """
        if self.rejoined is not None:
            return json.dumps({"ok": True, "loaded": True, "duplicate": True, **self.rejoined})
        try:
            whole = self._assembler.add(snapshot_id, index, count, text)
            if whole is None:
                return json.dumps({"ok": True, "loaded": False})
            place = resume_session(self, whole, float(now_ms))
        except SnapshotError as exc:
            return json.dumps({"ok": False, "error": str(exc)})
        self._resumed_at(place)
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
        if not 0 <= episode < len(self.seeds):
            raise IndexError(f"episode {episode} is outside 0..{len(self.seeds) - 1}")
        return json.dumps({
            "scene_id": self.scene_id,
            "episode": episode,
            "seed": self.seeds[episode],
            "bundle_hash": self.bundle_hash,
            "partial": bool(partial),
            "end_reason": end_reason,
            "error": None,
            "steps": self.episodes[episode],
            "pauses": [],
            **self._rejoin_fields(episode),
        }, separators=(",", ":"))

    def stats_json(self) -> str:
        """Session statistics for the upload's ``stats`` (the page adds connection and latency figures)."""
        stats = self.session.stats()
        rollbacks = int(stats["rollbacks"])  # type: ignore[call-overload]
        rollback_frames = int(stats["rollback_frames"])  # type: ignore[call-overload]
        return json.dumps({
            "rtt_ms": {"p50": _percentile(self.rtt_samples, 0.5), "p99": _percentile(self.rtt_samples, 0.99),
                       "samples": len(self.rtt_samples)},
            "rollbacks": {"count": rollbacks, "frames": rollback_frames,
                          "mean_depth": round(rollback_frames / rollbacks, 3) if rollbacks else 0.0,
                          "max_depth": stats["max_rollback_depth"]},
            "frames": stats["frames"],
            "confirmed_frame": stats["confirmed_frame"],
            "stalls": stats["stalls"],
            "not_synchronized": stats["not_synchronized"],
            "waited_frames": self.runner.waited_frames,
            "frames_simulated": self.runner.frames_simulated,
            "desyncs": self.desyncs,
            "row_mismatches": self.row_mismatches,
            "bad_packets": self.bad_packets,
            "input_delay": self.input_delay,
            "input_delays": self.delays.delays(),
            "input_delay_rule": None if self.delays.auto is None else self.delays.auto.to_config(),
            "input_delay_rtt_ms": [self.delays.rtt_used_ms.get(e) for e in range(len(self.seeds))],
            "delay_wait_ticks": self.delay_wait_ticks,
            "prediction_window": self.session.settings.max_prediction,
            "dropped_packets": stats["dropped"],
            "events": self.events[-MAX_EVENTS_KEPT:],
            "takeovers": [self._takeover_report(player) for player in self.takeovers],
            **({"rejoined": self.rejoined} if self.rejoined is not None else {}),
        }, separators=(",", ":"))

    # -- internals ----------------------------------------------------------------------------------------------
    def _note_event(self, event: rq.Event) -> dict[str, Any]:
        data = _event_json(event)
        if isinstance(event, rq.DesyncDetected | rq.EpisodeMismatch):
            self.desyncs.append(data)
        if len(self.events) < MAX_EVENTS_KEPT:
            self.events.append(data)
        return data

    def _sample_rtt(self) -> None:
        for peer in self.session.settings.remote_peers:
            rtt = self.session.network_stats(peer).rtt_ms
            if rtt is not None and len(self.rtt_samples) < MAX_RTT_SAMPLES:
                self.rtt_samples.append(rtt)

    def _serve_rejoins(self, now_ms: float) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for player in sorted(self._rejoin_requests):
            if not snapshot_ready(self, player):
                continue  # the cut's rollback or late inputs first; tried again next tick
            self._rejoin_requests.discard(player)
            try:
                text = serve_snapshot(self, player, now_ms)
            except (SnapshotError, SessionError) as exc:
                out[str(player)] = {"ok": False, "error": str(exc)}
                continue
            self._snapshot_ids += 1
            self._served[player] = (self._snapshot_ids, split_chunks(text))
            self._drop_frames.pop(player, None)  # a later drop of this player is a new one
            self._drop_points.pop(player, None)
            out[str(player)] = {"ok": True, "id": self._snapshot_ids, "chunks": self._served[player][1]}
        return out

    def _resumed_at(self, place: dict[str, int]) -> None:
        """This page resumed from a snapshot: earlier episodes were played (and uploaded) by its old page."""
        self.rejoined = place
        self._carry = []
        self.trajectory.resume_at(place["frame"])

    def _rejoin_fields(self, episode: int) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        gaps = self.gaps.of(episode)
        if gaps:
            fields["gaps"] = gaps
        if self.rejoined is not None and episode == self.rejoined["episode"] and self.rejoined["t"] > 0:
            fields["first_t"] = self.rejoined["t"]  # the old page played the steps before
        return fields

    def _takeover_report(self, player: int) -> dict[str, Any]:
        report = dict(self.takeovers[player])
        if player in self._drop_points:
            report.update(zip(("drop_frame", "drop_episode", "drop_t"), self._drop_points[player], strict=True))
        return report

    def _note_takeover_point(self, frame: int, episode: int, t: int, controllers: Mapping[str, str]) -> None:
        """Places each takeover's first frame, and the frame the partner's own inputs stopped, in (episode, t)."""
        for player, drop in self._drop_frames.items():
            if player not in self._drop_points and frame >= drop:
                self._drop_points[player] = (drop, episode, t)
        for record in self.takeovers.values():
            if record["t"] is None and record["agent"] in controllers:
                record.update(episode=episode, t=t)

    def _last_kept_frame(self) -> int:
        """The last frame whose row may be kept: the one before the earliest drop of a partner not taken over.

        From a drop frame on the session plays the silent partner with the default input, while the partner's
        own page may have confirmed those frames with its real inputs; rows kept there would disagree with its
        upload (the page ends the game as ``partner_left`` on the drop, ``p2p_game.js``). A takeover keeps them
        (its uploads report the drop point and the server's parity check stops there), and so does a rejoin
        request or a partner who may come back (:meth:`partner_away`): the gap rows are collected before the
        snapshot is served (``p2p_rejoin.py``) and marked as gaps in the uploads.
        """
        cuts = [frame - 1 for player, frame in self._drop_frames.items()
                if player not in self.takeovers and player not in self._rejoin_requests
                and player not in self._may_return]
        return min(cuts, default=self.session.confirmed_frame)
