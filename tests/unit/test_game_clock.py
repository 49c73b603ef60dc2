"""Tests for LatenessStats and TickSchedule (pure arithmetic: no clock, no sleeping)."""

from __future__ import annotations

import pytest

from interactive_gym.server.game_clock import LatenessStats, TickSchedule


# -- LatenessStats ------------------------------------------------------------------------------------------------
def test_empty_stats() -> None:
    stats = LatenessStats()
    assert stats.percentile(0.5) == 0.0
    assert stats.summary() == {"ticks": 0, "skipped": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}


def test_percentiles_of_a_known_sample() -> None:
    stats = LatenessStats()
    for ms in reversed(range(100)):  # 0..99 ms, added out of order
        stats.add(ms / 1000)
    assert stats.percentile(0.0) == 0.0
    assert stats.percentile(0.5) == 0.050
    assert stats.percentile(0.99) == 0.099
    assert stats.percentile(1.0) == 0.099  # clamped to the largest sample
    assert stats.summary() == {"ticks": 100, "skipped": 0, "p50_ms": 50.0, "p99_ms": 99.0, "max_ms": 99.0}


def test_single_sample() -> None:
    stats = LatenessStats()
    stats.add(0.0123456)
    assert stats.percentile(0.5) == stats.percentile(0.99) == 0.0123456
    assert stats.summary()["max_ms"] == 12.346  # rounded to microseconds


def test_percentile_is_monotonic_in_q() -> None:
    stats = LatenessStats()
    for v in (0.5, 0.1, 0.9, 0.3, 0.3, 0.7):
        stats.add(v)
    values = [stats.percentile(q / 20) for q in range(21)]
    assert values == sorted(values)
    assert values[0] == 0.1 and values[-1] == 0.9


def test_limit_bounds_memory_but_counts_everything() -> None:
    stats = LatenessStats(limit=10)
    for i in range(25):
        stats.add(float(i))
    assert stats.count == 25
    assert stats.summary()["ticks"] == 25
    assert stats.summary()["max_ms"] == 9000.0  # only the first ten samples are kept


# -- TickSchedule: pure deadline arithmetic -------------------------------------------------------------------


def test_period_and_first_deadline() -> None:
    schedule = TickSchedule(8, start=100.0)
    assert schedule.period == 0.125
    assert TickSchedule(30, start=0.0).period == pytest.approx(1 / 30)
    assert schedule.deadline() == 100.0


@pytest.mark.parametrize("fps", [0, -1, float("nan")])
def test_non_positive_fps_is_refused(fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be a positive number"):
        TickSchedule(fps, start=0.0)


def test_on_time_ticks_count_up_with_no_lateness() -> None:
    schedule = TickSchedule(8, start=100.0)
    results = []
    for _ in range(5):
        results.append(schedule.advance(schedule.deadline()))
    assert [tick for tick, _, _ in results] == [0, 1, 2, 3, 4]
    assert [deadline for _, _, deadline in results] == [100.0 + n * 0.125 for n in range(5)]
    assert all(skipped == 0 for _, skipped, _ in results)


def test_deadlines_do_not_drift_with_late_ticks() -> None:
    schedule = TickSchedule(8, start=100.0)
    for n in range(200):
        late_by = 0.015  # every tick runs 15 ms late
        tick, skipped, deadline = schedule.advance(schedule.deadline() + late_by)
        # Tick n is due at start + n * period, never start + n * (period + lateness).
        assert (tick, skipped) == (n, 0)
        assert deadline == pytest.approx(100.0 + n * 0.125)
    assert schedule.deadline() == pytest.approx(100.0 + 200 * 0.125)


def test_small_lag_is_caught_up_back_to_back() -> None:
    schedule = TickSchedule(4, start=100.0, max_catch_up=2)
    schedule.advance(100.0)
    now = 100.6  # 2.4 periods of work after tick 0: ticks 1 and 2 are already due
    assert schedule.advance(now) == (1, 0, 100.25)
    assert schedule.advance(now) == (2, 0, 100.5)
    assert schedule.deadline() == 100.75  # tick 3 waits for its own deadline


def test_far_behind_skips_ticks_instead_of_bursting() -> None:
    schedule = TickSchedule(4, start=100.0, max_catch_up=2)
    schedule.advance(100.0)
    # Tick 1 was due at 100.25; now is 102.6, i.e. 9 whole periods late: those 9 are skipped.
    tick, skipped, deadline = schedule.advance(102.6)
    assert (tick, skipped) == (10, 9)
    assert deadline == pytest.approx(102.5)  # lateness 0.1 s after the new deadline
    assert schedule.deadline() == pytest.approx(102.75)
    assert schedule.advance(102.75) == (11, 0, pytest.approx(102.75))


def test_exactly_max_catch_up_behind_is_still_caught_up() -> None:
    schedule = TickSchedule(4, start=0.0, max_catch_up=2)
    assert schedule.advance(0.5) == (0, 0, 0.0)  # two whole periods late: allowed
    assert schedule.advance(1.0)[:2] == (4, 3)  # tick 1 due at 0.25, three periods late: skipped


def test_resume_after_an_idle_gap_moves_to_the_next_deadline_without_skips() -> None:
    schedule = TickSchedule(4, start=0.0)
    schedule.advance(0.0)
    schedule.resume(10.1)  # idle until 10.1: the next deadline at or after it is 10.25 (tick 41)
    assert schedule.deadline() == pytest.approx(10.25)
    assert schedule.advance(10.25) == (41, 0, pytest.approx(10.25))


def test_resume_on_a_deadline_keeps_it_and_never_goes_backwards() -> None:
    schedule = TickSchedule(4, start=0.0)
    schedule.resume(0.5)
    assert schedule.deadline() == 0.5
    schedule.resume(0.1)
    assert schedule.deadline() == 0.5
