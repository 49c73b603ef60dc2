"""The server capacity benchmark's pure parts: figures over runs, the verdict rule, and its CoinGrid env."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

from server_capacity_envs import CoinGrid, bench_env, grid_canvas_size, render_grid  # noqa: E402
from server_capacity_stats import MIN_RUNS_FOR_VERDICT, across_runs, verdict  # noqa: E402

from interactive_gym.rendering import Surface  # noqa: E402


def test_across_runs_gives_the_median_and_range_and_skips_missing_values() -> None:
    assert across_runs([3.0, 1.0, 2.0]) == {"n": 3, "median": 2.0, "min": 1.0, "max": 3.0}
    assert across_runs([4.0, None, 1.0, float("nan"), 2.0, 3.0]) == {"n": 4, "median": 2.5, "min": 1.0, "max": 4.0}
    assert across_runs([None]) == {"n": 0, "median": None, "min": None, "max": None}


def test_one_outlier_run_does_not_move_the_median() -> None:
    assert across_runs([29.9, 30.0, 12.0])["median"] == 29.9


@pytest.mark.parametrize("runs", range(MIN_RUNS_FOR_VERDICT))
def test_no_verdict_from_fewer_than_three_runs_even_if_all_passed(runs: int) -> None:
    result = verdict([True] * runs)
    assert result["met"] is None
    assert "at least 3" in result["reason"]


def test_the_verdict_needs_every_run_to_meet_the_target() -> None:
    assert verdict([True, True, True])["met"] is True
    failed = verdict([True, False, True, True])
    assert failed["met"] is False and failed["runs_met"] == 3 and failed["runs"] == 4


def test_coin_grid_observations_are_dicts_and_replay_from_the_seed() -> None:
    def play(seed: int) -> list[tuple[dict, dict]]:
        env = CoinGrid()
        obs, _ = env.reset(seed=seed)
        trace = []
        for t in range(200):
            obs, rewards, terminated, truncated, _ = env.step({"agent_0": t % 5, "agent_1": (t * 3) % 5})
            trace.append((obs, rewards))
            assert not any(terminated.values()) and not any(truncated.values())
        return trace

    first = play(5)
    assert first == play(5)
    obs = first[0][0]["agent_0"]
    assert set(obs) == {"self", "partner", "coin", "t"}
    assert obs["self"] == first[0][0]["agent_1"]["partner"]
    assert all(0 <= v < 8 for o in first for agent in o[0].values() for v in (*agent["self"], *agent["coin"]))


def test_coin_grid_scores_the_walker_that_reaches_the_coin() -> None:
    env = CoinGrid(size=3)
    env.reset(seed=1)
    env.positions = {"agent_0": (0, 0), "agent_1": (2, 2)}
    env.coin = (1, 0)
    _, rewards, _, _, info = env.step({"agent_0": 4, "agent_1": 0})  # agent_0 steps right onto the coin
    assert rewards == {"agent_0": 1.0, "agent_1": 0.0}
    assert info["agent_0"]["score"] == 1
    assert env.coin not in env.positions.values()


def test_coin_grid_renders_persistent_objects_only() -> None:
    env = CoinGrid()
    env.reset(seed=2)
    surface = Surface(*grid_canvas_size())
    render_grid(env, surface)
    packet = surface.commit()
    assert {o["id"] for o in packet["objects"]} == {"floor", "coin", "agent_0", "agent_1", "score"}


def test_bench_env_names_the_known_envs_when_given_an_unknown_one() -> None:
    assert bench_env("grid").make_env().metadata["name"] == "coin_grid_v1"
    with pytest.raises(ValueError, match="demo, grid"):
        bench_env("nope")


def test_the_hot_path_harness_ticks_every_game_and_sends_every_packet() -> None:
    # Run as it is used (its own process, as under callgrind): it sets up a server, a data writer and GC
    # callbacks of its own, which must not meet the state earlier tests left in this process.
    command = [sys.executable, str(BENCH / "server_capacity_hotpath.py"), "--games", "3", "--ticks", "30",
               "--warmup", "6", "--window", "10", "--env", "grid", "--key-interval", "0.1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=BENCH)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["game_ticks"] == 3 * (30 + 6)
    assert result["key_messages"] == 3 * 2 * (30 + 6) // 3  # one key every 3 ticks (0.1 s at 30 fps) per player
    # Two players per game get every tick's render packet, plus each game's episode start.
    assert result["packets_sent"] >= 2 * result["game_ticks"]
    assert result["cpu_us_per_game_tick"]["n"] == 3


def test_the_per_part_breakdown_still_runs() -> None:
    from server_capacity_breakdown import breakdown

    parts = breakdown(200, "demo")["us_per_tick"]
    assert all(value > 0 for value in parts.values())
