"""The environments the server capacity benchmark can load (``--env``), each with its render function and keys.

- ``demo``: Fruit Gatherers from ``examples/demo`` (list observations, a few fruits, scores).
- ``grid``: :class:`CoinGrid` below, a light two-agent grid game with *dict* observations, the kind of load the
  issue compared against another framework with: two walkers race for one coin on an 8 x 8 grid.

Both are pure Python with seeded randomness only, so a run is reproducible from its seed.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interactive_gym.envs.spaces import Discrete

ROOT = Path(__file__).resolve().parents[1]

STAY, UP, DOWN, LEFT, RIGHT = range(5)
MOVES = {STAY: (0, 0), UP: (0, -1), DOWN: (0, 1), LEFT: (-1, 0), RIGHT: (1, 0)}
GRID_AGENTS = ("agent_0", "agent_1")
GRID_CELL = 40
GRID_COLORS = {"agent_0": "#4cc9f0", "agent_1": "#f72585"}


class CoinGrid:
    """Two walkers on a ``size`` x ``size`` grid; whoever steps on the coin scores 1 and it reappears elsewhere.

    Observations are dicts per agent: ``{"self": [x, y], "partner": [x, y], "coin": [x, y], "t": t}``.
    Actions: 0 stay, 1 up, 2 down, 3 left, 4 right. Walkers may share a cell (no collision rule).

    Args:
        size: Cells per side (at least 3).
    """

    metadata = {"name": "coin_grid_v1"}

    def __init__(self, size: int = 8) -> None:
        if size < 3:
            raise ValueError(f"CoinGrid needs size >= 3, got {size}")
        self.size = size
        self.possible_agents = list(GRID_AGENTS)
        self.agents = list(GRID_AGENTS)
        self.rng = random.Random(0)
        self.t = 0
        self.positions: dict[str, tuple[int, int]] = {}
        self.coin = (0, 0)
        self.scores = {a: 0 for a in GRID_AGENTS}
        self._spaces = {a: Discrete(5) for a in GRID_AGENTS}

    def action_space(self, agent: str) -> Discrete:
        return self._spaces[agent]

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = random.Random(seed)
        self.t = 0
        self.agents = list(GRID_AGENTS)
        self.positions = {"agent_0": (0, 0), "agent_1": (self.size - 1, self.size - 1)}
        self.scores = {a: 0 for a in GRID_AGENTS}
        self._place_coin()
        return self._observations(), {a: {} for a in GRID_AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.t += 1
        rewards = {a: 0.0 for a in GRID_AGENTS}
        for agent in GRID_AGENTS:
            dx, dy = MOVES.get(int(actions.get(agent, STAY)), (0, 0))
            x, y = self.positions[agent]
            self.positions[agent] = (min(max(x + dx, 0), self.size - 1), min(max(y + dy, 0), self.size - 1))
        for agent in GRID_AGENTS:  # fixed order: agent_0 picks first when both arrive together
            if self.positions[agent] == self.coin:
                rewards[agent] = 1.0
                self.scores[agent] += 1
                self._place_coin()
                break
        no = {a: False for a in GRID_AGENTS}
        return self._observations(), rewards, dict(no), dict(no), {a: {"score": self.scores[a]} for a in GRID_AGENTS}

    def _place_coin(self) -> None:
        taken = set(self.positions.values())
        free = [(x, y) for y in range(self.size) for x in range(self.size) if (x, y) not in taken]
        self.coin = free[self.rng.randrange(len(free))]

    def _observations(self) -> dict[str, dict[str, Any]]:
        obs = {}
        for index, agent in enumerate(GRID_AGENTS):
            partner = GRID_AGENTS[1 - index]
            obs[agent] = {"self": list(self.positions[agent]), "partner": list(self.positions[partner]),
                          "coin": list(self.coin), "t": self.t}
        return obs


def make_grid(**kwargs: Any) -> CoinGrid:
    return CoinGrid(**kwargs)


def render_grid(env: CoinGrid, surface: Any) -> None:
    """Draws the grid on a Surface of ``grid_canvas_size(env.size)``."""
    side = env.size * GRID_CELL
    surface.rect(0, 0, side, side, color="#202030", id="floor", depth=0)
    cx, cy = env.coin
    surface.circle(cx * GRID_CELL + GRID_CELL / 2, cy * GRID_CELL + GRID_CELL / 2, GRID_CELL * 0.3,
                   color="#ffd60a", id="coin", depth=1)
    for agent in GRID_AGENTS:
        x, y = env.positions[agent]
        surface.rect(x * GRID_CELL + 4, y * GRID_CELL + 4, GRID_CELL - 8, GRID_CELL - 8, color=GRID_COLORS[agent],
                     id=agent, depth=2)
    surface.text(6, side + 6, f"{env.scores['agent_0']} : {env.scores['agent_1']}", size=18, color="#ffffff",
                 id="score", depth=3)


def grid_canvas_size(size: int = 8) -> tuple[int, int]:
    return size * GRID_CELL, size * GRID_CELL + 32


@dataclass(frozen=True)
class BenchEnv:
    """What a benchmark game scene needs from an environment.

    Attributes:
        name: The ``--env`` value.
        description: For the JSON report.
        make_env: The env factory (``env_creator``).
        render: ``render(env, surface)``.
        size: Canvas ``(width, height)``.
        controls: Key -> action.
        default_action: The action with no key held.
    """

    name: str
    description: str
    make_env: Callable[..., Any]
    render: Callable[[Any, Any], None]
    size: tuple[int, int]
    controls: dict[str, int]
    default_action: int


def _demo() -> BenchEnv:
    demo_dir = str(ROOT / "examples" / "demo")
    if demo_dir not in sys.path:
        sys.path.insert(0, demo_dir)
    import gatherers

    return BenchEnv("demo", "examples/demo/gatherers.py: Fruit Gatherers, list observations", gatherers.make_env,
                    gatherers.render, gatherers.canvas_size(),
                    {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
                     "ArrowRight": gatherers.RIGHT}, gatherers.STAY)


def _grid() -> BenchEnv:
    return BenchEnv("grid", "benchmarks/server_capacity_envs.py: CoinGrid 8x8, dict observations", make_grid,
                    render_grid, grid_canvas_size(),
                    {"ArrowUp": UP, "ArrowDown": DOWN, "ArrowLeft": LEFT, "ArrowRight": RIGHT}, STAY)


ENVS: dict[str, Callable[[], BenchEnv]] = {"demo": _demo, "grid": _grid}


def bench_env(name: str) -> BenchEnv:
    """The benchmark env called ``name``.

    Raises:
        ValueError: an unknown name (the message lists the known ones).
    """
    factory = ENVS.get(name)
    if factory is None:
        raise ValueError(f"unknown --env {name!r}; choose one of {', '.join(ENVS)}")
    return factory()
