"""A heavier pure-Python two-agent environment for the netcode benchmark: a swarm of particles.

Two agents steer attractors; every step moves 400 particles under both attractors' pull, friction, wall bounces
and a little seeded noise, then scores particles near each attractor. Pure Python (runs in Pyodide), seeded,
with an exact get_state()/set_state(). One step costs a few hundred microseconds in CPython, ten to twenty times
the demo's, which is closer to a physics-style game.
"""

from __future__ import annotations

import random
from typing import Any

MOVES = ((0.0, 0.0), (0.0, -1.0), (0.0, 1.0), (-1.0, 0.0), (1.0, 0.0))
AGENTS = ("agent_0", "agent_1")


class Discrete:
    """Minimal discrete action space (``n`` actions)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.start = 0


class Swarm:
    """Particles pulled by two player-controlled attractors."""

    def __init__(self, particles: int = 400, size: float = 100.0) -> None:
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.count = particles
        self.size = size
        self.rng = random.Random(0)
        self.px: list[float] = []
        self.py: list[float] = []
        self.vx: list[float] = []
        self.vy: list[float] = []
        self.attractors = [[25.0, 50.0], [75.0, 50.0]]
        self.scores = [0, 0]
        self.t = 0

    def action_space(self, agent: str) -> Discrete:
        return Discrete(5)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.rng = random.Random(seed)
        r = self.rng
        self.px = [r.uniform(0, self.size) for _ in range(self.count)]
        self.py = [r.uniform(0, self.size) for _ in range(self.count)]
        self.vx = [0.0] * self.count
        self.vy = [0.0] * self.count
        self.attractors = [[25.0, 50.0], [75.0, 50.0]]
        self.scores = [0, 0]
        self.t = 0
        return {a: [] for a in AGENTS}, {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for i, agent in enumerate(AGENTS):
            dx, dy = MOVES[int(actions[agent]) % 5]
            a = self.attractors[i]
            a[0] = min(max(a[0] + 1.5 * dx, 0.0), self.size)
            a[1] = min(max(a[1] + 1.5 * dy, 0.0), self.size)
        (ax, ay), (bx, by) = self.attractors
        px, py, vx, vy = self.px, self.py, self.vx, self.vy
        size = self.size
        gauss = self.rng.gauss
        near = [0, 0]
        for k in range(self.count):
            x, y = px[k], py[k]
            dxa, dya = ax - x, ay - y
            dxb, dyb = bx - x, by - y
            da = dxa * dxa + dya * dya + 25.0
            db = dxb * dxb + dyb * dyb + 25.0
            fx = 40.0 * (dxa / da + dxb / db)
            fy = 40.0 * (dya / da + dyb / db)
            nvx = (vx[k] + fx) * 0.96
            nvy = (vy[k] + fy) * 0.96
            if k % 16 == self.t % 16:
                nvx += gauss(0.0, 0.3)
                nvy += gauss(0.0, 0.3)
            x += nvx
            y += nvy
            if x < 0.0 or x > size:
                nvx = -nvx
                x = min(max(x, 0.0), size)
            if y < 0.0 or y > size:
                nvy = -nvy
                y = min(max(y, 0.0), size)
            px[k], py[k], vx[k], vy[k] = x, y, nvx, nvy
            if da < 100.0:
                near[0] += 1
            if db < 100.0:
                near[1] += 1
        self.t += 1
        self.scores[0] += near[0]
        self.scores[1] += near[1]
        rewards = {AGENTS[0]: float(near[0]), AGENTS[1]: float(near[1])}
        no = {a: False for a in AGENTS}
        return {a: [] for a in AGENTS}, rewards, dict(no), dict(no), {a: {} for a in AGENTS}

    def get_state(self) -> dict[str, Any]:
        return {
            "rng": self.rng.getstate(),
            "px": list(self.px),
            "py": list(self.py),
            "vx": list(self.vx),
            "vy": list(self.vy),
            "attractors": [list(a) for a in self.attractors],
            "scores": list(self.scores),
            "t": self.t,
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])
        self.px = list(state["px"])
        self.py = list(state["py"])
        self.vx = list(state["vx"])
        self.vy = list(state["vy"])
        self.attractors = [list(a) for a in state["attractors"]]
        self.scores = list(state["scores"])
        self.t = state["t"]


def make_env(**kwargs: Any) -> Swarm:
    """Factory (``benchmarks.netcode_heavy_env:make_env``)."""
    return Swarm(**kwargs)
