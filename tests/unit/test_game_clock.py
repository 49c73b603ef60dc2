"""Tests for LatenessStats and FixedRateClock, driven by a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from interactive_gym.server import game_clock
from interactive_gym.server.game_clock import FixedRateClock, LatenessStats


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


# -- FixedRateClock with a fake clock --------------------------------------------------------------------------
class FakeTime:
    """A clock that only moves when the code under test sleeps (plus scripted extra delays)."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.overshoot = 0.0  # each sleep wakes this late (scheduler jitter)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay + self.overshoot
        await REAL_SLEEP(0)


REAL_SLEEP = asyncio.sleep


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake_time = FakeTime()
    monkeypatch.setattr(game_clock.asyncio, "sleep", fake_time.sleep)
    return fake_time


def run(coro):  # noqa: ANN001, ANN201 - small test helper
    return asyncio.run(coro)


def test_period() -> None:
    assert FixedRateClock(8).period == 0.125
    assert FixedRateClock(30).period == pytest.approx(1 / 30)


def test_first_tick_is_immediate_and_ticks_count_up(fake: FakeTime) -> None:
    clock = FixedRateClock(8, time=fake)

    async def main() -> list[int]:
        return [await clock.wait_next() for _ in range(5)]

    assert run(main()) == [0, 1, 2, 3, 4]
    assert fake.sleeps == [0.125] * 4
    assert fake.now == 100.0 + 4 * 0.125
    assert clock.stats.count == 5 and clock.stats.skipped == 0
    assert clock.stats.percentile(1.0) == 0.0


def test_deadlines_do_not_drift_with_late_wakeups(fake: FakeTime) -> None:
    fake.overshoot = 0.015  # every sleep wakes 15 ms late
    clock = FixedRateClock(8, time=fake)
    ticks_at: list[float] = []

    async def main() -> None:
        for _ in range(200):
            await clock.wait_next()
            ticks_at.append(fake.now)

    run(main())
    # Tick n happens at start + n * period + one overshoot, never start + n * (period + overshoot).
    for n, at in enumerate(ticks_at[1:], start=1):
        assert at == pytest.approx(100.0 + n * 0.125 + 0.015)
    assert fake.sleeps[1:] == pytest.approx([0.125 - 0.015] * 198)
    assert clock.stats.skipped == 0
    assert clock.stats.percentile(0.5) == pytest.approx(0.015)


def test_work_between_ticks_shortens_the_sleep(fake: FakeTime) -> None:
    clock = FixedRateClock(4, time=fake)

    async def main() -> None:
        await clock.wait_next()
        fake.now += 0.1  # the game step took 100 ms
        await clock.wait_next()

    run(main())
    assert fake.sleeps == [pytest.approx(0.15)]
    assert fake.now == pytest.approx(100.25)


def test_small_lag_is_caught_up_back_to_back(fake: FakeTime) -> None:
    clock = FixedRateClock(4, time=fake, max_catch_up=2)

    async def main() -> list[int]:
        ticks = [await clock.wait_next()]
        fake.now += 0.6  # 2.4 periods of work: two ticks are already due
        ticks += [await clock.wait_next() for _ in range(4)]
        return ticks

    assert run(main()) == [0, 1, 2, 3, 4]
    # Ticks 1 and 2 run at once (late), tick 3 waits for its own deadline at start + 0.75.
    assert fake.sleeps == [pytest.approx(0.15), pytest.approx(0.25)]
    assert clock.stats.skipped == 0
    assert clock.stats.summary()["max_ms"] == pytest.approx(350.0)


def test_far_behind_skips_ticks_instead_of_bursting(fake: FakeTime) -> None:
    clock = FixedRateClock(4, time=fake, max_catch_up=2)

    async def main() -> list[int]:
        ticks = [await clock.wait_next()]
        fake.now += 2.6  # 10.4 periods behind the next deadline
        ticks.append(await clock.wait_next())
        ticks.append(await clock.wait_next())
        return ticks

    ticks = run(main())
    # Tick 1 was due at +0.25; now is +2.6, i.e. 9 whole periods late: those 9 are skipped.
    assert clock.stats.skipped == 9
    assert ticks == [0, 10, 11]
    # After skipping, the tick runs 0.1 s after its new deadline (2.5), and the next waits for 2.75.
    assert fake.sleeps == [pytest.approx(0.15)]
    assert clock.stats.count == 3
    assert clock.stats.summary()["max_ms"] == pytest.approx(100.0)


def test_default_time_is_the_loop_clock() -> None:
    clock = FixedRateClock(1000)

    async def main() -> tuple[int, float, float]:
        loop_now = asyncio.get_running_loop().time()
        tick = await clock.wait_next()
        return tick, loop_now, clock.now()

    tick, before, after = asyncio.run(main())
    assert tick == 0
    assert after >= before
