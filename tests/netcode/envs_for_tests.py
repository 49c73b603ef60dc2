"""Small environments for netcode tests: one deterministic, several deliberately nondeterministic.

They follow the duck-typed parallel API (``possible_agents``, ``reset(seed)``, ``step(dict)``) with plain-Python
action spaces, so they also run where neither gymnasium nor numpy exists (Pyodide).
"""

from __future__ import annotations

import random
import time
from typing import Any

HIDDEN_COUNTER = [0]  # the hidden global that HiddenGlobalEnv (deliberately) depends on


class Discrete:
    """Minimal stand-in for ``gymnasium.spaces.Discrete``."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.start = 0


class TagEnv:
    """Deterministic pure-Python chase game: agents move on a grid, collect coins placed by a seeded RNG.

    Args:
        players: Number of agents.
        size: Grid side.
        episode_length: Steps before truncation.
        with_state_api: Offer get_state()/set_state() (else the adapter deep-copies the object).
    """

    def __init__(self, players: int = 2, size: int = 9, episode_length: int = 200, with_state_api: bool = True) -> None:
        self.possible_agents = [f"player_{i}" for i in range(players)]
        self.agents = list(self.possible_agents)
        self.size = size
        self.episode_length = episode_length
        self.rng = random.Random(0)
        self.positions: list[list[int]] = []
        self.coin = [0, 0]
        self.scores = [0] * players
        self.t = 0
        if not with_state_api:
            self.get_state = None  # type: ignore[assignment]
            self.set_state = None  # type: ignore[assignment]

    def action_space(self, agent: str) -> Discrete:
        return Discrete(5)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.rng = random.Random(seed)
        n = len(self.possible_agents)
        self.positions = [[self.rng.randrange(self.size), self.rng.randrange(self.size)] for _ in range(n)]
        self.coin = [self.rng.randrange(self.size), self.rng.randrange(self.size)]
        self.scores = [0] * n
        self.t = 0
        self.agents = list(self.possible_agents)
        return self._obs(), {a: {} for a in self.agents}

    def _obs(self) -> dict[str, tuple]:
        return {a: (tuple(self.positions[i]), tuple(self.coin)) for i, a in enumerate(self.possible_agents)}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        moves = {0: (0, 0), 1: (0, -1), 2: (0, 1), 3: (-1, 0), 4: (1, 0)}
        rewards = {}
        for i, agent in enumerate(self.possible_agents):
            dx, dy = moves[int(actions[agent])]
            pos = self.positions[i]
            pos[0] = min(max(pos[0] + dx, 0), self.size - 1)
            pos[1] = min(max(pos[1] + dy, 0), self.size - 1)
            rewards[agent] = 0.0
            if pos == self.coin:
                self.scores[i] += 1
                rewards[agent] = 1.0 + 0.1 * self.rng.random()
                self.coin = [self.rng.randrange(self.size), self.rng.randrange(self.size)]
        self.t += 1
        truncated = self.t >= self.episode_length
        terms = {a: False for a in self.possible_agents}
        truncs = {a: truncated for a in self.possible_agents}
        if truncated:
            self.agents = []
        return self._obs(), rewards, terms, truncs, {a: {} for a in self.possible_agents}

    def get_state(self) -> dict[str, Any]:
        return {
            "rng": self.rng.getstate(),
            "positions": [list(p) for p in self.positions],
            "coin": list(self.coin),
            "scores": list(self.scores),
            "t": self.t,
            "agents": list(self.agents),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.setstate(state["rng"])
        self.positions = [list(p) for p in state["positions"]]
        self.coin = list(state["coin"])
        self.scores = list(state["scores"])
        self.t = state["t"]
        self.agents = list(state["agents"])


class WallClockEnv(TagEnv):
    """Nondeterministic: the coin jumps according to the wall clock."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if time.perf_counter_ns() % 3 == 0:
            self.coin = [(self.coin[0] + 1) % self.size, self.coin[1]]
        return super().step(actions)


class HiddenGlobalEnv(TagEnv):
    """Nondeterministic under rollback: depends on a module-level counter that no snapshot restores."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        HIDDEN_COUNTER[0] += 1
        if HIDDEN_COUNTER[0] % 3 == 0:
            self.coin = [self.coin[0], (self.coin[1] + 1) % self.size]
        return super().step(actions)


class UnseededRngEnv(TagEnv):
    """Nondeterministic across instances: ignores the reset seed and seeds from the operating system."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        result = super().reset(seed=seed, options=options)
        self.rng = random.Random()
        self.coin = [self.rng.randrange(self.size), self.rng.randrange(self.size)]
        return result


class LeakyStateEnv(TagEnv):
    """Broken state API: get_state() returns live references, so saved snapshots change as the game goes on."""

    def get_state(self) -> dict[str, Any]:
        return {"rng": self.rng.getstate(), "positions": self.positions, "coin": self.coin,
                "scores": self.scores, "t": self.t, "agents": self.agents}


def make_tag(**kwargs: Any) -> TagEnv:
    """Factory for ``check-env``/``netsim`` tests (``module:factory``)."""
    return TagEnv(**kwargs)


def make_wall_clock() -> WallClockEnv:
    return WallClockEnv()


def make_hidden_global() -> HiddenGlobalEnv:
    return HiddenGlobalEnv()


def make_unseeded() -> UnseededRngEnv:
    return UnseededRngEnv()


def make_leaky() -> LeakyStateEnv:
    return LeakyStateEnv()


COLOURS = frozenset({"red", "green", "blue", "amber", "violet", "cyan"})


class SetOrderEnv(TagEnv):
    """Deterministic inside one process, not across two: each collected coin moves the coin's colour on to
    the next one of a set of strings in iteration order, which follows the interpreter's str hash seed (the
    bug of issue 9, finding 8). The colour starts as "red" everywhere, so states part at the first coin."""

    def colours(self) -> list[str]:
        return list(COLOURS)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.colour = "red"
        return super().reset(seed=seed, options=options)

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        collected = sum(self.scores)
        result = super().step(actions)
        if sum(self.scores) != collected:
            order = self.colours()
            self.colour = order[(order.index(self.colour) + 1) % len(order)]
        return result

    def get_state(self) -> dict[str, Any]:
        return dict(super().get_state(), colour=self.colour)

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.colour = state["colour"]


class SortedSetOrderEnv(SetOrderEnv):
    """SetOrderEnv fixed: the set is sorted before it is iterated, so every process sees the same order."""

    def colours(self) -> list[str]:
        return sorted(COLOURS)


def make_set_order() -> SetOrderEnv:
    return SetOrderEnv()


def make_sorted_set_order() -> SortedSetOrderEnv:
    return SortedSetOrderEnv()
