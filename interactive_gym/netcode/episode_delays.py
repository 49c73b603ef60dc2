"""Which input delay each episode of a p2p game is played with, and how every peer comes to use the same one.

Agreement: player 0 (the *leader*) alone decides, from the round-trip times its session measured, and announces
``(episode, delay)`` in DELAY packets; the session repeats its latest announcements with every ping, so loss only
delays them. Every peer, the leader included, switches to the announced delay when its simulation starts that
episode, and waits (plays no new frame, keeps exchanging packets) if the announcement has not arrived yet. An
announcement is final: the first value for an episode wins, a different one is dropped and counted. So no peer
ever plays an episode with a delay it derived from its own, different RTT estimate.

Even a disagreement could not desync the game: a peer's delay only decides which frame its own inputs land on,
and every frame still gets exactly one input per player (see :meth:`P2PSession.set_input_delay`). What agreement
buys is the experimental condition: every participant of an episode has the same input latency, and the value
stored with the episode is the one each of them played with.

Timing: episode 0's delay is decided before the first frame, once the leader has :data:`MIN_SAMPLES` RTT samples
of every peer, or after :data:`MEASURE_TIMEOUT_MS` with at least one sample of every peer. A peer with no sample
yet is waited for up to :data:`MEASURE_GIVE_UP_MS`: on a busy machine the first pongs can take seconds, and
deciding without them would take the rule's largest delay (200 ms at 30 fps) for the whole episode; only after
that does the rule decide on what it has (none: its largest delay). A later episode's
delay is decided :data:`ANNOUNCE_LEAD_S` before the previous episode's last possible step (from the RTT of that
episode), so it normally arrives long before it is needed; an episode that terminates earlier makes the leader
decide at its start, and a non-leader may then wait about a one-way latency.

If the leader is gone (disconnected), the other peers keep the delay they last used.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from statistics import median
from typing import Protocol

from .input_delay import AutoInputDelay

LEADER = 0
MIN_SAMPLES = 3
MEASURE_TIMEOUT_MS = 2000.0
MEASURE_GIVE_UP_MS = 10_000.0
ANNOUNCE_LEAD_S = 1.0
MAX_ANNOUNCED = 1024  # episodes; GymScene allows at most 1000


class DelayLedger:
    """The leader's announcements as this peer knows them: episode -> delay, first value final, bounded."""

    def __init__(self, max_delay: int) -> None:
        self.max_delay = max_delay
        self._delays: dict[int, int] = {}
        self._order: list[int] = []

    def record(self, episode: int, delay: int) -> bool:
        """Records an announcement; False (nothing changes) for a conflicting, out-of-range or excess one."""
        if not 0 <= delay <= self.max_delay or episode < 0:
            return False
        known = self._delays.get(episode)
        if known is not None:
            return known == delay
        if len(self._delays) >= MAX_ANNOUNCED:
            return False
        self._delays[episode] = delay
        self._order.append(episode)
        return True

    def get(self, episode: int) -> int | None:
        """The announced delay of ``episode``, or ``None``."""
        return self._delays.get(episode)

    def all(self) -> list[tuple[int, int]]:
        """Every announcement recorded, in the order recorded (what a rejoin snapshot carries)."""
        return [(e, self._delays[e]) for e in self._order]

    def latest(self, count: int = 2) -> list[tuple[int, int]]:
        """The last ``count`` announcements recorded, oldest first (what the leader repeats)."""
        return [(e, self._delays[e]) for e in self._order[-count:]]


class DelaySession(Protocol):
    """What :class:`EpisodeDelays` needs from a :class:`~interactive_gym.netcode.p2p_session.P2PSession`."""

    @property
    def input_delay(self) -> int: ...

    def set_input_delay(self, delay: int) -> None: ...

    def announce_input_delay(self, episode: int, delay: int) -> None: ...

    def announced_input_delay(self, episode: int) -> int | None: ...

    def recent_rtt_by_peer(self) -> dict[Hashable, tuple[float, ...]]: ...

    def player_disconnected(self, player: int) -> bool: ...


class EpisodeDelays:
    """Per peer: the delay of each episode, fixed or ``auto``, applied when the simulation starts the episode.

    Args:
        auto: The auto settings, or ``None`` for a fixed delay (the session's initial ``input_delay``).
        leader: Whether this peer is player 0 (decides and announces).
        episodes: Episodes in the game.
        max_steps: Steps after which an episode is truncated.
        fps: Frames per second.
        prediction_window: The session's ``max_prediction``.
    """

    def __init__(self, auto: AutoInputDelay | None, *, leader: bool, episodes: int, max_steps: int, fps: float,
                 prediction_window: int) -> None:
        self.auto = auto
        self.leader = leader
        self.episodes = episodes
        self.max_steps = max_steps
        self.fps = fps
        self.prediction_window = prediction_window
        self.used: dict[int, int] = {}  # episode -> the delay this peer switched to at its start
        self.rtt_used_ms: dict[int, float | None] = {}  # leader: episode -> the RTT estimate it decided from
        self._lead_steps = max(1, math.ceil(ANNOUNCE_LEAD_S * fps))
        self._measure_from: float | None = None

    def ready(self, session: DelaySession, now_ms: float, episode: int, t: int, finished: bool) -> bool:
        """Before a frame: switches the delay at an episode's start; False means wait (do not advance).

        Args:
            session: This peer's session.
            now_ms: The caller's clock.
            episode: The episode of the next frame to simulate (the simulation's current, predicted one).
            t: Its step (0 at the episode's first frame).
            finished: Whether every episode has been played (nothing left to choose).
        """
        if finished or episode >= self.episodes:
            return True
        if self.auto is not None and self.leader:
            self._decide_ahead(session, now_ms, episode, t)
        if episode in self.used:
            return True
        delay = self._delay_of(session, episode)
        if delay is None:
            return False
        if delay != session.input_delay:
            session.set_input_delay(delay)
        self.used[episode] = delay
        return True

    def for_snapshot(self, episode: int) -> int | None:
        """The delay a rejoin snapshot taken in ``episode`` carries: with ``auto`` the one every peer switched to
        for it (``None`` if not switched yet), with a fixed delay ``None`` (the settings' delay applies)."""
        return self.used.get(episode) if self.auto is not None else None

    def resumed_in(self, episode: int, delay: int) -> None:
        """This page resumed mid-``episode`` from a snapshot whose session already plays it with ``delay``.

        The episode counts as switched, so :meth:`ready` does not switch it again mid-episode.
        """
        self.used[episode] = delay

    def delays(self) -> list[int | None]:
        """The delay each episode was (or is being) played with on this peer; ``None`` before it started."""
        return [self.used.get(e) for e in range(self.episodes)]

    # -- internals ----------------------------------------------------------------------------------------------
    def _delay_of(self, session: DelaySession, episode: int) -> int | None:
        if self.auto is None:
            return session.input_delay
        delay = session.announced_input_delay(episode)
        if delay is None and not self.leader and session.player_disconnected(LEADER):
            return session.input_delay  # nobody decides any more: keep the delay in use
        return delay

    def _decide_ahead(self, session: DelaySession, now_ms: float, episode: int, t: int) -> None:
        if session.announced_input_delay(episode) is None:
            if episode == 0 and not self._measured(session, now_ms):
                return
            self._announce(session, episode)
        following = episode + 1
        if (following < self.episodes and t >= self.max_steps - self._lead_steps
                and session.announced_input_delay(following) is None):
            self._announce(session, following)

    def _measured(self, session: DelaySession, now_ms: float) -> bool:
        if self._measure_from is None:
            self._measure_from = now_ms
        waited = now_ms - self._measure_from
        samples = session.recent_rtt_by_peer().values()
        if waited >= MEASURE_GIVE_UP_MS:
            return True
        if waited >= MEASURE_TIMEOUT_MS:
            return all(len(s) >= 1 for s in samples)
        return all(len(s) >= MIN_SAMPLES for s in samples)

    def _announce(self, session: DelaySession, episode: int) -> None:
        assert self.auto is not None
        samples = worst_link(session.recent_rtt_by_peer().values())
        delay = self.auto.choose(samples, self.fps, self.prediction_window)
        self.rtt_used_ms[episode] = round(median(samples), 1) if samples else None
        session.announce_input_delay(episode, delay)


def worst_link(links: Iterable[tuple[float, ...]]) -> tuple[float, ...]:
    """The samples of the link with the highest median RTT (empty when no link has any)."""
    best: tuple[float, ...] = ()
    best_median = -1.0
    for samples in links:
        if samples and median(samples) > best_median:
            best, best_median = tuple(samples), median(samples)
    return best
