"""The shared episode-end rule of every mode."""

from __future__ import annotations

from interactive_gym.envs.stepping import step_with_limit

AGENTS = ("a", "b")


class ScriptedEnv:
    """Returns the terminations/truncations it is told to, with numpy-like truthy values."""

    def __init__(self, terminated: dict, truncated: dict) -> None:
        self.terminated, self.truncated = terminated, truncated

    def step(self, actions: dict) -> tuple:
        return ({a: [1] for a in AGENTS}, {"a": 1, "b": 0.5}, dict(self.terminated), dict(self.truncated),
                {"a": {"x": 1}})


def test_running_episode_is_not_done_and_flags_are_bools() -> None:
    result = step_with_limit(ScriptedEnv({"a": 0, "b": 0}, {"a": 0, "b": 0}), {"a": 1, "b": 2}, AGENTS, 5, 10)
    assert not result.episode_done
    assert result.terminated == {"a": False, "b": False} and result.truncated == {"a": False, "b": False}
    assert all(type(v) is bool for v in (*result.terminated.values(), *result.truncated.values()))
    assert result.rewards == {"a": 1, "b": 0.5} and result.infos == {"a": {"x": 1}}


def test_episode_ends_when_every_agent_is_done() -> None:
    one_done = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": False}), {}, AGENTS, 3, 10)
    assert not one_done.episode_done
    both = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": True}), {}, AGENTS, 3, 10)
    assert both.episode_done and both.truncated == {"a": False, "b": True}


def test_step_limit_truncates_every_agent_that_did_not_terminate() -> None:
    result = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": False}), {}, AGENTS, 10, 10)
    assert result.episode_done
    assert result.terminated == {"a": True, "b": False}
    assert result.truncated == {"a": False, "b": True}


def test_missing_agents_in_the_env_dicts_count_as_not_done() -> None:
    result = step_with_limit(ScriptedEnv({"a": True}, {}), {}, AGENTS, 1, 10)
    assert not result.episode_done
    limited = step_with_limit(ScriptedEnv({"a": True}, {}), {}, AGENTS, 10, 10)
    assert limited.truncated == {"a": False, "b": True}
