"""What a p2p page's Python half reports: the session's events, RTT samples, upload payloads and statistics.

:class:`SessionLog` keeps the events and round-trip samples of one host (bounded); :func:`episode_payload_json`
and :func:`stats_json` turn a :class:`~interactive_gym.browser.p2p_host.P2PGameHost` into the JSON text the page
uploads (the browser-mode payload format, and its ``stats``).

Pure Python (runs in Pyodide and in CPython tests).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from interactive_gym.netcode import requests as rq
from interactive_gym.netcode.p2p_session import P2PSession

if TYPE_CHECKING:
    from interactive_gym.browser.p2p_host import P2PGameHost

RTT_SAMPLE_EVERY = 30  # frames between RTT samples for the statistics
MAX_RTT_SAMPLES = 4096
MAX_EVENTS_KEPT = 256


def event_json(event: rq.Event) -> dict[str, Any]:
    """A session event as JSON-ready data, with its class name as ``"type"``."""
    data = asdict(event)
    for key, value in data.items():
        if isinstance(value, int) and abs(value) > 2**52:
            data[key] = f"{value & 0xFFFFFFFFFFFFFFFF:016x}"  # 64-bit checksums do not fit a JS number
    data["type"] = type(event).__name__
    return data


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of ``values`` (rounded to 0.01), or ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[index], 2)


class SessionLog:
    """The events (the first :data:`MAX_EVENTS_KEPT`), desyncs and RTT samples of one host's session."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.desyncs: list[dict[str, Any]] = []
        self.rtt_samples: list[float] = []

    def note_event(self, event: rq.Event) -> dict[str, Any]:
        """Keeps ``event`` (desyncs always, others while there is room) and returns it as JSON-ready data."""
        data = event_json(event)
        if isinstance(event, rq.DesyncDetected | rq.EpisodeMismatch):
            self.desyncs.append(data)
        if len(self.events) < MAX_EVENTS_KEPT:
            self.events.append(data)
        return data

    def sample_rtt(self, session: P2PSession, status: rq.AdvanceStatus) -> None:
        """Every :data:`RTT_SAMPLE_EVERY` advanced frames, one RTT sample per remote peer (bounded)."""
        if session.current_frame % RTT_SAMPLE_EVERY != 0 or status != rq.AdvanceStatus.ADVANCED:
            return
        for peer in session.settings.remote_peers:
            rtt = session.network_stats(peer).rtt_ms
            if rtt is not None and len(self.rtt_samples) < MAX_RTT_SAMPLES:
                self.rtt_samples.append(rtt)


def episode_payload_json(host: P2PGameHost, episode: int, partial: bool, end_reason: str) -> str:
    """The upload of ``episode`` (confirmed rows only) in the browser-mode payload format, as JSON text.

    Raises:
        IndexError: for an episode outside the game.
    """
    if not 0 <= episode < len(host.seeds):
        raise IndexError(f"episode {episode} is outside 0..{len(host.seeds) - 1}")
    return json.dumps({
        "scene_id": host.scene_id,
        "episode": episode,
        "seed": host.seeds[episode],
        "bundle_hash": host.bundle_hash,
        "partial": bool(partial),
        "end_reason": end_reason,
        "error": None,
        "steps": host.episodes[episode],
        "pauses": [],
        **host.rejoins.upload_fields(host.gaps, episode),
    }, separators=(",", ":"))


def stats_json(host: P2PGameHost) -> str:
    """Session statistics for the upload's ``stats`` (the page adds connection and latency figures)."""
    stats = host.session.stats()
    rollbacks = int(stats["rollbacks"])  # type: ignore[call-overload]
    rollback_frames = int(stats["rollback_frames"])  # type: ignore[call-overload]
    rtt_samples = host.log.rtt_samples
    delays = host.delays
    return json.dumps({
        "rtt_ms": {"p50": percentile(rtt_samples, 0.5), "p99": percentile(rtt_samples, 0.99),
                   "samples": len(rtt_samples)},
        "rollbacks": {"count": rollbacks, "frames": rollback_frames,
                      "mean_depth": round(rollback_frames / rollbacks, 3) if rollbacks else 0.0,
                      "max_depth": stats["max_rollback_depth"]},
        "frames": stats["frames"],
        "confirmed_frame": stats["confirmed_frame"],
        "stalls": stats["stalls"],
        "not_synchronized": stats["not_synchronized"],
        "waited_frames": host.runner.waited_frames,
        "frames_simulated": host.runner.frames_simulated,
        "desyncs": host.log.desyncs,
        "row_mismatches": host.row_mismatches,
        "bad_packets": host.bad_packets,
        "input_delay": host.input_delay,
        "input_delays": delays.delays(),
        "input_delay_rule": None if delays.auto is None else delays.auto.to_config(),
        "input_delay_rtt_ms": [delays.rtt_used_ms.get(e) for e in range(len(host.seeds))],
        "delay_wait_ticks": host.delay_wait_ticks,
        "prediction_window": host.session.settings.max_prediction,
        "dropped_packets": stats["dropped"],
        "events": host.log.events[-MAX_EVENTS_KEPT:],
        "takeovers": host.partner_drops.reports(),
        **({"rejoined": host.rejoined} if host.rejoined is not None else {}),
    }, separators=(",", ":"))
