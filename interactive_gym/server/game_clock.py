"""A drift-free fixed-rate clock for server-mode games, and the lateness statistics it reports.

Each tick is scheduled at ``start + n * period`` (never "now + period"), so small delays do not accumulate
into a slower game. When the loop falls more than ``max_catch_up`` ticks behind (machine overloaded), the
missed ticks are skipped and counted instead of being run in a burst, which would make the game jump.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Callable


class LatenessStats:
    """Tick lateness samples (seconds a tick ran after its deadline), kept sorted for percentiles."""

    def __init__(self, limit: int = 20_000) -> None:
        self._sorted: list[float] = []
        self._limit = limit
        self.count = 0
        self.skipped = 0

    def add(self, lateness_s: float) -> None:
        self.count += 1
        if len(self._sorted) < self._limit:
            bisect.insort(self._sorted, lateness_s)

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1) of the samples, 0.0 with none."""
        if not self._sorted:
            return 0.0
        return self._sorted[min(len(self._sorted) - 1, int(q * len(self._sorted)))]

    def summary(self) -> dict[str, float]:
        """Lateness in milliseconds: p50, p99, max; tick and skip counts."""
        return {
            "ticks": self.count,
            "skipped": self.skipped,
            "p50_ms": round(self.percentile(0.50) * 1000, 3),
            "p99_ms": round(self.percentile(0.99) * 1000, 3),
            "max_ms": round((self._sorted[-1] if self._sorted else 0.0) * 1000, 3),
        }


class FixedRateClock:
    """Yields ticks at ``fps`` on the running event loop's clock.

    Args:
        fps: Ticks per second.
        time: Clock function (seconds); defaults to the loop's monotonic clock.
        max_catch_up: Ticks that may run back to back before the rest are skipped.
    """

    def __init__(self, fps: float, time: Callable[[], float] | None = None, max_catch_up: int = 2) -> None:
        self.period = 1.0 / fps
        self._time = time
        self.max_catch_up = max_catch_up
        self.stats = LatenessStats()
        self._start: float | None = None
        self._n = 0

    def now(self) -> float:
        return self._time() if self._time else asyncio.get_running_loop().time()

    async def wait_next(self) -> int:
        """Sleeps until the next tick's deadline; returns the tick number."""
        if self._start is None:
            self._start = self.now()
        deadline = self._start + self._n * self.period
        delay = deadline - self.now()
        if delay > 0:
            await asyncio.sleep(delay)
        now = self.now()
        behind = int((now - deadline) / self.period)
        if behind > self.max_catch_up:
            # Skip what cannot be caught up; the game stays real-time instead of bursting.
            self.stats.skipped += behind
            self._n += behind
            deadline = self._start + self._n * self.period
        self.stats.add(max(0.0, now - deadline))
        tick = self._n
        self._n += 1
        return tick
