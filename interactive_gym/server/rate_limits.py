"""Per-client rate limits for Socket.IO events: one token bucket per (client, event class). Pure: no I/O.

Every event a page may send belongs to a class in a declared table; each class has a steady rate and a burst.
A client's bucket for a class starts full (``burst`` tokens), refills at ``rate`` tokens per second up to
``burst``, and each event takes one token. An event that finds the bucket empty is refused (and counted);
refusing costs nothing more than the arithmetic here, so a flooding page cannot buy CPU or memory with it.

The figures in :data:`EVENT_CLASSES` are chosen so that a real page never reaches them (the reason is written
next to each); they bound a hostile or broken page, not a participant. The clock is injected (``now`` in
seconds, any monotonic origin) so tests step it by hand.

Usage (the event dispatcher; ``time.monotonic`` as the clock)::

    limiter = RateLimiter(EVENT_CLASSES)
    if not limiter.allow(sid, event, time.monotonic()):
        ...  # drop it; answer an ack-bearing event with a retryable "rate_limited" error
    limiter.forget(sid)  # on disconnect
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_CLASS = "other"


@dataclass(frozen=True)
class EventClass:
    """The limit of one class of events.

    Attributes:
        rate: Tokens added per second (the steady rate a client may keep up forever).
        burst: Bucket size (how many events may arrive at once after a quiet spell).
        events: The Socket.IO event names in this class.
        why: What a real page sends, and so why these figures are never reached by one.
    """

    rate: float
    burst: int
    events: tuple[str, ...]
    why: str

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be positive, got {self.rate!r}")
        if not (isinstance(self.burst, int) and self.burst >= 1):
            raise ValueError(f"burst must be an integer of at least 1, got {self.burst!r}")


EVENT_CLASSES: dict[str, EventClass] = {
    "keys": EventClass(60, 120, ("keys",), why=(
        "the page sends the held keys on every change (auto-repeat is filtered), one event per press or "
        "release: even mashing four keys stays under ~20 per second")),
    "relay": EventClass(500, 1000, ("p2p_input_relay",), why=(
        "while the DataChannel is down every input packet goes through the server: one per frame (at most "
        "60 fps) per peer (up to 3), a catch-up tick may send a few per peer, plus control packets; "
        "each is at most 4 KiB (MAX_RELAY_BYTES)")),
    "signaling": EventClass(50, 200, ("webrtc_signal",), why=(
        "an offer, an answer and the ICE candidates per peer: a host with several interfaces and TURN "
        "produces a burst of tens of candidates per peer within a second, repeated on an ICE restart")),
    "uploads": EventClass(1, 20, ("browser_episode", "p2p_episode"), why=(
        "one upload per episode, retried with backoff from 0.5 s; a new page resends what an earlier one "
        "left unacknowledged, all at once (a handful). Refusals must be answered as retryable: the page "
        "then backs off and nothing is lost")),
    "flow": EventClass(5, 20, ("advance", "join_game", "p2p_join", "p2p_game_end", "screening_report"), why=(
        "a click on Continue or a scene start; a reconnect rejoins once; one screening report per page")),
    "presence": EventClass(10, 30, ("visibility", "activity"), why=(
        "one per tab switch; switching tabs as fast as a person can is a few per second; activity is sent "
        "at most every 2 s")),
    "ping": EventClass(5, 20, ("ping",), why=(
        "a round-trip measure before matching players: a few samples in a row, then nothing")),
    DEFAULT_CLASS: EventClass(10, 20, (), why=(
        "any event not listed above: the page sends nothing else, so a low limit costs nobody")),
}


def class_of_events(table: Mapping[str, EventClass]) -> dict[str, str]:
    """Maps each event name to its class name; raises ValueError if an event is listed in two classes."""
    owner: dict[str, str] = {}
    for name, spec in table.items():
        for event in spec.events:
            if event in owner:
                raise ValueError(f"event {event!r} is in both class {owner[event]!r} and class {name!r}")
            owner[event] = name
    return owner


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets per (client, event class); state is per instance (the app owns one).

    Args:
        table: The event classes; must contain :data:`DEFAULT_CLASS`, which takes every unlisted event.
        clock: Only for :meth:`allow_now`; :meth:`allow` takes the time as an argument.

    Attributes:
        refusals: Refused events per class name since start.
    """

    def __init__(self, table: Mapping[str, EventClass] = EVENT_CLASSES,
                 clock: Callable[[], float] | None = None) -> None:
        if DEFAULT_CLASS not in table:
            raise ValueError(f"the rate limit table needs a {DEFAULT_CLASS!r} class for unlisted events")
        self._table = dict(table)
        self._class_of = class_of_events(table)
        self._clock = clock
        self._buckets: dict[str, dict[str, _Bucket]] = {}
        self.refusals: Counter[str] = Counter()

    def class_of(self, event: str) -> str:
        """The class name an event is limited under."""
        return self._class_of.get(event, DEFAULT_CLASS)

    def allow(self, sid: str, event: str, now: float) -> bool:
        """Takes one token from ``sid``'s bucket for ``event``'s class; False (and counted) if there is none.

        ``now`` must not go backwards for a client; if it does (a clock change), no tokens are added.
        """
        name = self.class_of(event)
        spec = self._table[name]
        buckets = self._buckets.setdefault(sid, {})
        bucket = buckets.get(name)
        if bucket is None:
            bucket = buckets[name] = _Bucket(tokens=float(spec.burst), updated=now)
        elif now > bucket.updated:
            bucket.tokens = min(float(spec.burst), bucket.tokens + (now - bucket.updated) * spec.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refusals[name] += 1
        return False

    def allow_now(self, sid: str, event: str) -> bool:
        """:meth:`allow` at the injected clock's time."""
        if self._clock is None:
            raise RuntimeError("RateLimiter.allow_now needs a clock (pass clock=time.monotonic)")
        return self.allow(sid, event, self._clock())

    def forget(self, sid: str) -> None:
        """Drops a client's buckets (call on disconnect, so the state stays as large as the live clients)."""
        self._buckets.pop(sid, None)

    def tracked_clients(self) -> int:
        """How many clients have buckets (for tests and the admin page)."""
        return len(self._buckets)
