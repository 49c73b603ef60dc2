"""Environments and render functions with a deliberate bug at a known step, for the error e2e tests.

Shipped into Pyodide like any experiment module (browser and p2p modes) and stepped by the server (server
mode). ``gatherers`` (the demo's orchard) must be importable: the tests put ``examples/demo`` on ``sys.path``,
and in the browser it is shipped because ``gatherers.render`` / ``gatherers.greedy_policy`` are used.
"""

from __future__ import annotations

from typing import Any

import gatherers

# The step whose computation fails: steps 0 .. BREAK_AT - 1 are played and stored, step BREAK_AT raises.
BREAK_AT = 5


class StepRaises(gatherers.FruitGatherers):
    """The orchard with a bug: computing step number ``BREAK_AT`` divides by zero."""

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        if self.t == BREAK_AT:
            return pace_bonus(self)
        return super().step(actions)


def pace_bonus(env: gatherers.FruitGatherers) -> Any:
    """The buggy line: at step ``BREAK_AT`` the denominator is zero."""
    return env.t / (env.t - BREAK_AT)


def make_step_raises(**kwargs: Any) -> StepRaises:
    return StepRaises(**kwargs)


def render_raises(env: gatherers.FruitGatherers, surface: Any) -> None:
    """Draws the orchard, except the frame of step ``BREAK_AT`` (env.t == BREAK_AT + 1), which raises."""
    if env.t == BREAK_AT + 1:
        raise KeyError("sprite 'golden_apple' is not in the asset registry")
    gatherers.render(env, surface)


def policy_raises(observation: Any, agent_id: str) -> int:
    """A scripted partner whose model file was never loaded: it fails the first time it is asked."""
    raise RuntimeError(f"policy for {agent_id}: weights file 'partner.pt' was never loaded")
