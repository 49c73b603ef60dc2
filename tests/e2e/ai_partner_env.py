"""A three-agent game for the p2p AI-partner browser test: two humans and an ONNX partner on a small grid.

Shipped into Pyodide with the scene (env, render and the partner's ``obs_to_input``), so it imports only what runs
in the browser.
"""

from __future__ import annotations

from typing import Any

from interactive_gym.envs.spaces import Discrete

AGENTS = ("h0", "h1", "partner")
SIZE = 9
MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # stay, up, down, left, right
CELL = 24


class Grid:
    """Everyone moves on a 9 x 9 torus; the reward is minus the distance to the centre."""

    def __init__(self) -> None:
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.pos = {a: (0, 0) for a in AGENTS}
        self.t = 0

    def action_space(self, agent: str) -> Discrete:
        return Discrete(len(MOVES))

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        base = seed or 0
        self.pos = {a: ((base + 3 * i) % SIZE, (base // SIZE + 2 * i) % SIZE) for i, a in enumerate(AGENTS)}
        self.t = 0
        return self._obs(), {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            dx, dy = MOVES[action]
            x, y = self.pos[agent]
            self.pos[agent] = ((x + dx) % SIZE, (y + dy) % SIZE)
        self.t += 1
        done = dict.fromkeys(AGENTS, False)
        rewards = {a: -float(abs(self.pos[a][0] - 4) + abs(self.pos[a][1] - 4)) for a in AGENTS}
        return self._obs(), rewards, done, dict(done), {a: {} for a in AGENTS}

    def _obs(self) -> dict[str, list[int]]:
        flat = [c for a in AGENTS for c in self.pos[a]]
        return {a: [*flat, self.t] for a in AGENTS}


def make_env() -> Grid:
    return Grid()


def render(env: Grid, surface: Any) -> None:
    colours = {"h0": "#4aa3ff", "h1": "#ff6fb5", "partner": "#ffd24a"}
    for agent in AGENTS:
        x, y = env.pos[agent]
        surface.rect(x * CELL + 2, y * CELL + 2, CELL - 4, CELL - 4, color=colours[agent], id=agent)


def obs_vector(observation: list[int]) -> list[float]:
    """The partner network's input: positions scaled to [0, 1) and the step / 100."""
    return [v / SIZE for v in observation[:-1]] + [observation[-1] / 100]


INPUTS = 2 * len(AGENTS) + 1
