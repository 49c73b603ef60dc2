"""The workers benchmark (one process against two workers): its verdict rules, and a ``--quick`` smoke run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from workers_capacity_stats import capacity_verdict, cpu_verdict, games_at, ratio  # noqa: E402


def _episode(steps: int, seconds: float, p99_ms: float) -> dict:
    return {"started_at": 100.0, "ended_at": 100.0 + seconds, "meta": {"steps": steps,
                                                                       "tick_lateness": {"ticks": steps,
                                                                                         "p99_ms": p99_ms}}}


def test_games_at_counts_rate_and_optionally_the_episodes_own_p99() -> None:
    episodes = [_episode(300, 10.0, 2.0), _episode(300, 10.0, 12.0), _episode(250, 10.0, 1.0), {"meta": {}}]
    assert games_at(episodes, 29.5) == 2
    assert games_at(episodes, 29.5, max_p99_ms=10.0) == 1


def test_ratio_is_none_without_both_figures() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(None, 2.0) is None and ratio(1.0, 0) is None


def _pairs(*ratios: float, eligible: bool = True) -> list[dict]:
    return [{"run": n, "games": 10, "ratio": r, "eligible": eligible} for n, r in enumerate(ratios, 1)]


def test_cpu_verdict_is_refused_from_fewer_than_three_runs() -> None:
    assert cpu_verdict(_pairs(1.0, 1.0), runs=2)["met"] is None


def test_cpu_verdict_needs_every_unsaturated_pair_within_twenty_percent() -> None:
    assert cpu_verdict(_pairs(1.1, 1.19, 1.05), runs=3)["met"] is True
    failed = cpu_verdict(_pairs(1.1, 1.3, 1.05), runs=3)
    assert failed["met"] is False and failed["pairs_over_limit"] == [(2, 10)]
    # A pair where one process was saturated is reported but not judged.
    assert cpu_verdict(_pairs(1.1, 1.1, 1.1) + _pairs(2.0, eligible=False), runs=3)["met"] is True
    assert cpu_verdict(_pairs(1.0, 1.0, 1.0, eligible=False), runs=3)["met"] is None


def test_capacity_verdict_needs_two_workers_ahead_in_every_run() -> None:
    assert capacity_verdict({1: [40, 40, 40], 2: [60, 60, 60]}, largest=80, runs=3)["met"] is True
    assert capacity_verdict({1: [40, 40, 40], 2: [60, 40, 60]}, largest=80, runs=3)["met"] is False
    assert capacity_verdict({1: [40], 2: [60]}, largest=80, runs=1)["met"] is None
    # One process held every size: these sizes cannot tell which holds more.
    held = capacity_verdict({1: [80, 80, 80], 2: [80, 80, 80]}, largest=80, runs=3)
    assert held["met"] is None and "larger --sizes" in held["reason"]


def test_the_quick_run_plays_both_variants_to_the_end(tmp_path: Path) -> None:
    out = tmp_path / "workers_capacity.json"
    command = [sys.executable, str(BENCH / "workers_capacity.py"), "--quick", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=110, cwd=BENCH)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [(r["workers"], r["games"]) for r in report["runs"]] == [(1, 2), (2, 2)]
    for run in report["runs"]:
        assert run["episodes_complete"] == 2, run
        assert run["clients_without_game_over"] == 0 and run["client_errors"] == 0, run
        assert run["game_ticks"] > 0 and run["server_cpu_ms_per_game_tick"] > 0
    one, two = report["runs"]
    assert one["server_processes"] == 1 and one["redis_cpu_s"] is None
    assert two["server_processes"] == 3 and two["redis_cpu_s"] is not None  # the front and two workers
    assert sum(two["clients_per_worker"].values()) == 4
    verdicts = report["summary"]["verdict"]
    assert verdicts["a_cpu_per_game_tick"]["met"] is None and verdicts["b_games_at_target"]["met"] is None
