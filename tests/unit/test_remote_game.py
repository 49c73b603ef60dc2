"""Tests for ServerGame: keys to actions, taps, stale updates, disconnects, AI policies, episodes, records, packets."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium
import pytest

from interactive_gym.envs.agent_runtime import AgentPolicyError, random_action
from interactive_gym.envs.spaces import Discrete
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_runner import GameRunner
from interactive_gym.server.remote_game import HumanInput, ServerGame, StepOutcome
from interactive_gym.server.tick_scheduler import TickScheduler

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402
from gatherers import DOWN, LEFT, RIGHT, STAY, UP  # noqa: E402

CONTROLS = {"ArrowUp": UP, "ArrowDown": DOWN, "ArrowLeft": LEFT, "ArrowRight": RIGHT}
RECORD_FIELDS = {"t", "observation", "actions", "rewards", "terminated", "truncated", "info", "keys", "server_ts"}


def make_scene(**overrides: Any) -> GymScene:
    width, height = gatherers.canvas_size()
    kwargs: dict[str, Any] = dict(env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                                  height=height, controls=CONTROLS, default_action=STAY,
                                  policy_mapping={"agent_0": "human", "agent_1": "random"}, max_steps=50,
                                  num_episodes=1)
    kwargs.update(overrides)
    scene = GymScene("orchard", **kwargs)
    scene.check()
    return scene


def make_game(seed: int = 42, humans: dict[str, str] | None = None, **overrides: Any) -> ServerGame:
    game = ServerGame("game-1", make_scene(**overrides), humans or {"agent_0": "alice"}, game_seed=seed)
    game.start_episode()
    return game


def two_humans(**overrides: Any) -> ServerGame:
    return make_game(humans={"agent_0": "alice", "agent_1": "bob"},
                     policy_mapping={"agent_0": "human", "agent_1": "human"}, **overrides)


# -- HumanInput and random_action ----------------------------------------------------------------------------
def test_human_input_follows_the_shared_tick_rule() -> None:
    human = HumanInput()
    assert human.held == [] and human.seq == -1 and human.connected
    human.keys.apply_held(["a", "b"])
    human.keys.apply_held(["b"])  # a tapped between ticks, b still held
    assert human.held == ["b"]
    assert human.keys.sample() == ["a", "b"]
    assert human.keys.sample() == ["b"]


def test_random_action_respects_start_and_rng() -> None:
    space = Discrete(3, start=5)
    draws = [random_action(space, random.Random(i)) for i in range(60)]
    assert set(draws) == {5, 6, 7}
    assert random_action(space, random.Random(1)) == random_action(space, random.Random(1))
    assert random_action(gymnasium.spaces.Discrete(2), random.Random(0)) in (0, 1)


def test_random_action_needs_a_discrete_space() -> None:
    with pytest.raises(AgentPolicyError, match="'random' policy needs a discrete action space"):
        random_action(gymnasium.spaces.Box(0, 1, shape=(2,)), random.Random(0))


# -- start ------------------------------------------------------------------------------------------------------
def test_start_episode_resets_with_the_episode_seed() -> None:
    game = ServerGame("g", make_scene(), {"agent_0": "alice"}, game_seed=42)
    packet = game.start_episode()
    assert (game.episode, game.t) == (0, 0)
    assert game.seed == game.scene.episode_seed(42, 0)
    reference, _ = gatherers.make_env().reset(seed=game.seed)
    assert game.observations == reference
    assert game.episode_rewards == {"agent_0": 0.0, "agent_1": 0.0}
    assert packet["full"] is True
    assert packet["size"] == list(gatherers.canvas_size())
    ids = {obj["id"] for obj in packet["objects"]}
    assert {"ground", "agent_0", "agent_1", "score"} <= ids
    assert len(packet["transient"]) == 3  # the three fruits


def test_agents_names_for_the_data() -> None:
    assert make_game().agents == {"agent_0": "alice", "agent_1": "random"}
    greedy = make_game(policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy})
    assert greedy.agents == {"agent_0": "alice", "agent_1": "greedy_policy"}
    assert two_humans().agents == {"agent_0": "alice", "agent_1": "bob"}


# -- keys to actions ---------------------------------------------------------------------------------------
def test_no_keys_plays_the_default_action() -> None:
    outcome = two_humans().tick()
    assert outcome.record["actions"] == {"agent_0": STAY, "agent_1": STAY}
    assert outcome.record["keys"] == {"agent_0": [], "agent_1": []}


def test_held_keys_act_every_tick() -> None:
    game = two_humans()
    assert game.set_keys("agent_0", ["ArrowUp"], 1) is True
    assert game.set_keys("agent_1", ["ArrowLeft"], 1) is True
    for _ in range(3):
        record = game.tick().record
        assert record["actions"] == {"agent_0": UP, "agent_1": LEFT}
        assert record["keys"] == {"agent_0": ["ArrowUp"], "agent_1": ["ArrowLeft"]}


def test_most_recent_key_wins() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowLeft", "ArrowUp"], 1)
    assert game.tick().record["actions"]["agent_0"] == UP
    game.set_keys("agent_0", ["ArrowUp", "ArrowLeft"], 2)
    assert game.tick().record["actions"]["agent_0"] == LEFT


def test_keys_are_cleaned_and_normalised() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["q", 3, None, "Left", "x" * 40], 1)
    record = game.tick().record
    assert record["keys"]["agent_0"] == ["ArrowLeft"]
    assert record["actions"]["agent_0"] == LEFT


def test_a_tap_between_ticks_counts_for_exactly_one_tick() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowDown"], 1)
    game.set_keys("agent_0", [], 2)  # released before the tick
    first = game.tick().record
    assert first["actions"]["agent_0"] == DOWN
    assert first["keys"]["agent_0"] == ["ArrowDown"]
    second = game.tick().record
    assert second["actions"]["agent_0"] == STAY
    assert second["keys"]["agent_0"] == []


def test_a_tap_while_holding_another_key() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowLeft"], 1)
    assert game.tick().record["actions"]["agent_0"] == LEFT
    game.set_keys("agent_0", ["ArrowLeft", "ArrowUp"], 2)
    game.set_keys("agent_0", ["ArrowLeft"], 3)
    record = game.tick().record
    assert record["keys"]["agent_0"] == ["ArrowLeft", "ArrowUp"]
    assert record["actions"]["agent_0"] == UP
    assert game.tick().record["actions"]["agent_0"] == LEFT


def test_a_held_key_is_not_a_tap_again() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowLeft"], 1)
    game.tick()
    game.set_keys("agent_0", ["ArrowLeft"], 2)
    game.set_keys("agent_0", [], 3)  # released; it was already held, so nothing new to count
    assert game.tick().record["actions"]["agent_0"] == STAY


def test_stale_updates_are_ignored() -> None:
    game = two_humans()
    assert game.set_keys("agent_0", ["ArrowRight"], 5) is True
    assert game.set_keys("agent_0", ["ArrowLeft"], 4) is False
    assert game.set_keys("agent_0", ["ArrowLeft"], 5) is False
    assert game.inputs["agent_0"].held == ["ArrowRight"]
    assert game.tick().record["actions"]["agent_0"] == RIGHT
    assert game.set_keys("agent_0", [], 6) is True
    assert game.tick().record["actions"]["agent_0"] == STAY


def test_disconnected_human_plays_the_default_action() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowUp"], 1)
    game.set_keys("agent_1", ["ArrowDown"], 1)
    game.set_connected("agent_0", False)
    record = game.tick().record
    assert record["actions"] == {"agent_0": STAY, "agent_1": DOWN}
    assert record["keys"]["agent_0"] == []
    game.set_connected("agent_0", True)
    assert game.inputs["agent_0"].connected
    game.set_keys("agent_0", ["ArrowRight"], 2)
    assert game.tick().record["actions"]["agent_0"] == RIGHT


def test_taps_do_not_survive_a_new_episode() -> None:
    game = two_humans(num_episodes=2)
    game.set_keys("agent_0", ["ArrowDown"], 1)
    game.set_keys("agent_0", [], 2)
    game.start_episode()
    assert game.tick().record["actions"]["agent_0"] == STAY


# -- AI policies -----------------------------------------------------------------------------------------------
def random_actions(seed: int, ticks: int = 40) -> list[int]:
    game = make_game(seed=seed)
    return [game.tick().record["actions"]["agent_1"] for _ in range(ticks)]


def test_random_policy_is_deterministic_per_seed() -> None:
    first = random_actions(7)
    assert first == random_actions(7)
    assert set(first) <= {0, 1, 2, 3, 4}
    assert len(set(first)) > 1
    assert first != random_actions(8)


def test_callable_policy_gets_the_current_observation() -> None:
    calls: list[tuple[Any, str]] = []

    def policy(observation: Any, agent_id: str) -> int:
        calls.append((list(observation), agent_id))
        return RIGHT

    game = make_game(policy_mapping={"agent_0": "human", "agent_1": policy})
    at_reset = list(game.observations["agent_1"])
    record = game.tick().record
    assert record["actions"]["agent_1"] == RIGHT
    after_first = list(game.observations["agent_1"])
    game.tick()
    assert calls == [(at_reset, "agent_1"), (after_first, "agent_1")]
    assert at_reset != after_first  # agent_1 moved right, so the policy saw a new observation


# -- steps, episodes and records ---------------------------------------------------------------------------------
def test_record_fields_and_values() -> None:
    game = two_humans()
    game.set_keys("agent_0", ["ArrowRight"], 1)
    observed = game.observations
    before = time.time()
    outcome = game.tick()
    after = time.time()
    assert isinstance(outcome, StepOutcome)
    record = outcome.record
    assert set(record) == RECORD_FIELDS
    assert record["t"] == 0
    assert record["observation"] == observed
    assert record["actions"] == {"agent_0": RIGHT, "agent_1": STAY}
    assert set(record["rewards"]) == {"agent_0", "agent_1"}
    assert all(type(r) is float for r in record["rewards"].values())
    assert record["terminated"] == {"agent_0": False, "agent_1": False}
    assert record["truncated"] == {"agent_0": False, "agent_1": False}
    assert record["info"] == {"agent_0": {"score": 0}, "agent_1": {"score": 0}}
    assert before <= record["server_ts"] <= after
    json.dumps(record)  # plain data the storage layer can serialise
    assert game.tick().record["t"] == 1


def test_keys_are_recorded_for_humans_only() -> None:
    record = make_game().tick().record
    assert set(record["keys"]) == {"agent_0"}
    assert set(record["actions"]) == {"agent_0", "agent_1"}


def test_episode_truncates_at_max_steps_and_game_ends_after_num_episodes() -> None:
    game = two_humans(max_steps=5, num_episodes=2)
    seeds = [game.seed]
    for episode in range(2):
        outcomes = [game.tick() for _ in range(5)]
        for outcome in outcomes[:4]:
            assert not outcome.episode_done and not outcome.game_done
            assert outcome.record["truncated"] == {"agent_0": False, "agent_1": False}
        last = outcomes[-1]
        assert last.episode_done
        assert last.record["t"] == 4
        assert last.record["truncated"] == {"agent_0": True, "agent_1": True}
        assert last.record["terminated"] == {"agent_0": False, "agent_1": False}
        assert last.game_done is (episode == 1)
        if episode == 0:
            game.start_episode()
            assert (game.episode, game.t) == (1, 0)
            seeds.append(game.seed)
    assert seeds == [game.scene.episode_seed(42, 0), game.scene.episode_seed(42, 1)]
    assert seeds[0] != seeds[1]


def test_one_episode_game_is_done_at_its_end() -> None:
    game = make_game(max_steps=3)
    assert [o.game_done for o in (game.tick(), game.tick(), game.tick())] == [False, False, True]


def test_episode_rewards_accumulate_and_reset() -> None:
    game = two_humans(max_steps=200, num_episodes=2)
    total = {"agent_0": 0.0, "agent_1": 0.0}
    rng = random.Random(3)
    for seq in range(1, 150):
        game.set_keys("agent_0", [rng.choice(list(CONTROLS))], seq)
        game.set_keys("agent_1", [rng.choice(list(CONTROLS))], seq)
        for agent, reward in game.tick().record["rewards"].items():
            total[agent] += reward
    assert game.episode_rewards == total
    assert sum(total.values()) > 0  # random walking over 150 steps picks some fruit
    game.start_episode()
    assert game.episode_rewards == {"agent_0": 0.0, "agent_1": 0.0}


def test_terminated_episode_is_not_marked_truncated() -> None:
    def noop_render(env: Any, surface: Any) -> None:
        surface.rect(0, 0, 10, 10, id="box")

    scene = GymScene("cart", env_creator=lambda: gymnasium.make("CartPole-v1"), render_fn=noop_render, width=100,
                     height=100, controls={"ArrowLeft": 0, "ArrowRight": 1}, max_steps=500)
    scene.check()
    game = ServerGame("c", scene, {"agent_0": "p"}, game_seed=1)
    game.start_episode()
    game.set_keys("agent_0", ["ArrowLeft"], 1)
    for _ in range(200):
        outcome = game.tick()
        if outcome.episode_done:
            break
    assert outcome.episode_done and outcome.game_done
    assert outcome.record["terminated"] == {"agent_0": True}
    assert outcome.record["truncated"] == {"agent_0": False}
    assert game.t < 500


def test_same_seed_and_inputs_reproduce_the_game() -> None:
    def play(seed: int) -> list[dict]:
        game = make_game(seed=seed, max_steps=60)
        rng = random.Random(0)
        records = []
        for seq in range(60):
            game.set_keys("agent_0", [rng.choice(list(CONTROLS))], seq)
            record = dict(game.tick().record)
            record.pop("server_ts")
            records.append(record)
        return records

    assert play(5) == play(5)


# -- render packets --------------------------------------------------------------------------------------------
def test_every_tick_produces_a_diff_packet() -> None:
    game = two_humans()
    first = game.surface.snapshot()["seq"]
    game.set_keys("agent_0", ["ArrowUp"], 1)
    packets = [game.tick().packet for _ in range(3)]
    assert [p["seq"] for p in packets] == [first + 1, first + 2, first + 3]
    assert all(p["full"] is False for p in packets)
    moved = [obj for obj in packets[0].get("objects", []) if obj["id"] == "agent_0"]
    assert moved and "y" in moved[0]
    json.dumps(packets)


def test_new_episode_starts_with_a_full_packet() -> None:
    game = two_humans(num_episodes=2, max_steps=2)
    game.tick()
    game.tick()
    packet = game.start_episode()
    assert packet["full"] is True
    assert packet["size"] == list(gatherers.canvas_size())


# -- a render failure keeps the step ---------------------------------------------------------------------------
def render_failing_at(call: int) -> Any:
    """gatherers.render that raises on its ``call``-th use (1 = the episode's first packet)."""
    calls: list[int] = []

    def render(env: Any, surface: Any) -> None:
        calls.append(1)
        if len(calls) == call:
            raise ValueError("sprite 'tree' missing")
        gatherers.render(env, surface)

    return render


def test_a_step_is_recorded_before_rendering_and_render_errors_propagate() -> None:
    game = make_game(render_fn=render_failing_at(3), humans={"agent_0": "alice", "agent_1": "bob"},
                     policy_mapping={"agent_0": "human", "agent_1": "human"})
    assert game.tick().packet is not None
    game.set_keys("agent_0", ["ArrowUp"], 1)
    observed = game.observations
    outcome = game.step()
    assert outcome.packet is None  # not drawn yet
    record = outcome.record
    assert set(record) == RECORD_FIELDS and record["t"] == 1 and record["observation"] == observed
    assert record["actions"] == {"agent_0": UP, "agent_1": STAY} and record["keys"]["agent_0"] == ["ArrowUp"]
    assert game.t == 2 and game.observations != observed  # the step happened
    with pytest.raises(ValueError, match="sprite 'tree' missing"):
        game.render()  # the researcher's own exception, with its traceback (preflight names render_fn from it)
    assert outcome.record == record  # rendering cannot touch the record


def test_tick_is_step_then_render() -> None:
    game = make_game(render_fn=render_failing_at(2))
    with pytest.raises(ValueError, match="sprite 'tree' missing"):
        game.tick()
    assert game.t == 1


class StepWriter:
    """The DataWriter calls GameRunner makes, keeping the step records."""

    def __init__(self) -> None:
        self.steps: list[Any] = []
        self.ends: list[str] = []

    async def begin_episode(self, **fields: Any) -> int:
        return 1

    def append_steps(self, episode_id: int, steps: list[Any]) -> None:
        self.steps.extend(steps)

    async def end_episode(self, episode_id: int, *, status: str, meta: dict[str, Any]) -> None:
        self.ends.append(status)


def test_a_render_failure_in_a_running_game_stores_the_step_then_ends_the_game_as_an_error() -> None:
    game = ServerGame("game-r", make_scene(render_fn=render_failing_at(4), fps=30), {"agent_0": "alice"}, game_seed=1)
    writer = StepWriter()
    ended: list[str] = []
    renders: list[int] = []

    async def emit(event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None:
        if event == "render":
            renders.append(data["t"])

    async def finished(runner: GameRunner, reason: str) -> None:
        ended.append(reason)

    async def main() -> None:
        clock = [0.0]

        async def sleep(delay: float) -> None:
            clock[0] += delay
            await asyncio.sleep(0)

        ticker = TickScheduler(30, time=lambda: clock[0], sleep=sleep)
        await GameRunner(game, emit, writer, finished, ticker).run()
        await ticker.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # Playwright may own this thread's loop
        pool.submit(asyncio.run, main()).result()
    assert ended == ["error"] and writer.ends == ["partial"]
    assert renders == [1, 2]  # ticks 1 and 2 rendered; tick 3's render failed
    assert [step.t for step in writer.steps] == [0, 1, 2]  # ... and tick 3's step (t=2) is stored all the same
