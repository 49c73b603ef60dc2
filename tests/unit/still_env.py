"""A scene whose env never moves or ends, for tests of who plays with whom (only its agents matter)."""

from __future__ import annotations

from typing import Any

from interactive_gym import GymScene
from interactive_gym.envs.spaces import Discrete


class StillCrowd:
    """``n`` agents standing still; never ends."""

    def __init__(self, n: int = 2) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(n)]
        self.agents = list(self.possible_agents)

    def action_space(self, agent: str) -> Discrete:
        return Discrete(2)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        return {a: [0] for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        none = {a: False for a in self.agents}
        return {a: [0] for a in self.agents}, {a: 0.0 for a in self.agents}, none, dict(none), {}


def _draw(env: object, surface: object) -> None:
    return None


def still_game(scene_id: str, humans: int = 2, **kwargs: Any) -> GymScene:
    """A server-mode scene of ``humans`` humans (and a random agent beside a lone human)."""
    agents = [f"agent_{i}" for i in range(max(humans, 2))]
    mapping = {a: ("human" if i < humans else "random") for i, a in enumerate(agents)}
    return GymScene(scene_id, env_creator=StillCrowd, env_kwargs={"n": len(agents)}, render_fn=_draw, width=32,
                    height=32, controls={"ArrowUp": 1}, policy_mapping=mapping, **kwargs)
