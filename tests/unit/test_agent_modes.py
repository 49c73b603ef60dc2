"""One table of AI policies run by all three callers: server mode (ServerGame), browser mode (BrowserGameHost)
and p2p mode (P2PGameHost's simulation). For the same episode seed and observations each must produce the
actions an independent reference computes from the documented rule (frame skip, ``f"{seed}:{agent}"``
generators, one- or two-argument calls), and the same step rows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from interactive_gym.browser.host import BrowserGameHost
from interactive_gym.browser.p2p_host import P2PGameHost
from interactive_gym.controls import KeyMapping
from interactive_gym.envs.spaces import Discrete
from interactive_gym.netcode.requests import InputStatus
from interactive_gym.policies import PythonPolicy
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.remote_game import ServerGame

CONTROLS = {"ArrowUp": 1, "ArrowDown": 2}
STEPS = 24
AGENTS = ["h0", "h1", "bot"]
MODULE = __name__.rsplit(".", 1)[-1]  # how the refs below name this module (tests/unit is on sys.path)


class Line:
    """Three agents on a line; the observation is every position plus a seed-dependent phase."""

    def __init__(self) -> None:
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.pos = {a: 0 for a in AGENTS}
        self.phase = 0

    def action_space(self, agent: str) -> Discrete:
        return Discrete(3)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.pos = {a: ((seed or 0) + i) % 7 for i, a in enumerate(AGENTS)}
        self.phase = (seed or 0) % 3
        return self._obs(), {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            self.pos[agent] += (0, 1, -1)[action]
        self.phase = (self.phase + 1) % 3
        done = {a: False for a in AGENTS}
        return self._obs(), {a: float(self.pos[a]) for a in AGENTS}, done, dict(done), {a: {} for a in AGENTS}

    def _obs(self) -> dict[str, list[int]]:
        return {a: [self.pos[b] for b in AGENTS] + [self.phase] for a in AGENTS}


def make_line() -> Line:
    return Line()


def render_line(env: Line, surface: Any) -> None:
    for i, agent in enumerate(AGENTS):
        surface.rect(10 * (env.pos[agent] % 20), 20 * i, 8, 8, color="#ffffff", id=agent)


def stay(observation: list[int], agent_id: str) -> int:
    """Plays the browser-mode stand-in for the second human: the default action, like a human holding nothing."""
    return 0


def bot_one(observation: list[int]) -> int:
    return sum(observation) % 3


def bot_two(observation: list[int], agent_id: str) -> int:
    return (observation[3] + len(agent_id)) % 3


def bot_rng(observation: list[int], agent_id: str, rng: random.Random) -> int:
    return rng.randrange(3)


def bot_rng_only(observation: list[int], rng: random.Random) -> int:
    return (observation[2] + rng.randrange(3)) % 3


# (policy, frame_skip, how the reference calls it: (fn, observation, rng) -> action)
Call = Callable[[Callable[..., int], list[int], random.Random], int]
CASES: list[tuple[Callable[..., int], int, Call]] = [
    (bot_one, 1, lambda fn, obs, rng: fn(obs)),
    (bot_two, 1, lambda fn, obs, rng: fn(obs, "bot")),
    (bot_rng, 1, lambda fn, obs, rng: fn(obs, "bot", rng=rng)),
    (bot_rng, 3, lambda fn, obs, rng: fn(obs, "bot", rng=rng)),
    (bot_rng_only, 2, lambda fn, obs, rng: fn(obs, rng=rng)),
    (bot_one, 4, lambda fn, obs, rng: fn(obs)),
]
IDS = [f"{fn.__name__}-skip{skip}" for fn, skip, _ in CASES]


def reference_actions(fn: Callable[..., int], skip: int, call: Call, seed: int) -> list[int]:
    """The bot's actions by the documented rule, written out independently of the runtime."""
    env = Line()
    obs, _ = env.reset(seed=seed)
    rng = random.Random(f"{seed}:bot")
    actions = []
    held = None
    for t in range(STEPS):
        if t % skip == 0:
            held = call(fn, obs["bot"], rng)
        actions.append(held)
        obs, *_ = env.step({"h0": 0, "h1": 0, "bot": held})
    return actions


def comparable(row: dict[str, Any], drop: tuple[str, ...]) -> dict[str, Any]:
    """A row's shared columns as JSON values (server rows keep raw values; the browser modes' are JSON)."""
    return json.loads(json.dumps({k: v for k, v in row.items() if k not in drop}))


def server_rows(fn: Callable[..., int], skip: int, mapping_order: list[str] | None = None) -> tuple[int, list]:
    policy: Any = fn if skip == 1 else PythonPolicy(fn, frame_skip=skip)
    mapping = {"h0": "human", "h1": "human", "bot": policy}
    if mapping_order is not None:
        mapping = {agent: mapping[agent] for agent in mapping_order}
    scene = GymScene("line", env_creator=make_line, render_fn=render_line, width=400, height=100,
                     controls=CONTROLS, default_action=0, policy_mapping=mapping, max_steps=STEPS)
    scene.check()
    game = ServerGame("g", scene, {"h0": "p0", "h1": "p1"}, game_seed=123)
    game.start_episode()
    return game.seed, [game.tick().record for _ in range(STEPS)]


def config(fn: Callable[..., int], skip: int, seed: int, mode: str) -> dict[str, Any]:
    bot = {"kind": "python", "ref": f"{MODULE}:{fn.__name__}", "frame_skip": skip}
    if mode == "browser":
        agents = {"h0": {"kind": "human"}, "h1": {"kind": "python", "ref": f"{MODULE}:stay", "frame_skip": 1},
                  "bot": bot}
    else:
        agents = {"h0": {"kind": "human", "player": 0}, "h1": {"kind": "human", "player": 1}, "bot": bot}
    return {
        "scene_id": "line", "mode": mode, "fps": 30, "num_episodes": 1, "max_steps": STEPS,
        "canvas": {"width": 400, "height": 100, "background": "#000000"},
        "bundle": {"hash": "h" * 64, "factory": f"{MODULE}:make_line", "render": f"{MODULE}:render_line",
                   "env_kwargs": {}},
        "controls": KeyMapping(CONTROLS, default_action=0).to_config(),
        "agents": agents, "seeds": [seed],
        "p2p": {"input_delay": 2, "prediction_window": 8, "num_players": 2, "disconnect_timeout_ms": 5000,
                "checksum_interval": 20, "faults": None},
    }


def browser_rows(fn: Callable[..., int], skip: int, seed: int) -> list[dict[str, Any]]:
    host = BrowserGameHost.from_config(config(fn, skip, seed, "browser"))
    host.reset(seed)
    for _ in range(STEPS):
        host.frame("")
    assert host.episode_over
    return host.steps


def p2p_rows(fn: Callable[..., int], skip: int, seed: int, rollback_at: int | None = None) -> list[dict[str, Any]]:
    """The simulation's rows, optionally after rolling back ``rollback_at`` frames' worth and re-simulating."""
    sim = P2PGameHost.from_config(config(fn, skip, seed, "p2p"), 0).sim
    idle = [(bytes(sim.input_size), InputStatus.CONFIRMED)] * 2
    saved = None
    for frame in range(STEPS):
        if frame == rollback_at:
            saved = sim.save_state()
        sim.advance(frame, idle)
    if saved is not None:
        assert rollback_at is not None
        sim.load_state(saved)
        for frame in range(rollback_at, STEPS):
            sim.advance(frame, idle)
    assert sim.finished
    return [sim.rows[frame][1] for frame in range(STEPS)]


@pytest.mark.parametrize(("fn", "skip", "call"), CASES, ids=IDS)
def test_every_mode_plays_the_reference_actions_and_builds_the_same_rows(fn: Any, skip: int, call: Call) -> None:
    seed, server = server_rows(fn, skip)
    browser = browser_rows(fn, skip, seed)
    p2p = p2p_rows(fn, skip, seed)
    expected = reference_actions(fn, skip, call, seed)
    for rows in (server, browser, p2p):
        assert [row["actions"]["bot"] for row in rows] == expected
        assert [row["actions"]["h0"] for row in rows] == [0] * STEPS
    assert len(set(expected)) > 1, "the table's policies must vary their actions to prove anything"
    server_cols = [comparable(r, ("keys", "server_ts")) for r in server]
    assert server_cols == [comparable(r, ("keys", "client_ts")) for r in browser]
    assert server_cols == [comparable(r, ("keys", "client_ts", "inputs")) for r in p2p]


@pytest.mark.parametrize(("fn", "skip", "call"), CASES, ids=IDS)
def test_a_p2p_rollback_replays_held_actions_and_generators(fn: Any, skip: int, call: Call) -> None:
    seed = 321
    straight = p2p_rows(fn, skip, seed)
    rolled = p2p_rows(fn, skip, seed, rollback_at=STEPS // 2 + 1)  # mid frame-skip window for skips 2, 3, 4
    drop = ("client_ts", "inputs")
    assert [comparable(r, drop) for r in rolled] == [comparable(r, drop) for r in straight]
    assert [r["actions"]["bot"] for r in straight] == reference_actions(fn, skip, call, seed)


def test_server_mode_follows_the_env_order_whatever_order_the_mapping_is_written_in() -> None:
    seed, in_order = server_rows(bot_rng, 3)
    seed_again, reversed_mapping = server_rows(bot_rng, 3, mapping_order=["bot", "h1", "h0"])
    assert seed == seed_again
    assert [list(r["actions"]) for r in reversed_mapping] == [AGENTS] * STEPS
    drop = ("server_ts",)
    assert [comparable(r, drop) for r in reversed_mapping] == [comparable(r, drop) for r in in_order]
