"""Tests for the Fruit Gatherers demo environment: rules, determinism, snapshots, and the greedy partner."""

from __future__ import annotations

import copy
import json
import random
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.envs.spaces import Discrete
from interactive_gym.rendering import Surface

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402
from gatherers import AGENTS, DOWN, LEFT, RIGHT, STAY, UP, FruitGatherers, greedy_policy  # noqa: E402


def env_with(a0: tuple[int, int], a1: tuple[int, int], fruits: list[tuple[int, int, bool]], seed: int = 0,
             **kwargs: int) -> FruitGatherers:
    """An env reset with ``seed`` and then arranged by hand."""
    env = FruitGatherers(**kwargs)
    env.reset(seed=seed)
    env.positions = {"agent_0": a0, "agent_1": a1}
    env.fruits = list(fruits)
    return env


def step(env: FruitGatherers, a0: int = STAY, a1: int = STAY) -> tuple:
    return env.step({"agent_0": a0, "agent_1": a1})


# -- construction and reset ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{"width": 2}, {"height": 2}, {"num_fruits": 0}, {"num_fruits": 62},
                                    {"width": 3, "height": 3, "num_fruits": 8}])
def test_bad_sizes(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="^FruitGatherers needs width.*height >= 3 and 1 <= num_fruits <= cells - 2$"):
        FruitGatherers(**kwargs)


def test_full_orchard_has_every_cell_taken() -> None:
    env = FruitGatherers(width=4, height=3, num_fruits=10)
    env.reset(seed=1)
    cells = {(x, y) for x, y, _ in env.fruits} | set(env.positions.values())
    assert len(cells) == 12


@pytest.mark.parametrize("width", [3, 4, 5, 9])
@pytest.mark.parametrize("height", [3, 4, 7])
def test_every_accepted_size_starts_the_gatherers_apart(width: int, height: int) -> None:
    try:
        env = FruitGatherers(width=width, height=height, num_fruits=1)
    except ValueError:
        return  # refusing a size is fine; accepting one that cannot work is not
    env.reset(seed=0)
    assert env.positions["agent_0"] != env.positions["agent_1"]


def test_spaces_and_agents() -> None:
    env = gatherers.make_env()
    assert env.possible_agents == ["agent_0", "agent_1"]
    assert env.action_space("agent_0") == Discrete(5)
    assert env.action_space("agent_1") == Discrete(5)
    assert (STAY, UP, DOWN, LEFT, RIGHT) == (0, 1, 2, 3, 4)


def test_make_env_passes_kwargs() -> None:
    env = gatherers.make_env(width=5, height=4, num_fruits=2, golden_every=0)
    assert (env.width, env.height, env.num_fruits, env.golden_every) == (5, 4, 2, 0)


def test_reset_layout() -> None:
    env = FruitGatherers()
    obs, infos = env.reset(seed=3)
    assert env.positions == {"agent_0": (1, 3), "agent_1": (7, 3)}
    assert env.t == 0 and env.scores == {"agent_0": 0, "agent_1": 0}
    assert env.agents == ["agent_0", "agent_1"]
    assert infos == {"agent_0": {}, "agent_1": {}}
    assert len(env.fruits) == 3
    cells = [(x, y) for x, y, _ in env.fruits]
    assert len(set(cells)) == 3
    assert not set(cells) & set(env.positions.values())
    assert not any(golden for _, _, golden in env.fruits)  # the 5th fruit is the first golden one
    assert env.grown == 3


def test_observations_layout() -> None:
    env = env_with((2, 3), (5, 1), [(0, 0, False), (4, 4, True)])
    obs = env._observations()
    assert obs["agent_0"] == [2, 3, 5, 1, 0, 0, 0, 4, 4, 1]
    assert obs["agent_1"] == [5, 1, 2, 3, 0, 0, 0, 4, 4, 1]


def test_reset_is_deterministic_per_seed_and_varies_across_seeds() -> None:
    layouts = []
    for seed in range(10):
        a, b = FruitGatherers(), FruitGatherers()
        assert a.reset(seed=seed) == b.reset(seed=seed)
        layouts.append(tuple(a.fruits))
    assert len(set(layouts)) > 5


def test_reset_without_seed_continues_the_rng() -> None:
    env = FruitGatherers()
    env.reset(seed=4)
    first = list(env.fruits)
    env.reset()
    twin = FruitGatherers()
    twin.reset(seed=4)
    twin.reset()
    assert env.fruits == twin.fruits
    assert env.fruits != first  # not reseeded: a new layout, drawn from the continuing RNG


# -- movement -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("action", "expected"), [(STAY, (4, 3)), (UP, (4, 2)), (DOWN, (4, 4)), (LEFT, (3, 3)),
                                                  (RIGHT, (5, 3))])
def test_moves(action: int, expected: tuple[int, int]) -> None:
    env = env_with((4, 3), (8, 6), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, action)
    assert env.positions["agent_0"] == expected
    assert env.positions["agent_1"] == (8, 6)
    assert env.t == 1


@pytest.mark.parametrize("action", [9, -1, 5])
def test_unknown_actions_stay(action: int) -> None:
    env = env_with((4, 3), (8, 6), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, action, action)
    assert env.positions == {"agent_0": (4, 3), "agent_1": (8, 6)}


def test_missing_action_stays() -> None:
    env = env_with((4, 3), (8, 6), [(0, 0, False), (1, 0, False), (2, 0, False)])
    env.step({"agent_1": LEFT})
    assert env.positions == {"agent_0": (4, 3), "agent_1": (7, 6)}


@pytest.mark.parametrize(("start", "action"), [((0, 3), LEFT), ((8, 3), RIGHT), ((4, 0), UP), ((4, 6), DOWN)])
def test_walls_stop_movement(start: tuple[int, int], action: int) -> None:
    env = env_with(start, (2, 5) if start != (2, 5) else (6, 5), [(0, 6, False), (1, 6, False), (8, 0, False)])
    step(env, action)
    assert env.positions["agent_0"] == start


def test_cannot_walk_into_the_other_gatherer() -> None:
    env = env_with((3, 3), (4, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, RIGHT, STAY)
    assert env.positions == {"agent_0": (3, 3), "agent_1": (4, 3)}


def test_swapping_places_is_blocked_for_both() -> None:
    env = env_with((3, 3), (4, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, RIGHT, LEFT)
    assert env.positions == {"agent_0": (3, 3), "agent_1": (4, 3)}


def test_agent_0_moves_first() -> None:
    # Both aim for (4, 3): agent_0 gets it.
    env = env_with((3, 3), (5, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, RIGHT, LEFT)
    assert env.positions == {"agent_0": (4, 3), "agent_1": (5, 3)}
    # agent_1 may follow into the cell agent_0 just left...
    env = env_with((4, 3), (5, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, LEFT, LEFT)
    assert env.positions == {"agent_0": (3, 3), "agent_1": (4, 3)}
    # ...but agent_0 cannot follow agent_1, which has not moved yet when agent_0 does.
    env = env_with((3, 3), (4, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    step(env, RIGHT, RIGHT)
    assert env.positions == {"agent_0": (3, 3), "agent_1": (5, 3)}


# -- fruit ------------------------------------------------------------------------------------------------------
def test_plain_fruit_scores_one_for_the_picker_and_regrows() -> None:
    env = env_with((3, 3), (7, 3), [(4, 3, False), (0, 0, False), (8, 6, False)], seed=2)
    obs, rewards, terms, truncs, infos = step(env, RIGHT)
    assert rewards == {"agent_0": 1.0, "agent_1": 0.0}
    assert env.scores == {"agent_0": 1, "agent_1": 0}
    assert infos == {"agent_0": {"score": 1}, "agent_1": {"score": 0}}
    assert terms == truncs == {"agent_0": False, "agent_1": False}
    assert len(env.fruits) == 3
    assert (4, 3, False) not in env.fruits
    new = env.fruits[-1]
    assert (new[0], new[1]) not in {(4, 3), (7, 3), (0, 0), (8, 6)}
    assert env.grown == 4


def test_both_pick_different_fruits_in_one_step() -> None:
    env = env_with((3, 3), (6, 3), [(4, 3, False), (5, 3, False), (0, 0, False)])
    _, rewards, *_ = step(env, RIGHT, LEFT)
    assert rewards == {"agent_0": 1.0, "agent_1": 1.0}
    assert len(env.fruits) == 3


def test_standing_still_on_nothing_scores_nothing() -> None:
    env = env_with((3, 3), (6, 3), [(0, 0, False), (1, 0, False), (2, 0, False)])
    _, rewards, *_ = step(env)
    assert rewards == {"agent_0": 0.0, "agent_1": 0.0}


def test_golden_fruit_needs_the_partner_adjacent() -> None:
    env = env_with((3, 3), (7, 3), [(4, 3, True), (0, 0, False), (8, 6, False)])
    _, rewards, *_ = step(env, RIGHT)
    assert rewards == {"agent_0": 0.0, "agent_1": 0.0}
    assert (4, 3, True) in env.fruits  # stays until the partner comes


def test_golden_fruit_with_partner_adjacent_scores_three_each() -> None:
    env = env_with((3, 3), (5, 3), [(4, 3, True), (0, 0, False), (8, 6, False)])
    _, rewards, *_ = step(env, RIGHT)
    assert rewards == {"agent_0": 3.0, "agent_1": 3.0}
    assert env.scores == {"agent_0": 3, "agent_1": 3}
    assert (4, 3, True) not in env.fruits and len(env.fruits) == 3


def test_golden_fruit_partner_arriving_in_the_same_step_counts() -> None:
    env = env_with((3, 3), (4, 5), [(4, 3, True), (0, 0, False), (8, 6, False)])
    _, rewards, *_ = step(env, RIGHT, UP)  # agent_1 ends at (4, 4), right below the fruit
    assert rewards == {"agent_0": 3.0, "agent_1": 3.0}


def test_golden_fruit_diagonal_partner_is_not_adjacent() -> None:
    env = env_with((3, 3), (5, 4), [(4, 3, True), (0, 0, False), (8, 6, False)])
    _, rewards, *_ = step(env, RIGHT)
    assert rewards == {"agent_0": 0.0, "agent_1": 0.0}


def test_golden_fruit_picked_by_agent_1() -> None:
    env = env_with((3, 3), (5, 3), [(4, 3, True), (0, 0, False), (8, 6, False)])
    env.positions = {"agent_0": (4, 2), "agent_1": (5, 3)}
    _, rewards, *_ = step(env, STAY, LEFT)
    assert rewards == {"agent_0": 3.0, "agent_1": 3.0}


def test_every_fifth_grown_fruit_is_golden() -> None:
    env = FruitGatherers(num_fruits=1)
    env.reset(seed=0)
    kinds = [env.fruits[0][2]]
    for _ in range(11):
        env.fruits = []
        env._grow_fruit()
        kinds.append(env.fruits[0][2])
    assert [i + 1 for i, golden in enumerate(kinds) if golden] == [5, 10]


def test_golden_every_zero_means_never() -> None:
    env = FruitGatherers(num_fruits=1, golden_every=0)
    env.reset(seed=0)
    for _ in range(12):
        env.fruits = []
        env._grow_fruit()
        assert env.fruits[0][2] is False


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10**6), actions=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), max_size=120))
def test_invariants_under_random_play(seed: int, actions: list[tuple[int, int]]) -> None:
    env = FruitGatherers()
    env.reset(seed=seed)
    totals = {a: 0.0 for a in AGENTS}
    for a0, a1 in actions:
        _, rewards, terms, truncs, _ = step(env, a0, a1)
        for agent in AGENTS:
            totals[agent] += rewards[agent]
        assert not any(terms.values()) and not any(truncs.values())
        positions = list(env.positions.values())
        assert positions[0] != positions[1]
        assert all(0 <= x < env.width and 0 <= y < env.height for x, y in positions)
        assert len(env.fruits) == env.num_fruits
        cells = [(x, y) for x, y, _ in env.fruits]
        assert len(set(cells)) == len(cells)
        # Only a golden fruit waiting for the partner can lie under a gatherer.
        assert all(golden for x, y, golden in env.fruits if (x, y) in positions)
    assert env.scores == {a: int(v) for a, v in totals.items()}
    assert env.t == len(actions)


# -- snapshots ----------------------------------------------------------------------------------------------------
def play(env: FruitGatherers, actions: list[tuple[int, int]]) -> list[tuple]:
    return [step(env, a0, a1) for a0, a1 in actions]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), prefix=st.integers(0, 40), rng_seed=st.integers(0, 1000))
def test_get_state_set_state_reproduces_the_future_exactly(seed: int, prefix: int, rng_seed: int) -> None:
    rng = random.Random(rng_seed)
    actions = [(rng.randrange(5), rng.randrange(5)) for _ in range(prefix + 80)]
    env = FruitGatherers()
    env.reset(seed=seed)
    play(env, actions[:prefix])
    state = env.get_state()
    future = play(env, actions[prefix:])
    end_state = env.get_state()

    # Same env object, rolled back.
    env.set_state(state)
    assert play(env, actions[prefix:]) == future
    assert env.get_state() == end_state

    # A fresh env, restored from a JSON round trip of the snapshot (what rollback peers exchange).
    other = FruitGatherers()
    other.reset(seed=seed + 1)
    other.set_state(json.loads(json.dumps(state)))
    assert play(other, actions[prefix:]) == future


def test_snapshot_is_independent_of_later_play() -> None:
    env = FruitGatherers()
    env.reset(seed=9)
    state = env.get_state()
    frozen = copy.deepcopy(state)
    play(env, [(RIGHT, LEFT)] * 10)
    assert state == frozen


def test_set_state_restores_every_field() -> None:
    env = FruitGatherers()
    env.reset(seed=1)
    play(env, [(RIGHT, LEFT)] * 5)
    state = env.get_state()
    other = FruitGatherers()
    other.set_state(state)
    assert (other.t, other.positions, other.fruits, other.scores, other.grown, other.agents) == (
        env.t, env.positions, env.fruits, env.scores, env.grown, env.agents)
    assert other.rng.getstate() == env.rng.getstate()
    assert all(isinstance(p, tuple) for p in other.positions.values())
    assert all(isinstance(f, tuple) and isinstance(f[2], bool) for f in other.fruits)


# -- greedy partner ---------------------------------------------------------------------------------------------
def test_greedy_walks_to_the_nearest_plain_fruit_horizontal_first() -> None:
    obs = [4, 3, 0, 0, 6, 5, 0, 1, 1, 0]  # fruits at (6, 5) plain (distance 4) and (1, 1) plain (distance 5)
    assert greedy_policy(obs, "agent_1") == RIGHT
    assert greedy_policy([6, 3, 0, 0, 6, 5, 0], "agent_1") == DOWN
    assert greedy_policy([6, 6, 0, 0, 6, 5, 0], "agent_1") == UP
    assert greedy_policy([7, 5, 0, 0, 6, 5, 0], "agent_1") == LEFT


def test_greedy_ties_are_broken_by_position() -> None:
    # (2, 3) and (6, 3) are both 2 away: the smaller (x, y) wins.
    assert greedy_policy([4, 3, 0, 0, 6, 3, 0, 2, 3, 0], "agent_1") == LEFT
    assert greedy_policy([4, 3, 0, 0, 2, 3, 0, 6, 3, 0], "agent_1") == LEFT


def test_greedy_ignores_golden_fruit_the_partner_is_not_on() -> None:
    assert greedy_policy([4, 3, 0, 0, 5, 3, 1, 0, 6, 0], "agent_1") == LEFT  # golden (5,3) ignored


def test_greedy_helps_with_golden_fruit_under_the_partner() -> None:
    # Partner at (2, 3) on a golden fruit; we are at (6, 3): walk to the nearest cell next to the partner, (3, 3).
    assert greedy_policy([6, 3, 2, 3, 2, 3, 1, 7, 3, 0], "agent_1") == LEFT
    # Already next to the partner: stay.
    assert greedy_policy([3, 3, 2, 3, 2, 3, 1, 7, 3, 0], "agent_1") == STAY


def test_greedy_stays_without_targets() -> None:
    assert greedy_policy([4, 3, 0, 0], "agent_1") == STAY
    assert greedy_policy([4, 3, 0, 0, 5, 5, 1], "agent_1") == STAY


def test_greedy_is_deterministic_and_valid_in_play() -> None:
    def run() -> list[int]:
        env = FruitGatherers()
        obs, _ = env.reset(seed=12)
        chosen = []
        for _ in range(100):
            action = greedy_policy(obs["agent_1"], "agent_1")
            chosen.append(action)
            obs, *_ = step(env, greedy_policy(obs["agent_0"], "agent_0"), action)
        return chosen

    first = run()
    assert first == run()
    assert set(first) <= {STAY, UP, DOWN, LEFT, RIGHT}


def test_two_greedy_gatherers_score() -> None:
    env = FruitGatherers()
    obs, _ = env.reset(seed=5)
    for _ in range(150):
        obs, *_ = step(env, greedy_policy(obs["agent_0"], "agent_0"), greedy_policy(obs["agent_1"], "agent_1"))
    assert sum(env.scores.values()) >= 5


# -- rendering helpers -------------------------------------------------------------------------------------------
def test_canvas_size() -> None:
    assert gatherers.canvas_size() == (9 * gatherers.CELL, 7 * gatherers.CELL + 40)
    assert gatherers.canvas_size(3, 4) == (3 * gatherers.CELL, 4 * gatherers.CELL + 40)


def test_render_draws_ground_agents_score_and_fruit() -> None:
    env = env_with((2, 3), (5, 1), [(0, 0, False), (4, 4, True), (8, 6, False)])
    env.scores = {"agent_0": 4, "agent_1": 7}
    surface = Surface(*gatherers.canvas_size())
    gatherers.render(env, surface)
    packet = surface.commit()
    objects = {obj["id"]: obj for obj in packet["objects"]}
    assert set(objects) == {"ground", "agent_0", "agent_1", "score"}
    assert objects["agent_0"]["x"] == 2 * gatherers.CELL + 6 and objects["agent_0"]["y"] == 3 * gatherers.CELL + 6
    assert "Blue: 4" in objects["score"]["text"] and "Pink: 7" in objects["score"]["text"]
    assert len(packet["transient"]) == 3


def test_obs_vector() -> None:
    assert gatherers.obs_vector([10, 5, 0]) == [1.0, 0.5, 0.0]
