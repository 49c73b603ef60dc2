"""RateLimiter: token buckets per (client, event class), driven by a hand-stepped clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.server.rate_limits import (
    DEFAULT_CLASS,
    EVENT_CLASSES,
    EventClass,
    RateLimiter,
    class_of_events,
)
from interactive_gym.server.schemas import EVENT_SCHEMAS

TABLE = {
    "fast": EventClass(10, 5, ("keys",), why="test"),
    "slow": EventClass(0.5, 2, ("advance", "join_game"), why="test"),
    DEFAULT_CLASS: EventClass(1, 1, (), why="test"),
}


def burst(limiter: RateLimiter, sid: str, event: str, now: float, count: int) -> list[bool]:
    return [limiter.allow(sid, event, now) for _ in range(count)]


def test_a_full_bucket_allows_exactly_its_burst_then_refuses() -> None:
    limiter = RateLimiter(TABLE)
    assert burst(limiter, "a", "keys", 0.0, 7) == [True] * 5 + [False] * 2
    assert limiter.refusals == {"fast": 2}


def test_tokens_come_back_at_the_class_rate() -> None:
    limiter = RateLimiter(TABLE)
    burst(limiter, "a", "keys", 0.0, 5)
    assert limiter.allow("a", "keys", 0.05) is False  # half a token
    assert limiter.allow("a", "keys", 0.1) is True  # one token after 1/rate seconds (the half is kept)
    assert limiter.allow("a", "keys", 0.1) is False
    assert burst(limiter, "a", "keys", 0.35, 3) == [True, True, False]  # 2.5 tokens accrued


def test_refill_stops_at_the_burst() -> None:
    limiter = RateLimiter(TABLE)
    burst(limiter, "a", "keys", 0.0, 5)
    assert burst(limiter, "a", "keys", 3600.0, 6) == [True] * 5 + [False]


def test_classes_share_a_bucket_and_are_independent_of_each_other() -> None:
    limiter = RateLimiter(TABLE)
    assert limiter.allow("a", "advance", 0.0) and limiter.allow("a", "join_game", 0.0)
    assert limiter.allow("a", "join_game", 0.0) is False  # same class "slow": its 2 tokens are spent
    assert burst(limiter, "a", "keys", 0.0, 5) == [True] * 5  # "fast" untouched
    assert limiter.refusals == {"slow": 1}


def test_clients_are_independent() -> None:
    limiter = RateLimiter(TABLE)
    burst(limiter, "a", "keys", 0.0, 10)
    assert burst(limiter, "b", "keys", 0.0, 5) == [True] * 5


def test_unlisted_events_use_the_default_class() -> None:
    limiter = RateLimiter(TABLE)
    assert limiter.class_of("made_up") == DEFAULT_CLASS
    assert limiter.allow("a", "made_up", 0.0) is True
    assert limiter.allow("a", "another_made_up", 0.0) is False  # one shared default bucket
    assert limiter.refusals == {DEFAULT_CLASS: 1}


def test_a_clock_going_backwards_adds_nothing() -> None:
    limiter = RateLimiter(TABLE)
    burst(limiter, "a", "keys", 10.0, 5)
    assert limiter.allow("a", "keys", 5.0) is False
    assert limiter.allow("a", "keys", 10.25) is True  # refill counts from the latest time seen (10.0)


def test_forget_drops_the_state_and_a_returning_client_starts_full() -> None:
    limiter = RateLimiter(TABLE)
    burst(limiter, "a", "keys", 0.0, 5)
    burst(limiter, "b", "keys", 0.0, 1)
    assert limiter.tracked_clients() == 2
    limiter.forget("a")
    limiter.forget("never-seen")
    assert limiter.tracked_clients() == 1
    assert burst(limiter, "a", "keys", 0.0, 5) == [True] * 5


def test_allow_now_reads_the_injected_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(TABLE, clock=lambda: now[0])
    assert [limiter.allow_now("a", "advance") for _ in range(3)] == [True, True, False]
    now[0] = 2.0
    assert limiter.allow_now("a", "advance") is True
    with pytest.raises(RuntimeError, match="needs a clock"):
        RateLimiter(TABLE).allow_now("a", "keys")


def test_table_mistakes_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="needs a 'other' class"):
        RateLimiter({"fast": TABLE["fast"]})
    with pytest.raises(ValueError, match="'keys' is in both class 'a' and class 'b'"):
        class_of_events({"a": EventClass(1, 1, ("keys",), "x"), "b": EventClass(1, 1, ("keys",), "x")})
    with pytest.raises(ValueError, match="rate must be positive"):
        EventClass(0, 1, (), "x")
    with pytest.raises(ValueError, match="burst must be an integer"):
        EventClass(1, 0, (), "x")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.integers(1, 30)), min_size=1, max_size=20))
def test_never_more_than_burst_plus_rate_times_elapsed(steps: list[tuple[float, int]]) -> None:
    """Over any window, the allowed count is bounded by the bucket's arithmetic, and is exactly it when flooding."""
    limiter = RateLimiter(TABLE)
    spec = TABLE["fast"]
    now, allowed, sent = 0.0, 0, 0
    for gap, count in steps:
        now += gap
        allowed += sum(burst(limiter, "a", "keys", now, count))
        sent += count
        assert allowed <= spec.burst + math.floor(now * spec.rate + 1e-9)
    assert limiter.refusals["fast"] == sent - allowed


def test_the_shipped_table_covers_every_declared_event_and_documents_each_class() -> None:
    owner = class_of_events(EVENT_CLASSES)
    limiter = RateLimiter(EVENT_CLASSES)
    for event in EVENT_SCHEMAS:
        assert event in owner, f"{event!r} has a schema but no rate-limit class (it would fall to 'other')"
    for event in ("webrtc_signal", "p2p_input_relay", "browser_episode", "p2p_episode"):
        assert limiter.class_of(event) != DEFAULT_CLASS
    assert all(spec.why for spec in EVENT_CLASSES.values())


@pytest.mark.parametrize(("klass", "per_second", "seconds"), [
    ("keys", 20, 60),  # a participant mashing keys for a minute
    ("relay", 60 * 3 * 2, 60),  # relayed inputs: 60 fps, 3 peers, two packets a tick, for a minute
    ("uploads", 1 / 0.5, 5),  # an upload retried every 0.5 s (the first backoff) for 5 s
    ("flow", 2, 30),  # clicking Continue twice a second
])
def test_a_real_pages_peak_rate_is_never_refused(klass: str, per_second: float, seconds: int) -> None:
    limiter = RateLimiter(EVENT_CLASSES)
    event = EVENT_CLASSES[klass].events[0]
    results = [limiter.allow("a", event, i / per_second) for i in range(int(per_second * seconds))]
    assert all(results) and not limiter.refusals


def test_signaling_burst_of_a_three_peer_ice_gathering_passes_then_a_flood_is_cut() -> None:
    limiter = RateLimiter(EVENT_CLASSES)
    # offer/answer + 40 candidates for each of 3 peers within 100 ms
    assert all(limiter.allow("a", "webrtc_signal", i * 0.0008) for i in range(3 * 42))
    flood = [limiter.allow("a", "webrtc_signal", 0.1) for _ in range(1000)]
    assert 0 < sum(flood) < 100 and limiter.refusals["signaling"] == flood.count(False)
