"""AgentRuntime: the one way AI agents choose in every mode (call styles, frame skip, seeded rng, random, ONNX)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from interactive_gym.envs.agent_runtime import (
    AgentPolicy,
    AgentPolicyError,
    AgentRuntime,
    CallStyle,
    agent_rng,
    call_style,
    random_action,
)
from interactive_gym.envs.spaces import Discrete


# -- call styles ------------------------------------------------------------------------------------------------
def obs_only(observation): return 1
def obs_agent(observation, agent_id): return 1
def obs_agent_rng(observation, agent_id, rng): return 1
def obs_rng(observation, rng): return 1
def obs_kw_rng(observation, *, rng): return 1
def obs_optional_agent(observation, agent_id=None): return 1
def obs_agent_optional_rng(observation, agent_id, rng=None): return 1
def varargs(*args): return 1
def obs_varargs(observation, *rest): return 1
def obs_kwargs(observation, **options): return 1


@pytest.mark.parametrize(("fn", "style"), [
    (obs_only, CallStyle(with_agent=False, with_rng=False)),
    (obs_agent, CallStyle(with_agent=True, with_rng=False)),
    (obs_agent_rng, CallStyle(with_agent=True, with_rng=True)),
    (obs_rng, CallStyle(with_agent=False, with_rng=True)),
    (obs_kw_rng, CallStyle(with_agent=False, with_rng=True)),
    (obs_optional_agent, CallStyle(with_agent=False, with_rng=False)),
    (obs_agent_optional_rng, CallStyle(with_agent=True, with_rng=True)),
    (varargs, CallStyle(with_agent=True, with_rng=False)),
    (obs_varargs, CallStyle(with_agent=True, with_rng=False)),
    (obs_kwargs, CallStyle(with_agent=False, with_rng=False)),
    (lambda observation: 0, CallStyle(with_agent=False, with_rng=False)),  # server mode takes any callable
    (len, CallStyle(with_agent=False, with_rng=False)),
])
def test_call_style_is_read_from_the_signature(fn: Any, style: CallStyle) -> None:
    assert call_style(fn) == style


def test_an_unreadable_signature_is_called_with_observation_and_agent() -> None:
    class Opaque:
        __signature__ = "not a signature"  # inspect.signature raises TypeError on this

        def __call__(self, *args: Any) -> int:
            return len(args)

    assert call_style(Opaque()) == CallStyle(with_agent=True, with_rng=False)


def no_args(): return 1
def three_args(observation, agent_id, extra): return 1
def required_keyword(observation, *, mode): return 1
def positional_only_rng(observation, agent_id, rng, /): return 1


@pytest.mark.parametrize(("fn", "message"), [
    (no_args, "takes no observation"),
    (three_args, r"needs arguments \['observation', 'agent_id', 'extra'\]"),
    (required_keyword, r"needs arguments \['observation', 'mode'\]"),
    (positional_only_rng, r"needs arguments \['observation', 'agent_id', 'rng'\]"),
    (42, "a policy must be a function"),
])
def test_policies_the_runtime_cannot_call_are_refused_with_the_fix(fn: Any, message: str) -> None:
    with pytest.raises(AgentPolicyError, match=message):
        call_style(fn)


@pytest.mark.parametrize("frame_skip", [0, -1, 1.5, True, "2", None])
def test_frame_skip_must_be_a_positive_integer(frame_skip: Any) -> None:
    with pytest.raises(AgentPolicyError, match="frame_skip must be an integer >= 1"):
        AgentPolicy.function(obs_only, frame_skip)
    with pytest.raises(AgentPolicyError, match="frame_skip must be an integer >= 1"):
        AgentPolicy.external(frame_skip)


# -- calling ----------------------------------------------------------------------------------------------------
class Recorder:
    """Policies that log how they were called."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def one(self, observation):
        self.calls.append(("one", observation))
        return observation * 10

    def two(self, observation, agent_id):
        self.calls.append(("two", observation, agent_id))
        return observation * 10 + 1

    def with_rng(self, observation, agent_id, rng):
        self.calls.append(("rng", observation, agent_id, rng.random()))
        return rng.randrange(1000)


def run_frames(runtime: AgentRuntime, frames: int, seed: int = 7) -> list[dict[str, Any]]:
    runtime.start_episode(seed)
    return [runtime.actions(t, {"a": t, "b": t, "c": t}) for t in range(frames)]


def test_each_call_style_gets_exactly_its_arguments() -> None:
    rec = Recorder()
    runtime = AgentRuntime({"a": AgentPolicy.function(rec.one), "b": AgentPolicy.function(rec.two),
                            "c": AgentPolicy.function(rec.with_rng)})
    actions = run_frames(runtime, 2)
    assert [a["a"] for a in actions] == [0, 10] and [a["b"] for a in actions] == [1, 11]
    assert [c[0] for c in rec.calls] == ["one", "two", "rng"] * 2  # the given agent order, every frame
    assert rec.calls[0] == ("one", 0) and rec.calls[1] == ("two", 0, "b")
    expected = agent_rng(7, "c")
    assert rec.calls[2][:3] == ("rng", 0, "c") and rec.calls[2][3] == expected.random()
    assert actions[0]["c"] == expected.randrange(1000)


@pytest.mark.parametrize("skip", [1, 2, 3, 5])
def test_frame_skip_holds_the_action_and_calls_on_multiples_of_skip(skip: int) -> None:
    rec = Recorder()
    runtime = AgentRuntime({"a": AgentPolicy.function(rec.one, frame_skip=skip)})
    actions = [a["a"] for a in run_frames(runtime, 12)]
    assert [obs for _, obs in rec.calls] == list(range(0, 12, skip))
    assert actions == [(t - t % skip) * 10 for t in range(12)]


def test_an_agent_that_joins_late_chooses_at_once_then_on_its_skip_grid() -> None:
    rec = Recorder()
    runtime = AgentRuntime({"a": AgentPolicy.function(rec.one, frame_skip=3)})
    runtime.start_episode(1)
    seen = [runtime.actions(t, {"a": t}, live=[] if t < 2 else ["a"]) for t in range(8)]
    assert seen[:2] == [{}, {}]  # not live: no action, and the policy is not called
    assert [obs for _, obs in rec.calls] == [2, 3, 6]
    assert [s["a"] for s in seen[2:]] == [20, 30, 30, 30, 60, 60]


def test_a_new_episode_forgets_held_actions_and_reseeds() -> None:
    rec = Recorder()
    runtime = AgentRuntime({"c": AgentPolicy.function(rec.with_rng, frame_skip=4)})
    first = [a["c"] for a in run_frames(runtime, 6, seed=3)]
    again = [a["c"] for a in run_frames(runtime, 6, seed=3)]
    other = [a["c"] for a in run_frames(runtime, 6, seed=4)]
    assert first == again
    assert first != other
    assert len(rec.calls) == 6  # t = 0 and 4 in each of the three episodes


def test_generators_are_per_agent_and_follow_the_documented_seed() -> None:
    def draw(observation, agent_id, rng):
        return rng.randrange(10**9)

    runtime = AgentRuntime({"x": AgentPolicy.function(draw), "y": AgentPolicy.function(draw)})
    runtime.start_episode(11)
    actions = [runtime.actions(t, {"x": t, "y": t}) for t in range(3)]
    for agent in ("x", "y"):
        reference = random.Random(f"11:{agent}")
        assert [a[agent] for a in actions] == [reference.randrange(10**9) for _ in range(3)]
    assert [a["x"] for a in actions] != [a["y"] for a in actions]


def test_random_policy_draws_uniformly_from_the_agents_generator() -> None:
    runtime = AgentRuntime({"r": AgentPolicy.random(Discrete(4, start=2))})
    runtime.start_episode(5)
    draws = [runtime.actions(t, {})["r"] for t in range(400)]
    reference = agent_rng(5, "r")
    assert draws == [2 + reference.randrange(4) for _ in range(400)]
    assert set(draws) == {2, 3, 4, 5}


def test_random_needs_a_discrete_space() -> None:
    class Box:
        shape = (2,)

    with pytest.raises(AgentPolicyError, match="'random' policy needs a discrete action space"):
        AgentPolicy.random(Box())
    with pytest.raises(AgentPolicyError, match="'random' policy needs a discrete action space"):
        random_action(Box(), random.Random(0))


def test_external_actions_follow_the_same_frame_skip_rule() -> None:
    runtime = AgentRuntime({"onnx": AgentPolicy.external(frame_skip=2)})
    runtime.start_episode(0)
    assert runtime.due("onnx", 0) and runtime.due("onnx", 1)  # nothing held yet
    with pytest.raises(RuntimeError, match="set_external_action"):
        runtime.actions(0, {})
    runtime.set_external("onnx", 3)
    assert runtime.actions(0, {}) == {"onnx": 3}
    assert not runtime.due("onnx", 1) and runtime.due("onnx", 2)
    assert runtime.actions(1, {}) == {"onnx": 3}
    runtime.start_episode(1)
    assert runtime.due("onnx", 1)  # a new episode holds nothing


def test_set_external_is_only_for_external_agents() -> None:
    runtime = AgentRuntime({"a": AgentPolicy.function(obs_only)})
    with pytest.raises(KeyError, match="not an externally chosen"):
        runtime.set_external("a", 1)
    with pytest.raises(KeyError, match="not an externally chosen"):
        runtime.set_external("nobody", 1)


def test_actions_need_an_episode_and_an_observation_for_each_live_agent() -> None:
    runtime = AgentRuntime({"a": AgentPolicy.function(obs_only)})
    with pytest.raises(RuntimeError, match="start_episode"):
        runtime.actions(0, {"a": 1})
    runtime.start_episode(0)
    with pytest.raises(AgentPolicyError, match="no observation for agent 'a'"):
        runtime.actions(0, {})


def test_a_policy_exception_reaches_the_caller() -> None:
    def broken(observation):
        raise ZeroDivisionError("policy bug")

    runtime = AgentRuntime({"a": AgentPolicy.function(broken)})
    runtime.start_episode(0)
    with pytest.raises(ZeroDivisionError, match="policy bug"):
        runtime.actions(0, {"a": 0})


def test_snapshot_and_restore_replay_the_same_actions() -> None:
    def draw(observation, agent_id, rng):
        return rng.randrange(10**6)

    runtime = AgentRuntime({"c": AgentPolicy.function(draw, frame_skip=3), "r": AgentPolicy.random(Discrete(9))})
    runtime.start_episode(21)
    for t in range(4):
        runtime.actions(t, {"c": t})
    saved = runtime.snapshot()
    ahead = [runtime.actions(t, {"c": t}) for t in range(4, 12)]
    runtime.restore(saved)
    assert [runtime.actions(t, {"c": t}) for t in range(4, 12)] == ahead
    runtime.restore(saved)  # the snapshot itself was not changed by being restored and replayed
    assert [runtime.actions(t, {"c": t}) for t in range(4, 12)] == ahead
