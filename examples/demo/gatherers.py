"""Fruit Gatherers: the demo environment. Two gatherers share a small orchard and race to pick fruit.

A pure-Python, PettingZoo-parallel-style environment (no numpy, no gymnasium), so the very same file runs
on the server, in a participant's browser (Pyodide) and in peer-to-peer rollback mode. It follows the
determinism checklist: all randomness comes from ``self.rng`` (seeded in ``reset``), the state returned by
``get_state`` includes the RNG state, there is no wall clock and no hidden global.

Actions (per agent): 0 stay, 1 up, 2 down, 3 left, 4 right. Picking a fruit scores 1 for the picker; a new
fruit grows on a random free cell. Both gatherers standing next to each other on a golden fruit score 3 each
(the one cooperative twist, so the human-AI game is more than a race).
"""

from __future__ import annotations

import random
from typing import Any

from interactive_gym.envs.spaces import Discrete

STAY, UP, DOWN, LEFT, RIGHT = range(5)
MOVES = {STAY: (0, 0), UP: (0, -1), DOWN: (0, 1), LEFT: (-1, 0), RIGHT: (1, 0)}
AGENTS = ("agent_0", "agent_1")
CELL = 48
COLORS = {"agent_0": "#4cc9f0", "agent_1": "#f72585"}


class FruitGatherers:
    """The orchard.

    Args:
        width: Columns of the grid.
        height: Rows of the grid.
        num_fruits: Fruits on the grid at any time (eaten ones regrow elsewhere).
        golden_every: Every n-th fruit that grows is golden (needs both gatherers adjacent to pick).
    """

    metadata = {"name": "fruit_gatherers_v1"}

    def __init__(self, width: int = 9, height: int = 7, num_fruits: int = 3, golden_every: int = 5) -> None:
        if width < 4 or height < 3 or num_fruits < 1 or num_fruits > width * height - 2:
            raise ValueError("FruitGatherers needs width >= 4, height >= 3 and 1 <= num_fruits <= cells - 2")
        self.width = width
        self.height = height
        self.num_fruits = num_fruits
        self.golden_every = golden_every
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.rng = random.Random(0)
        self.t = 0
        self.positions: dict[str, tuple[int, int]] = {}
        self.fruits: list[tuple[int, int, bool]] = []
        self.scores = {a: 0 for a in AGENTS}
        self.grown = 0
        self._spaces = {a: Discrete(5) for a in AGENTS}

    def action_space(self, agent: str) -> Discrete:
        return self._spaces[agent]

    # -- dynamics ---------------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = random.Random(seed)
        self.t = 0
        self.agents = list(AGENTS)
        self.positions = {"agent_0": (1, self.height // 2), "agent_1": (self.width - 2, self.height // 2)}
        self.scores = {a: 0 for a in AGENTS}
        self.fruits = []
        self.grown = 0
        for _ in range(self.num_fruits):
            self._grow_fruit()
        return self._observations(), {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.t += 1
        rewards = {a: 0.0 for a in AGENTS}
        occupied = set(self.positions.values())
        for agent in AGENTS:  # fixed order: agent_0 moves first, so collisions resolve the same everywhere
            dx, dy = MOVES.get(int(actions.get(agent, STAY)), (0, 0))
            x, y = self.positions[agent]
            nx, ny = min(max(x + dx, 0), self.width - 1), min(max(y + dy, 0), self.height - 1)
            if (nx, ny) != (x, y) and (nx, ny) not in occupied:
                occupied.discard((x, y))
                occupied.add((nx, ny))
                self.positions[agent] = (nx, ny)
        for fruit in list(self.fruits):
            fx, fy, golden = fruit
            pickers = [a for a in AGENTS if self.positions[a] == (fx, fy)]
            if not pickers:
                continue
            if golden:
                partner = [a for a in AGENTS if a not in pickers][0]
                px, py = self.positions[partner]
                if abs(px - fx) + abs(py - fy) != 1:
                    continue  # a golden fruit needs the partner right next to it
                for a in AGENTS:
                    rewards[a] += 3.0
            else:
                rewards[pickers[0]] += 1.0
            self.fruits.remove(fruit)
            self._grow_fruit()
        for a in AGENTS:
            self.scores[a] += int(rewards[a])
        no = {a: False for a in AGENTS}
        return self._observations(), rewards, dict(no), dict(no), {a: {"score": self.scores[a]} for a in AGENTS}

    def _grow_fruit(self) -> None:
        taken = set(self.positions.values()) | {(x, y) for x, y, _ in self.fruits}
        free = [(x, y) for y in range(self.height) for x in range(self.width) if (x, y) not in taken]
        x, y = free[self.rng.randrange(len(free))]
        self.grown += 1
        self.fruits.append((x, y, self.golden_every > 0 and self.grown % self.golden_every == 0))

    def _observations(self) -> dict[str, list[int]]:
        fruit_cells = [v for x, y, g in self.fruits for v in (x, y, int(g))]
        obs = {}
        for agent in AGENTS:
            other = AGENTS[1 - AGENTS.index(agent)]
            obs[agent] = [*self.positions[agent], *self.positions[other], *fruit_cells]
        return obs

    # -- rollback support (exact, cheap snapshot of everything that evolves) ---------------------------
    def get_state(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "positions": {a: list(p) for a, p in self.positions.items()},
            "fruits": [list(f) for f in self.fruits],
            "scores": dict(self.scores),
            "grown": self.grown,
            "agents": list(self.agents),
            "rng": self.rng.getstate(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.t = state["t"]
        self.positions = {a: (p[0], p[1]) for a, p in state["positions"].items()}
        self.fruits = [(f[0], f[1], bool(f[2])) for f in state["fruits"]]
        self.scores = dict(state["scores"])
        self.grown = state["grown"]
        self.agents = list(state["agents"])
        rng_state = state["rng"]
        self.rng.setstate((rng_state[0], tuple(rng_state[1]), rng_state[2]))


def make_env(**kwargs: Any) -> FruitGatherers:
    """Factory the experiment names (``env_creator``)."""
    return FruitGatherers(**kwargs)


def render(env: FruitGatherers, surface: Any) -> None:
    """Draws the orchard on a Surface sized ``env.width * CELL`` by ``env.height * CELL + 40``."""
    surface.rect(0, 0, env.width * CELL, env.height * CELL, color="#1b2d1b", id="ground", depth=0)
    for x, y, golden in env.fruits:
        surface.circle(x * CELL + CELL / 2, y * CELL + CELL / 2, CELL * 0.3,
                       color="#ffd60a" if golden else "#e63946", depth=1)
    for agent in AGENTS:
        x, y = env.positions[agent]
        surface.rect(x * CELL + 6, y * CELL + 6, CELL - 12, CELL - 12, color=COLORS[agent], id=agent, depth=2)
    surface.text(8, env.height * CELL + 8,
                 f"Blue: {env.scores['agent_0']}   Pink: {env.scores['agent_1']}   t={env.t}",
                 size=20, color="#ffffff", id="score", depth=3)


def canvas_size(width: int = 9, height: int = 7) -> tuple[int, int]:
    """Surface size that fits :func:`render` for a grid of ``width`` x ``height`` cells."""
    return width * CELL, height * CELL + 40


def greedy_policy(observation: list[int], agent_id: str) -> int:
    """A scripted partner: helps with a golden fruit the partner stands on, else walks to the nearest plain fruit.

    Deterministic (ties broken by position), so every peer computes the same action.
    """
    x, y, ox, oy = observation[0:4]
    fruits = [(observation[i], observation[i + 1], observation[i + 2]) for i in range(4, len(observation), 3)]
    targets = [(fx, fy) for fx, fy, golden in fruits if not golden]
    if any(golden and (fx, fy) == (ox, oy) for fx, fy, golden in fruits):
        targets = [(ox + dx, oy + dy) for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    if not targets:
        return STAY
    tx, ty = min(targets, key=lambda c: (abs(c[0] - x) + abs(c[1] - y), c))
    if tx != x:
        return RIGHT if tx > x else LEFT
    if ty != y:
        return DOWN if ty > y else UP
    return STAY


def obs_vector(observation: list[int]) -> list[float]:
    """Flat float features for an ONNX policy (positions scaled to about 0..1)."""
    return [v / 10.0 for v in observation]
