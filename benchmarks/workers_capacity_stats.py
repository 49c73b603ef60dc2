"""Pure figures and verdicts of the workers benchmark (``workers_capacity.py``): one process against two.

No I/O: the orchestrator hands in episodes and per-run figures and gets plain dicts back. The verdicts follow
the issue's two targets and, as ``server_capacity_stats.verdict``, are refused from fewer than three runs:

(a) the multi-process path costs at most 20% more server CPU per game tick than one process, judged on the
    run pairs where one process held every game at rate (a saturated process skips ticks and cannot say what
    a tick costs it at full speed);
(b) two workers hold more games at target (rate and p99 lateness) than one: each run's capacity of a
    variant is the most games it held at target at any size, and two workers must beat one in every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from server_capacity_stats import MIN_RUNS_FOR_VERDICT, across_runs, episode_rates

CPU_RATIO_LIMIT = 1.20


def games_at(episodes: Iterable[dict[str, Any]], min_rate: float, max_p99_ms: float | None = None) -> int:
    """How many episodes ran at ``min_rate`` ticks/s or faster (and, if given, with a p99 tick lateness below
    ``max_p99_ms``, from the episode's own ``meta.tick_lateness``)."""
    held = 0
    for episode in episodes:
        rates = episode_rates([episode])
        if not rates or rates[0] < min_rate:
            continue
        if max_p99_ms is not None:
            lateness = (episode.get("meta") or {}).get("tick_lateness") or {}
            p99 = lateness.get("p99_ms")
            if p99 is None or p99 >= max_p99_ms:
                continue
        held += 1
    return held


def ratio(two: float | None, one: float | None) -> float | None:
    """``two / one``, or ``None`` when either is missing or ``one`` is zero (no ratio to speak of)."""
    if two is None or one is None or one == 0:
        return None
    return two / one


def _refused(runs: int) -> dict[str, Any] | None:
    if runs < MIN_RUNS_FOR_VERDICT:
        return {"met": None, "runs": runs,
                "reason": f"{runs} run(s): a verdict needs at least {MIN_RUNS_FOR_VERDICT} (--runs)"}
    return None


def cpu_verdict(pairs: Sequence[dict[str, Any]], runs: int, limit: float = CPU_RATIO_LIMIT) -> dict[str, Any]:
    """Target (a): every eligible run pair's CPU per game tick ratio (2 workers / 1) is at most ``limit``.

    Args:
        pairs: One per (run, size): ``{"run", "games", "ratio", "eligible"}``; ``eligible`` is whether one
            process held every game at rate in that run.
        runs: Runs of every size (a verdict needs at least three).
    """
    counted = [p for p in pairs if p["eligible"] and p["ratio"] is not None]
    base: dict[str, Any] = {"target": f"server CPU per game tick, 2 workers / 1, at most {limit:g}",
                            "pairs_judged": len(counted), "pairs_skipped_saturated": len(pairs) - len(counted),
                            "ratio": across_runs([p["ratio"] for p in counted])}
    refused = _refused(runs)
    if refused:
        return {**base, **refused}
    if not counted:
        return {**base, "met": None, "runs": runs,
                "reason": "one process held no size at rate: add smaller --sizes to compare CPU per tick"}
    over = [p for p in counted if p["ratio"] > limit]
    return {**base, "met": not over, "runs": runs, "pairs_over_limit": [(p["run"], p["games"]) for p in over]}


def capacity_verdict(capacity: dict[int, list[int]], largest: int, runs: int) -> dict[str, Any]:
    """Target (b): in every run, two workers held more games at target than one.

    Args:
        capacity: Workers (1, 2) -> per run, the most games held at target at any size.
        largest: The largest size run (one process holding it means the sizes never found its limit).
        runs: Runs of every size.
    """
    one, two = capacity.get(1, []), capacity.get(2, [])
    ratios = [ratio(b, a) for a, b in zip(one, two, strict=False)]
    base: dict[str, Any] = {"target": "games held at target (rate and p99), 2 workers more than 1",
                            "games_at_target_1_worker": across_runs(one), "games_at_target_2_workers": across_runs(two),
                            "ratio": across_runs(ratios)}
    refused = _refused(runs)
    if refused:
        return {**base, **refused}
    if all(a >= largest for a in one):
        return {**base, "met": None, "runs": runs,
                "reason": f"one process held the largest size ({largest}) in every run: add larger --sizes"}
    wins = sum(b > a for a, b in zip(one, two, strict=False))
    return {**base, "met": wins == len(one) == len(two), "runs": runs, "runs_met": wins}
