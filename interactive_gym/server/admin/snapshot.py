"""What the dashboard shows, built from the experiment's live state. Pure: no I/O, times passed in.

:func:`build_snapshot` reads the participant registry, the waiting rooms and the running games of an
:class:`~interactive_gym.server.experiment.Experiment` (duck-typed, so tests can pass fakes). What only the
database knows (errors with their tracebacks, desync verdicts, the p2p connection figures uploaded with each
episode) is kept by :class:`StudyTally`, fed with the rows added since the last push (never a re-read of the
whole database). :class:`History` keeps the counts over time for the plots, bounded however long a study runs.

Participant data reaches the page as plain values only; the page renders every one of them as text.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ERROR_KINDS = frozenset({"game_error", "game_start_failed"})
MAX_RECENT_ERRORS = 20
MAX_ERROR_TEXT = 4000
MAX_TRACKED_GAMES = 1000  # p2p figures of this many recent games are kept (older ones are long over)
HISTORY_SAMPLES = 720
HISTORY_INTERVAL_S = 10.0
SERIES = ("completed", "excluded", "dropped", "errors")
RECENT_PARTICIPANTS = 30


@dataclass
class StudyTally:
    """What the dashboard learns from new database rows (events and uploaded p2p episodes).

    Attributes:
        last_event_id: The highest ``events.id`` applied (the next read starts after it).
        last_episode_id: The highest ``episodes.id`` applied.
        errors: The most recent errors, newest last.
        error_count: Every error event applied since start.
        desyncs: Episodes whose peers disagreed, per p2p game.
        p2p: The latest uploaded network figures per p2p game.
    """

    last_event_id: int = 0
    last_episode_id: int = 0
    errors: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_RECENT_ERRORS))
    error_count: int = 0
    desyncs: Counter[str] = field(default_factory=Counter)
    p2p: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add_events(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Applies event rows (``id, ts, participant_id, game_id, scene_id, kind, data``), in id order."""
        for row in rows:
            self.last_event_id = max(self.last_event_id, int(row["id"]))
            kind = row["kind"]
            data = _mapping(row.get("data"))
            if kind in ERROR_KINDS:
                self.error_count += 1
                self.errors.append({"ts": row["ts"], "kind": kind, "participant_id": row.get("participant_id"),
                                    "game_id": row.get("game_id"), "scene_id": row.get("scene_id"),
                                    "text": str(data.get("error") or "")[-MAX_ERROR_TEXT:]})
            elif kind == "p2p_parity" and data.get("agree") is False and row.get("game_id"):
                self._bounded_games()
                self.desyncs[str(row["game_id"])] += 1

    def add_episodes(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Applies episode rows (``id, game_id, mode, meta``): keeps each p2p game's latest network figures."""
        for row in rows:
            self.last_episode_id = max(self.last_episode_id, int(row["id"]))
            meta = _mapping(row.get("meta"))
            network = meta.get("network")
            if row.get("mode") == "p2p" and isinstance(network, dict):
                self._bounded_games()
                self.p2p[str(row["game_id"])] = p2p_figures(network)

    def _bounded_games(self) -> None:
        if len(self.p2p) >= MAX_TRACKED_GAMES:
            for game_id in list(self.p2p)[: MAX_TRACKED_GAMES // 2]:
                del self.p2p[game_id]
        if len(self.desyncs) >= MAX_TRACKED_GAMES:
            for game_id in list(self.desyncs)[: MAX_TRACKED_GAMES // 2]:
                del self.desyncs[game_id]


def p2p_figures(network: Mapping[str, Any]) -> dict[str, Any]:
    """The dashboard's figures from a p2p upload's ``stats``: connection type, RTT, rollbacks, desyncs.

    The connection is the type the upload stores for the game (its worst link): ``server_relay`` (inputs went
    through the server: no DataChannel ever connected) is shown as ``server fallback``; the RTT is the rollback
    protocol's own round trip (``netcode_rtt_ms``), over whichever path carried the inputs.
    """
    connection = _mapping(network.get("connection"))
    kind = {"server_relay": "server fallback", "relay": "relay", "direct": "direct"}.get(
        str(connection.get("type")))
    rtt = _mapping(network.get("netcode_rtt_ms"))
    return {"connection": kind, "rtt_ms": _number(rtt.get("p50", rtt.get("mean"))),
            "rollbacks": _number(network.get("rollbacks")), "desyncs": _number(network.get("desyncs"))}


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class History:
    """Counts over time for the plots: one sample per interval, at most ``limit`` samples.

    When full, every other sample is dropped and the interval doubles, so a day-long study still fits.
    """

    def __init__(self, limit: int = HISTORY_SAMPLES, interval_s: float = HISTORY_INTERVAL_S) -> None:
        if limit < 2:
            raise ValueError("limit must be at least 2")
        self.limit = limit
        self.interval_s = interval_s
        self.samples: list[tuple[float, ...]] = []
        self.version = 0  # bumped on every change, so the live push sends the series only when they changed

    def add(self, now: float, counts: Mapping[str, int]) -> bool:
        """Adds a sample if the interval has passed since the last one; True when one was added."""
        if self.samples and now - self.samples[-1][0] < self.interval_s:
            return False
        if len(self.samples) >= self.limit:
            self.samples = self.samples[::2]
            self.interval_s *= 2
        self.samples.append((now, *(float(counts.get(name, 0)) for name in SERIES)))
        self.version += 1
        return True

    def columns(self) -> dict[str, list[float]]:
        """``{"t": [...], "completed": [...], ...}`` (what the chart library plots)."""
        out: dict[str, list[float]] = {"t": [s[0] for s in self.samples]}
        for i, name in enumerate(SERIES, start=1):
            out[name] = [s[i] for s in self.samples]
        return out


def participant_counts(registry: Any) -> tuple[dict[str, dict[str, int]], Counter[str]]:
    """``({scene_id: {status: n, "connected": n}}, {status: n})`` over every known participant."""
    by_scene: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for participant in registry.all():
        status = str(participant.status.value)
        counts = by_scene.setdefault(participant.scene.scene_id, Counter())
        counts[status] += 1
        if participant.connected:
            counts["connected"] += 1
        totals[status] += 1
    return {scene: dict(c) for scene, c in by_scene.items()}, totals


def recent_participants(registry: Any, limit: int = RECENT_PARTICIPANTS) -> list[dict[str, Any]]:
    """The participants who arrived last (newest first): where they are, their status, connected or not."""
    everyone = registry.all()
    return [{"participant_id": p.participant_id, "scene_id": p.scene.scene_id, "scene_index": p.index,
             "status": str(p.status.value), "connected": p.connected} for p in reversed(everyone[-limit:])]


def waiting_rooms(mode: str, rooms: Any, now: float) -> list[dict[str, Any]]:
    """Every non-empty waiting room of one mode (a ``RoomSet``), with each waiter's wait so far."""
    out = []
    for scene_id, room in rooms.rooms.items():
        waiters = [room.waiter(pid) for pid in room.waiting()]
        if not waiters:
            continue
        out.append({"mode": mode, "scene_id": scene_id, "needed": room.group_size, "timeout_s": room.timeout_s,
                    "waiters": [{"participant_id": w.participant_id, "waited_s": round(max(0.0, now - w.joined_at), 1),
                                 "present": w.present} for w in waiters if w is not None]})
    return out


def server_games(runners: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Server-mode games: players, episode and step, and the ticks' lateness."""
    out = []
    for game_id, runner in runners.items():
        game = runner.game
        out.append({"game_id": game_id, "mode": "server", "scene_id": game.scene.scene_id,
                    "players": sorted(game.humans.values()), "episode": max(game.episode, 0), "t": game.t,
                    "connection": "server", "rtt_ms": None, "rollbacks": None, "desyncs": None,
                    "lateness": runner.stats.summary()})
    return out


def p2p_games(games: Mapping[str, Any], tally: StudyTally) -> list[dict[str, Any]]:
    """p2p games: players and the figures of their latest upload (connection, RTT, rollbacks, desyncs)."""
    out = []
    for game_id, game in games.items():
        figures = tally.p2p.get(game_id, {})
        out.append({"game_id": game_id, "mode": "p2p", "scene_id": game.scene_id,
                    "players": [game.players[p] for p in sorted(game.players)],
                    "connected": sum(1 for sid in game.sids.values() if sid), "episode": None, "t": None,
                    "connection": figures.get("connection"), "rtt_ms": figures.get("rtt_ms"),
                    "rollbacks": figures.get("rollbacks"),
                    "desyncs": tally.desyncs.get(game_id, 0), "lateness": None})
    return out


def outcome_counts(totals: Mapping[str, int], tally: StudyTally) -> dict[str, int]:
    """What the plots show: completions, exclusions (timed out or ended by an error), drops, error events."""
    return {"completed": int(totals.get("completed", 0)),
            "excluded": int(totals.get("timed_out", 0)) + int(totals.get("errored", 0)),
            "dropped": int(totals.get("dropped", 0)), "errors": tally.error_count}


def build_snapshot(experiment: Any, tally: StudyTally, history: History, *, now: float, monotonic: float,
                   enrolment_open: bool, unauthorized: int, with_history: bool) -> dict[str, Any]:
    """The dashboard's live view of ``experiment`` (also adds this moment to ``history`` when due).

    Args:
        experiment: The Experiment (registry, server_mode, p2p_mode).
        tally: What the database added.
        history: The counts over time (updated here).
        now: Wall clock (``time.time``), the plots' time axis.
        monotonic: The modes' monotonic clock (waiting times).
        enrolment_open: Whether new participants are accepted.
        unauthorized: Refused dashboard requests so far.
        with_history: Include the plot series (when they changed, or a dashboard just connected).
    """
    by_scene, totals = participant_counts(experiment.registry)
    counts = outcome_counts(totals, tally)
    history.add(now, counts)
    view: dict[str, Any] = {
        "now": now,
        "enrolment_open": enrolment_open,
        "participants": {"total": len(experiment.registry), "by_status": dict(totals), "by_scene": by_scene,
                         "recent": recent_participants(experiment.registry)},
        "waiting": (waiting_rooms("server", experiment.server_mode.rooms, monotonic)
                    + waiting_rooms("p2p", experiment.p2p_mode.rooms, monotonic)),
        "games": server_games(experiment.server_mode.runners)
        + p2p_games(experiment.p2p_mode.coordinator.games, tally),
        "counts": counts,
        "errors": list(tally.errors),
        "unauthorized": unauthorized,
        "history_version": history.version,
    }
    if with_history:
        view["history"] = history.columns()
    return view
