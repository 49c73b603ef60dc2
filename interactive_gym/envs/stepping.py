"""One environment step with Interactive Gym's episode-end rule, shared by every mode.

Server mode (``server/remote_game.py``), browser mode (``browser/host.py``) and p2p mode
(``browser/p2p_sim.py``) all step the same way, so the data of the three modes means the same thing: an episode
ends when every agent terminated or was truncated, or when ``max_steps`` steps were played, in which case every
agent that did not terminate is marked truncated. Pure Python (runs in Pyodide too).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StepResult:
    """What one step returned, with terminations/truncations as plain bools and the limit applied."""

    observations: Any
    rewards: dict[str, Any]
    terminated: dict[str, bool]
    truncated: dict[str, bool]
    infos: Any
    episode_done: bool


def step_with_limit(env: Any, actions: dict[str, Any], agent_ids: Sequence[str], steps_after: int,
                    max_steps: int) -> StepResult:
    """Steps a parallel-API env once.

    Args:
        env: The environment (parallel multi-agent API).
        actions: One action per live agent.
        agent_ids: Every agent of the game (the episode-end rule looks at all of them).
        steps_after: How many steps the episode will have played after this one.
        max_steps: The scene's step limit.
    """
    obs, rewards, terminations, truncations, infos = env.step(actions)
    terminated = {a: bool(v) for a, v in terminations.items()}
    truncated = {a: bool(v) for a, v in truncations.items()}
    all_done = all(terminated.get(a, False) or truncated.get(a, False) for a in agent_ids)
    hit_limit = steps_after >= max_steps
    if hit_limit and not all_done:
        truncated = {a: truncated.get(a, False) or not terminated.get(a, False) for a in agent_ids}
    return StepResult(obs, dict(rewards), terminated, truncated, infos, all_done or hit_limit)
