"""The env state adapter: snapshots with RNG state, both state paths, single-agent envs, episodes, inputs."""

from __future__ import annotations

import random

import gymnasium
import pytest
from envs_for_tests import TagEnv

from interactive_gym.envs.input_codecs import DiscreteCodec
from interactive_gym.envs.multiagent import as_multiagent
from interactive_gym.envs.state import EnvAdapterError, EnvStateAdapter, episode_seed


@pytest.mark.parametrize("with_state_api", [True, False])
def test_save_load_round_trip_restores_everything(with_state_api: bool) -> None:
    adapter = EnvStateAdapter(TagEnv(with_state_api=with_state_api), seed=4)
    assert adapter.has_state_api is with_state_api
    env = adapter.env
    for frame in range(10):
        adapter.advance(frame, [b"\x02", b"\x04"])
    saved = adapter.save_state()
    checksum = adapter.checksum(saved)
    global_draw = random.random()  # the global RNG is part of the snapshot too
    for frame in range(10, 40):
        adapter.advance(frame, [b"\x01", b"\x03"])
    adapter.load_state(saved)
    assert adapter.env is env  # restored in place: references held elsewhere stay valid
    assert adapter.checksum(adapter.save_state()) == checksum
    assert random.random() == global_draw


def test_episode_end_resets_with_the_derived_seed() -> None:
    adapter = EnvStateAdapter(TagEnv(episode_length=5), seed=7)
    ended = [adapter.advance(f, [b"\x00", b"\x00"]) for f in range(12)]
    assert ended == [None, None, None, None, 0, None, None, None, None, 1, None, None]
    assert adapter.episode == 2
    fresh = TagEnv(episode_length=5)
    fresh.reset(seed=episode_seed(7, 2))
    assert adapter.env.coin == fresh.coin
    assert len({episode_seed(7, e) for e in range(100)}) == 100


def test_numpy_rng_of_gymnasium_env_is_in_the_snapshot() -> None:
    adapter = EnvStateAdapter(gymnasium.make("CartPole-v1"), seed=3)
    assert not adapter.multi_agent and adapter.agents == ["agent_0"]
    saved = adapter.save_state()
    adapter.advance(0, [b"\x01"])
    draw = adapter.env.unwrapped.np_random.random()
    adapter.load_state(saved)
    adapter.advance(0, [b"\x01"])
    assert adapter.env.unwrapped.np_random.random() == draw


def test_state_api_env_with_np_random_keeps_generator_state() -> None:
    import numpy as np

    class WithNumpy(TagEnv):
        def reset(self, seed=None, options=None):  # type: ignore[no-untyped-def]
            self.np_random = np.random.default_rng(seed)
            return super().reset(seed=seed, options=options)

    adapter = EnvStateAdapter(WithNumpy(), seed=1)
    saved = adapter.save_state()
    first = adapter.env.np_random.random()
    adapter.load_state(saved)
    assert adapter.env.np_random.random() == first
    assert saved[3] is not None


def test_single_agent_env_through_the_leads_multiagent_wrapper() -> None:
    adapter = EnvStateAdapter(as_multiagent(gymnasium.make("MountainCar-v0")), seed=2)
    assert adapter.multi_agent and adapter.input_size == 1
    saved = adapter.save_state()
    for frame in range(5):
        adapter.advance(frame, [b"\x02"])
    moved = adapter.checksum(adapter.save_state())
    adapter.load_state(saved)
    for frame in range(5):
        adapter.advance(frame, [b"\x02"])
    assert adapter.checksum(adapter.save_state()) == moved


def test_isolated_global_random_does_not_leak_between_adapters() -> None:
    class UsesGlobal(TagEnv):
        def step(self, actions):  # type: ignore[no-untyped-def]
            self.coin = [random.randrange(self.size), self.coin[1]]
            return super().step(actions)

    a = EnvStateAdapter(UsesGlobal(), seed=1, isolate_global_random=True)
    b = EnvStateAdapter(UsesGlobal(), seed=1, isolate_global_random=True)
    outside = random.getstate()
    for frame in range(20):  # interleaved, like two peers in one process
        a.advance(frame, [b"\x01", b"\x02"])
        b.advance(frame, [b"\x01", b"\x02"])
    assert random.getstate() == outside
    assert a.checksum(a.save_state()) == b.checksum(b.save_state())


def test_bad_envs_and_inputs() -> None:
    class NoSpace:
        possible_agents = ["a"]

        def reset(self, seed=None, options=None):  # type: ignore[no-untyped-def]
            return {}, {}

    with pytest.raises(EnvAdapterError, match="action space"):
        EnvStateAdapter(NoSpace())
    adapter = EnvStateAdapter(NoSpace(), input_codecs=[DiscreteCodec(3)])
    assert adapter.decode([b"\xff"]) == {"a": 0}  # out-of-range input decodes to the default action
    with pytest.raises(EnvAdapterError, match="one per agent"):
        EnvStateAdapter(NoSpace(), input_codecs=[DiscreteCodec(3), DiscreteCodec(3)])
    assert adapter.encode_action(0, 2) == b"\x02"
