"""Drift-free fixed-rate tick arithmetic for server-mode games, and the lateness statistics they report.

Each tick is scheduled at ``start + n * period`` (never "now + period"), so small delays do not accumulate
into a slower game. When the loop falls more than ``max_catch_up`` ticks behind (machine overloaded), the
missed ticks are skipped and counted instead of being run in a burst, which would make the game jump.
The event-loop side (sleeping until a deadline, ticking every game of one fps) is
:class:`~interactive_gym.server.tick_scheduler.TickScheduler`.
"""

from __future__ import annotations

import bisect
import math


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


class TickSchedule:
    """Drift-free tick deadlines at a fixed rate, and the catch-up/skip rule; pure arithmetic, no clock.

    Tick ``n`` is due at ``start + n * period``. :meth:`advance` is called when a tick runs: if the caller is
    more than ``max_catch_up`` whole periods behind that deadline, the missed ticks are skipped (and reported)
    instead of being run back to back.

    Args:
        fps: Ticks per second.
        start: Time (seconds, any monotonic clock) when tick 0 is due.
        max_catch_up: Ticks that may run back to back before the rest are skipped.
    """

    def __init__(self, fps: float, start: float, max_catch_up: int = 2) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        self.period = 1.0 / fps
        self.start = start
        self.max_catch_up = max_catch_up
        self.next_tick = 0

    def deadline(self) -> float:
        """When the next tick is due."""
        return self.start + self.next_tick * self.period

    def resume(self, now: float) -> None:
        """Moves the next tick to the first deadline at or after ``now`` (after an idle gap: nothing is due
        or skipped for the time nobody was ticking); never moves it backwards."""
        due = math.ceil((now - self.start) / self.period - 1e-9)
        self.next_tick = max(self.next_tick, due)

    def advance(self, now: float) -> tuple[int, int, float]:
        """Runs the next tick at ``now``.

        Returns:
            ``(tick number, ticks skipped just before it, the tick's deadline)``; lateness is ``now - deadline``.
        """
        deadline = self.deadline()
        behind = int((now - deadline) / self.period)
        skipped = 0
        if behind > self.max_catch_up:
            # Skip what cannot be caught up; the game stays real-time instead of bursting.
            skipped = behind
            self.next_tick += behind
            deadline = self.deadline()
        tick = self.next_tick
        self.next_tick += 1
        return tick, skipped, deadline
