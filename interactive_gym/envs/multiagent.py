"""One shape for every environment: the parallel multi-agent API.

Interactive Gym runs single-agent Gymnasium environments and PettingZoo-parallel-style multi-agent
environments. Everything downstream (game loops, data records, policies) speaks the multi-agent form: dicts
keyed by agent id. :func:`as_multiagent` wraps a single-agent environment as a one-agent parallel env so no
other code needs two paths. Pure Python: this module also runs in Pyodide.
"""

from __future__ import annotations

from typing import Any

SINGLE_AGENT_ID = "agent_0"


def is_multiagent(env: Any) -> bool:
    """True for PettingZoo-parallel-style environments (they expose ``possible_agents``)."""
    return hasattr(env, "possible_agents")


class SingleAgentAdapter:
    """Presents a Gymnasium ``Env`` as a parallel env with one agent.

    Args:
        env: The single-agent environment; kept as ``self.env`` so render functions and state adapters
            can reach it.
        agent_id: The id its one agent gets in records and policy mappings.
    """

    def __init__(self, env: Any, agent_id: str = SINGLE_AGENT_ID) -> None:
        self.env = env
        self.agent_id = agent_id
        self.possible_agents = [agent_id]
        self.agents = [agent_id]

    def action_space(self, agent: str) -> Any:
        """The wrapped env's action space (there is only one agent)."""
        return self.env.action_space

    def observation_space(self, agent: str) -> Any:
        """The wrapped env's observation space."""
        return self.env.observation_space

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.agents = [self.agent_id]
        return {self.agent_id: obs}, {self.agent_id: info}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, reward, terminated, truncated, info = self.env.step(actions[self.agent_id])
        a = self.agent_id
        if terminated or truncated:
            self.agents = []
        return {a: obs}, {a: float(reward)}, {a: bool(terminated)}, {a: bool(truncated)}, {a: info}

    @property
    def unwrapped(self) -> Any:
        return self.env


def as_multiagent(env: Any, agent_id: str = SINGLE_AGENT_ID) -> Any:
    """Returns ``env`` itself if it is already multi-agent, else a :class:`SingleAgentAdapter` around it."""
    return env if is_multiagent(env) else SingleAgentAdapter(env, agent_id)


def base_env(env: Any) -> Any:
    """The researcher's own environment object behind any adapter (what render functions receive)."""
    return env.env if isinstance(env, SingleAgentAdapter) else env


def action_space_of(env: Any, agent: str) -> Any:
    """The action space of ``agent``, whether the env exposes ``action_space(agent)`` or a dict/attribute."""
    space = getattr(env, "action_space", None)
    if callable(space):
        return space(agent)
    if isinstance(space, dict):
        return space[agent]
    spaces = getattr(env, "action_spaces", None)
    if isinstance(spaces, dict):
        return spaces[agent]
    if space is not None:
        return space
    raise TypeError(f"{type(env).__name__} declares no action space for agent {agent!r}")
