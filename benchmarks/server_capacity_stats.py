"""Pure statistics for the server capacity benchmark: percentiles, delivery lateness, per-run summaries.

No I/O and no clocks: the client driver and the orchestrator hand in numbers and get plain dicts back, so
the figures printed in the README come from code that can be read (and checked) on its own.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; ``nan`` when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[min(rank, len(ordered) - 1)]


def delivery_lateness(arrivals: Sequence[float], ticks: Sequence[int], period: float,
                      window: int = 30) -> list[float]:
    """How late each render packet arrived compared with the best recent packet of its client (seconds).

    A packet for tick ``t`` is expected at ``offset + t * period``. The offset is the smallest
    ``arrival - t * period`` among this packet and the ``window - 1`` before it (the packet that got
    through fastest lately), so every lateness is >= 0 and it measures server tick lateness, send queueing
    and client-side delays together. A trailing window, not the whole run, because ticks the server skips
    (when overloaded) shift the schedule for good; those are counted by the server, not here.

    Args:
        arrivals: Monotonic arrival times (seconds), one per packet.
        ticks: The packet's tick number ``t`` (same length as ``arrivals``).
        period: Seconds per tick (``1 / fps``).
        window: Packets in the trailing window (default one second at 30 fps).
    """
    if len(arrivals) != len(ticks):
        raise ValueError(f"arrivals ({len(arrivals)}) and ticks ({len(ticks)}) must have the same length")
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    offsets = [a - t * period for a, t in zip(arrivals, ticks, strict=True)]
    lateness = []
    best: deque[int] = deque()  # indices of increasing offsets: best[0] is the window's minimum
    for i, offset in enumerate(offsets):
        while best and offsets[best[-1]] >= offset:
            best.pop()
        best.append(i)
        if best[0] <= i - window:
            best.popleft()
        lateness.append(offset - offsets[best[0]])
    return lateness


def inter_arrival_jitter(arrivals: Sequence[float], period: float) -> list[float]:
    """``|gap - period|`` for each pair of consecutive packets (seconds)."""
    return [abs((b - a) - period) for a, b in zip(arrivals, arrivals[1:], strict=False)]


def client_rate(arrivals: Sequence[float], ticks: Sequence[int]) -> float | None:
    """Ticks per second seen by one client from its first to its last packet; ``None`` with < 2 packets."""
    if len(arrivals) < 2 or arrivals[-1] <= arrivals[0]:
        return None
    return (ticks[-1] - ticks[0]) / (arrivals[-1] - arrivals[0])


def distribution_ms(values_s: Sequence[float]) -> dict[str, float | int]:
    """p50 / p99 / max in milliseconds of values given in seconds, with the sample count."""
    if not values_s:
        return {"n": 0, "p50_ms": math.nan, "p99_ms": math.nan, "max_ms": math.nan}
    return {
        "n": len(values_s),
        "p50_ms": round(percentile(values_s, 0.50) * 1000, 3),
        "p99_ms": round(percentile(values_s, 0.99) * 1000, 3),
        "max_ms": round(max(values_s) * 1000, 3),
    }


def spread(values: Sequence[float], digits: int = 2) -> dict[str, float | int]:
    """Mean, min, median and max of ``values`` (rounded), with the count."""
    if not values:
        return {"n": 0, "mean": math.nan, "min": math.nan, "median": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "mean": round(sum(values) / len(values), digits),
        "min": round(min(values), digits),
        "median": round(percentile(values, 0.5), digits),
        "max": round(max(values), digits),
    }


def episode_rates(episodes: Iterable[dict[str, Any]]) -> list[float]:
    """Achieved ticks per second of each finished episode: ``meta.steps / (ended_at - started_at)``.

    ``started_at`` is committed before the game's clock starts and ``ended_at`` after its last steps are
    committed, so this slightly underestimates the tick rate (never overestimates it).
    """
    rates = []
    for row in episodes:
        steps = (row.get("meta") or {}).get("steps")
        started, ended = row.get("started_at"), row.get("ended_at")
        if steps and started is not None and ended is not None and ended > started:
            rates.append(steps / (ended - started))
    return rates


def server_lateness(episodes: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Combines the per-episode ``meta.tick_lateness`` summaries the game loop stored.

    Per-episode percentiles cannot be merged exactly, so this reports their spread across episodes: the
    median episode's p50 and p99, the worst episode's p99 and max, and total ticks and skipped ticks.
    """
    summaries = [(row.get("meta") or {}).get("tick_lateness") for row in episodes]
    summaries = [s for s in summaries if isinstance(s, dict) and s.get("ticks")]
    if not summaries:
        return {"episodes": 0}
    return {
        "episodes": len(summaries),
        "ticks": sum(int(s["ticks"]) for s in summaries),
        "skipped": sum(int(s.get("skipped", 0)) for s in summaries),
        "p50_ms_median_game": percentile([s["p50_ms"] for s in summaries], 0.5),
        "p99_ms_median_game": percentile([s["p99_ms"] for s in summaries], 0.5),
        "p99_ms_worst_game": max(s["p99_ms"] for s in summaries),
        "max_ms_worst_game": max(s["max_ms"] for s in summaries),
    }


def window_mean(samples: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Mean of ``(time, value)`` samples with ``start <= time <= end``; all samples if none fall inside."""
    inside = [v for t, v in samples if start <= t <= end] or [v for _, v in samples]
    return sum(inside) / len(inside) if inside else math.nan


def across_runs(values: Sequence[float | None], digits: int = 3) -> dict[str, Any]:
    """Median and range of one figure over repeated runs of the same size (``None`` values are left out).

    The median, not the mean: one run disturbed by another process on a shared machine moves a mean but
    not the median of three.
    """
    present = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not present:
        return {"n": 0, "median": None, "min": None, "max": None}
    ordered = sorted(present)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    return {"n": len(ordered), "median": round(median, digits), "min": round(ordered[0], digits),
            "max": round(ordered[-1], digits)}


MIN_RUNS_FOR_VERDICT = 3


def verdict(runs_met: Sequence[bool]) -> dict[str, Any]:
    """Whether a size meets its target over repeated runs: only from at least three runs, and only if all do.

    One run on a shared machine can pass or fail by luck; a verdict from fewer runs is refused (``met`` is
    ``None``, with the reason), never guessed.
    """
    count, passed = len(runs_met), sum(bool(m) for m in runs_met)
    if count < MIN_RUNS_FOR_VERDICT:
        return {"met": None, "runs": count, "runs_met": passed,
                "reason": f"{count} run(s): a verdict needs at least {MIN_RUNS_FOR_VERDICT} (--runs)"}
    return {"met": passed == count, "runs": count, "runs_met": passed}
