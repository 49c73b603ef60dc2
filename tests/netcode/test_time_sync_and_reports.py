"""Time sync arithmetic and the report ledger used for checksum and episode comparisons."""

from __future__ import annotations

import pytest

from interactive_gym.netcode.reports import ReportLedger
from interactive_gym.netcode.time_sync import MAX_RECOMMENDATION, TimeSync, local_advantage


def test_local_advantage_adds_half_a_round_trip() -> None:
    assert local_advantage(100, -1, 50.0, 60.0) == 0.0  # nothing heard yet
    assert local_advantage(100, 90, None, 60.0) == 10.0
    # 100 ms round trip at 60 fps: the remote has moved on 3 frames since it announced frame 90.
    assert local_advantage(100, 90, 100.0, 60.0) == pytest.approx(7.0)


def test_recommendation_is_half_the_advantage_difference() -> None:
    sync = TimeSync(window=4)
    for _ in range(4):
        sync.record(4.0, -4.0)  # I am 4 ahead by my estimate, the remote agrees it is 4 behind
    assert sync.frames_ahead() == 4.0
    assert sync.recommend_wait() == 4
    behind = TimeSync(window=4)
    for _ in range(4):
        behind.record(-3.0, 3.0)
    assert behind.frames_ahead() == -3.0 and behind.recommend_wait() == 0
    small = TimeSync(window=4)
    small.record(1.0, -0.5)
    assert small.recommend_wait() == 0  # averaged over the window: below one frame
    huge = TimeSync(window=2)
    huge.record(100.0, -100.0)
    huge.record(100.0, -100.0)
    assert huge.recommend_wait() == MAX_RECOMMENDATION


def test_ledger_compares_each_key_once_in_either_order() -> None:
    ledger = ReportLedger(["b", "c"])
    assert ledger.record_remote("b", 60, 111) is None  # remote first: kept pending
    done = ledger.record_local(60, 111)
    assert [(c.peer, c.key, c.matches) for c in done] == [("b", 60, True)]
    comparison = ledger.record_remote("c", 60, 222)  # local first
    assert comparison is not None and not comparison.matches and comparison.remote == 222
    assert ledger.record_remote("c", 60, 222) is None  # repeats are ignored
    ledger.record_local(120, 5)
    ledger.record_local(180, 6)
    assert ledger.latest_local(2) == [(120, 5), (180, 6)]
    assert ledger.record_remote("b", 120, 5).matches  # type: ignore[union-attr]
    assert ledger.record_remote("b", 60, 999) is None  # older than what was verified: stale


def test_ledger_stays_bounded() -> None:
    ledger = ReportLedger(["b"])
    for key in range(500):
        ledger.record_local(key, key)
        ledger.record_remote("b", key + 1000, key)
    assert len(ledger._local) <= 64 and len(ledger._pending["b"]) <= 64
