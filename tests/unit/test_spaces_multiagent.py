"""Tests for the pure Discrete space and the single-agent -> parallel multi-agent adapter."""

from __future__ import annotations

import math
import random

import gymnasium
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from interactive_gym.envs.multiagent import (
    SINGLE_AGENT_ID,
    SingleAgentAdapter,
    action_space_of,
    as_multiagent,
    base_env,
    is_multiagent,
)
from interactive_gym.envs.spaces import Discrete, space_contains


# -- Discrete ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [0, -1, 1.0, "3", True, None])
def test_discrete_refuses_bad_n(n: object) -> None:
    with pytest.raises(ValueError, match="Discrete\\(n\\) needs a positive integer n"):
        Discrete(n)  # type: ignore[arg-type]


@pytest.mark.parametrize("start", [1.5, "0", False, None])
def test_discrete_refuses_bad_start(start: object) -> None:
    with pytest.raises(ValueError, match="Discrete\\(start\\) must be an integer"):
        Discrete(3, start=start)  # type: ignore[arg-type]


def test_discrete_contains_its_integers_only() -> None:
    space = Discrete(3, start=-1)
    assert [v for v in range(-5, 5) if space.contains(v)] == [-1, 0, 1]


@pytest.mark.parametrize("value", [0, 4, np.int64(2), np.int32(0), 2.0])
def test_discrete_contains_integer_values(value: object) -> None:
    assert Discrete(5).contains(value)


@pytest.mark.parametrize(
    "value", [True, False, 5, -1, 1.5, "1", None, [1], math.nan, math.inf, -math.inf, np.float64(0.5), object()]
)
def test_discrete_does_not_contain_other_values(value: object) -> None:
    assert Discrete(5).contains(value) is False


def test_discrete_sample_uses_the_given_rng_and_stays_inside() -> None:
    space = Discrete(4, start=10)
    first = [space.sample(random.Random(7)) for _ in range(3)]
    assert len(set(first)) == 1  # same seed, same draw
    rng = random.Random(1)
    draws = [space.sample(rng) for _ in range(400)]
    assert set(draws) == {10, 11, 12, 13}
    rng_a, rng_b = random.Random(99), random.Random(99)
    assert [space.sample(rng_a) for _ in range(50)] == [space.sample(rng_b) for _ in range(50)]


def test_discrete_sample_does_not_touch_the_global_rng() -> None:
    random.seed(5)
    expected = random.random()
    random.seed(5)
    Discrete(10).sample(random.Random(3))
    assert random.random() == expected


def test_discrete_repr_eq_hash() -> None:
    assert repr(Discrete(5)) == "Discrete(5)"
    assert repr(Discrete(5, start=2)) == "Discrete(5, start=2)"
    assert Discrete(5) == Discrete(5, 0)
    assert Discrete(5) != Discrete(5, 1)
    assert Discrete(5) != Discrete(4)
    assert Discrete(5) != "Discrete(5)"
    assert len({Discrete(5), Discrete(5), Discrete(5, 1)}) == 2


@given(n=st.integers(1, 50), start=st.integers(-20, 20), value=st.integers(-100, 100))
def test_discrete_contains_matches_range(n: int, start: int, value: int) -> None:
    assert Discrete(n, start).contains(value) == (start <= value < start + n)


# -- space_contains -------------------------------------------------------------------------------------------------
def test_space_contains_accepts_python_ints_for_gymnasium_discrete() -> None:
    space = gymnasium.spaces.Discrete(3)
    assert space_contains(space, 2) is True
    assert space_contains(space, 3) is False
    assert space_contains(space, np.int64(1)) is True


def test_space_contains_treats_errors_as_not_contained() -> None:
    class Grumpy:
        def contains(self, value: object) -> bool:
            raise RuntimeError("cannot judge")

    assert space_contains(Grumpy(), 1) is False


def test_space_contains_with_pure_discrete() -> None:
    assert space_contains(Discrete(2), 1) is True
    assert space_contains(Discrete(2), 2) is False


def test_space_contains_refuses_non_spaces() -> None:
    with pytest.raises(TypeError, match="is not an action space"):
        space_contains(42, 1)


# -- multi-agent adapter ------------------------------------------------------------------------------------------
class ParallelEnv:
    """A minimal parallel-style env with per-agent action spaces."""

    def __init__(self) -> None:
        self.possible_agents = ["a", "b"]
        self._spaces = {"a": Discrete(2), "b": Discrete(3)}

    def action_space(self, agent: str) -> Discrete:
        return self._spaces[agent]


def test_is_multiagent() -> None:
    assert is_multiagent(ParallelEnv())
    assert not is_multiagent(gymnasium.make("CartPole-v1"))


def test_as_multiagent_returns_parallel_envs_themselves() -> None:
    env = ParallelEnv()
    assert as_multiagent(env) is env
    assert base_env(env) is env


def test_cartpole_through_the_adapter() -> None:
    inner = gymnasium.make("CartPole-v1")
    env = as_multiagent(inner)
    assert isinstance(env, SingleAgentAdapter)
    assert env.possible_agents == [SINGLE_AGENT_ID] == ["agent_0"]
    assert base_env(env) is inner
    assert env.unwrapped is inner
    assert env.action_space("agent_0") is inner.action_space
    assert env.observation_space("agent_0") is inner.observation_space

    obs, info = env.reset(seed=3)
    assert set(obs) == set(info) == {"agent_0"}
    direct_obs, _ = gymnasium.make("CartPole-v1").reset(seed=3)
    np.testing.assert_array_equal(obs["agent_0"], direct_obs)

    steps = 0
    while env.agents:
        obs, rewards, terms, truncs, infos = env.step({"agent_0": steps % 2})
        steps += 1
        assert set(obs) == set(rewards) == set(terms) == set(truncs) == set(infos) == {"agent_0"}
        assert type(rewards["agent_0"]) is float
        assert type(terms["agent_0"]) is bool and type(truncs["agent_0"]) is bool
        assert steps < 600
    assert terms["agent_0"] or truncs["agent_0"]
    assert env.agents == []
    env.reset(seed=4)
    assert env.agents == ["agent_0"]


def test_adapter_matches_the_wrapped_env_step_for_step() -> None:
    a, b = gymnasium.make("CartPole-v1"), as_multiagent(gymnasium.make("CartPole-v1"), agent_id="pole")
    obs_a, _ = a.reset(seed=11)
    obs_b, _ = b.reset(seed=11)
    np.testing.assert_array_equal(obs_a, obs_b["pole"])
    for action in [0, 1, 1, 0, 1]:
        oa, ra, ta, tra, _ = a.step(action)
        ob, rb, tb, trb, _ = b.step({"pole": action})
        np.testing.assert_array_equal(oa, ob["pole"])
        assert (ra, ta, tra) == (rb["pole"], tb["pole"], trb["pole"])


def test_adapter_custom_agent_id() -> None:
    env = SingleAgentAdapter(gymnasium.make("CartPole-v1"), agent_id="player")
    assert env.possible_agents == ["player"]
    obs, _ = env.reset(seed=0)
    assert list(obs) == ["player"]


# -- action_space_of ---------------------------------------------------------------------------------------------
def test_action_space_of_callable() -> None:
    env = ParallelEnv()
    assert action_space_of(env, "b") == Discrete(3)


def test_action_space_of_adapter() -> None:
    inner = gymnasium.make("CartPole-v1")
    assert action_space_of(as_multiagent(inner), "agent_0") is inner.action_space


def test_action_space_of_dict_attribute() -> None:
    class DictEnv:
        possible_agents = ["x"]
        action_space = {"x": Discrete(4)}

    assert action_space_of(DictEnv(), "x") == Discrete(4)


def test_action_space_of_action_spaces_dict() -> None:
    class SpacesEnv:
        possible_agents = ["x", "y"]
        action_spaces = {"x": Discrete(4), "y": Discrete(6)}

    assert action_space_of(SpacesEnv(), "y") == Discrete(6)


def test_action_space_of_shared_attribute() -> None:
    class SharedEnv:
        possible_agents = ["x", "y"]
        action_space = Discrete(2)

    assert action_space_of(SharedEnv(), "y") == Discrete(2)


def test_action_space_of_gymnasium_env_attribute() -> None:
    env = gymnasium.make("CartPole-v1")
    assert action_space_of(env, "anything") is env.action_space


def test_action_space_of_missing() -> None:
    class Bare:
        possible_agents = ["x"]

    with pytest.raises(TypeError, match="Bare declares no action space for agent 'x'"):
        action_space_of(Bare(), "x")
