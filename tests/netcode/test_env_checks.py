"""check-env's checks: the project's example environments pass; nondeterministic ones fail, each for its reason."""

from __future__ import annotations

import sys
from pathlib import Path

import envs_for_tests as envs
import gymnasium
import pytest

from interactive_gym.envs.checks import check_environment

ROOT = Path(__file__).resolve().parents[2]


def _failed(report) -> set[str]:  # type: ignore[no-untyped-def]
    return {r.name.split(" (")[0] for r in report.results if not r.passed}


def test_demo_environment_passes() -> None:
    sys.path.insert(0, str(ROOT))
    try:
        from examples.demo.gatherers import make_env
    finally:
        sys.path.remove(str(ROOT))
    report = check_environment(make_env, "gatherers", frames=300)
    assert report.passed, [(r.name, r.summary, r.details) for r in report.results]


@pytest.mark.parametrize(
    "build",
    [envs.TagEnv, lambda: envs.TagEnv(with_state_api=False), lambda: gymnasium.make("CartPole-v1")],
    ids=["state-api", "deep-copy", "cartpole"],
)
def test_deterministic_environments_pass(build) -> None:  # type: ignore[no-untyped-def]
    report = check_environment(build, "env", frames=150)
    assert report.passed, [(r.name, r.summary, r.details) for r in report.results]


def test_wall_clock_env_fails_the_sync_test() -> None:
    report = check_environment(envs.WallClockEnv, "wall", frames=200)
    assert not report.passed
    assert "sync test" in _failed(report)
    sync = next(r for r in report.results if r.name.startswith("sync test"))
    assert sync.details[0].startswith("first bad frame:")
    assert any("coin" in line for line in sync.details)


def test_hidden_global_env_fails() -> None:
    report = check_environment(envs.HiddenGlobalEnv, "hidden", frames=200)
    assert {"sync test", "two instances"} <= _failed(report)


def test_unseeded_rng_env_fails_two_instances() -> None:
    report = check_environment(envs.UnseededRngEnv, "unseeded", frames=200)
    assert "two instances" in _failed(report)


def test_leaky_state_env_fails_snapshots() -> None:
    report = check_environment(envs.LeakyStateEnv, "leaky", frames=100)
    assert "snapshots are independent copies" in _failed(report)


def test_broken_env_is_reported_not_raised() -> None:
    class Exploding(envs.TagEnv):
        def step(self, actions):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")

    report = check_environment(Exploding, "boom", frames=10)
    assert not report.passed
    assert all("boom" in r.summary for r in report.results if not r.passed)
