"""check-env's checks: the project's example environments pass; nondeterministic ones fail, each for its reason."""

from __future__ import annotations

import sys
from pathlib import Path

import envs_for_tests as envs
import gymnasium
import pytest

from interactive_gym.cli import main
from interactive_gym.envs.checks import check_environment
from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.envs.trace import SeededInputs
from interactive_gym.tools.check_env import check_target

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


# --- across processes: str hash order (issue 9, finding 8) ----------------------------------------------------

def _first_coin_frame(frames: int) -> int:
    """The first frame whose state follows a collected coin: where SetOrderEnv's colour first moves on."""
    adapter = EnvStateAdapter(envs.SetOrderEnv(), seed=0)
    inputs = SeededInputs(adapter, 1, 0.3)  # the inputs every trace uses (seed + 1)
    for frame in range(frames):
        adapter.advance(frame, inputs.next())
        if sum(adapter.env.scores) > 0:
            return frame + 1
    raise AssertionError("no coin collected; the test needs a longer game")


def test_set_iteration_passes_in_one_process_but_fails_across_hash_seeds() -> None:
    report = check_target("tests.netcode.envs_for_tests:make_set_order", frames=300)
    by_name = {r.name.split(" (")[0]: r for r in report.results}
    # Inside one process the env is perfectly deterministic: that is why the old check-env let it through.
    assert by_name["two instances"].passed and by_name["sync test"].passed
    across = by_name["other hash seeds"]
    assert not across.passed and not report.passed
    frame = _first_coin_frame(300)
    assert f"diverged at frame {frame}" in across.summary
    assert across.details[0].startswith(f"first difference in the state of frame {frame} (after stepping frame")
    assert any(line.strip().startswith("state[0]['colour']: ") for line in across.details)
    assert any("likely cause: iterating over a set" in line and "hash()" in line for line in across.details)


def test_sorting_the_set_passes_across_hash_seeds() -> None:
    report = check_target("tests.netcode.envs_for_tests:make_sorted_set_order", frames=300)
    assert report.passed, [(r.name, r.summary, r.details) for r in report.results]
    assert any(r.name.startswith("other hash seeds") for r in report.results)


def test_an_env_failing_in_one_process_is_not_blamed_on_hash_order() -> None:
    report = check_target("tests.netcode.envs_for_tests:make_unseeded", frames=50)
    across = next(r for r in report.results if r.name.startswith("other hash seeds"))
    assert not across.passed
    assert "fix those first" in across.details[-1]
    assert not any("likely cause" in line for line in across.details)


def test_check_env_command_names_the_frame_and_the_cause(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-env", "tests.netcode.envs_for_tests:make_set_order", "--frames", "300"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] other hash seeds" in out and f"diverged at frame {_first_coin_frame(300)}" in out
    assert "sort it first" in out  # the checklist line for this cause
