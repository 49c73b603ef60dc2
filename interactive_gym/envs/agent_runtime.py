"""How AI agents choose their actions, one implementation for server, browser and p2p mode.

Every mode asks :class:`AgentRuntime` for the AI agents' actions of a frame, so a policy behaves the same wherever
the environment steps:

* **frame skip** - a policy chooses a new action when ``t % frame_skip == 0`` (``t`` is the step of the episode,
  from 0) or when it has no action yet this episode, and repeats its last action in between;
* **seeded rng** - each AI agent gets its own ``random.Random`` per episode, seeded from the episode seed and the
  agent id (``f"{seed}:{agent}"``: string seeds hash the same in CPython and Pyodide), so stochastic policies are
  reproducible from the seed the data records;
* **signature** - a policy function is ``fn(observation, agent_id)`` or ``fn(observation)``; if it has a
  parameter named ``rng`` it also receives its generator as ``rng=...``. The call style is decided once, when the
  policy is built, never per frame;
* **random** - ``"random"`` draws uniformly from a discrete action space with the agent's generator;
* **external** - an action chosen outside Python (ONNX in the page's JavaScript) follows the same frame-skip rule
  through :meth:`AgentRuntime.due` and :meth:`AgentRuntime.set_external`.

The runtime's whole evolving state (held actions and generator states) is :meth:`AgentRuntime.snapshot`, which
p2p mode saves and restores on rollback. Pure standard-library Python: shipped into Pyodide with ``envs``, so it
must import nothing server-side.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

RANDOM = "random"
KIND_FUNCTION = "function"
KIND_RANDOM = "random"
KIND_EXTERNAL = "external"

# (held actions by agent, generator state by agent): everything about the AI agents that changes during a game.
RuntimeSnapshot = tuple[dict[str, Any], dict[str, Any]]


class AgentPolicyError(ValueError):
    """A policy the runtime cannot call; the message says what to change."""


@dataclass(frozen=True, slots=True)
class CallStyle:
    """How a policy function is called.

    Attributes:
        with_agent: Pass the agent id as the second positional argument.
        with_rng: Pass the agent's generator as the keyword argument ``rng``.
    """

    with_agent: bool
    with_rng: bool


def call_style(fn: Callable[..., Any]) -> CallStyle:
    """Decides from ``fn``'s signature how to call it (see the module docstring).

    A function whose signature cannot be read (some builtins) is called as ``fn(observation, agent_id)``.

    Raises:
        AgentPolicyError: if ``fn`` is not callable, takes no observation, or needs more than
            ``(observation, agent_id)`` besides ``rng``.
    """
    if not callable(fn):
        raise AgentPolicyError(f"a policy must be a function, got {fn!r}")
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return CallStyle(with_agent=True, with_rng=False)
    # ``rng`` is passed by keyword, so only a parameter that accepts a keyword can take it.
    rng = next((p for p in params if p.name == "rng" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)), None)
    others = [p for p in params if p is not rng]
    positional = [p for p in others if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    takes_varargs = any(p.kind == p.VAR_POSITIONAL for p in others)
    required_keywords = [p.name for p in others if p.kind == p.KEYWORD_ONLY and p.default is p.empty]
    with_rng = rng is not None
    name = getattr(fn, "__name__", repr(fn))
    if required_keywords or len(required) > 2:
        raise AgentPolicyError(
            f"policy {name} needs arguments {[p.name for p in required] + required_keywords}; a policy is "
            "called as fn(observation, agent_id) or fn(observation), plus rng=... if it has an 'rng' parameter"
        )
    if not positional and not takes_varargs:
        raise AgentPolicyError(f"policy {name} takes no observation; define it as fn(observation, agent_id)")
    return CallStyle(with_agent=len(required) == 2 or takes_varargs, with_rng=with_rng)


def agent_rng(seed: int, agent: str) -> random.Random:
    """The generator of ``agent`` for the episode with reset seed ``seed``."""
    return random.Random(f"{seed}:{agent}")


def random_action(space: Any, rng: random.Random) -> int:
    """A uniformly random action of a discrete space (``n`` actions from ``start``), drawn from ``rng``.

    Raises:
        AgentPolicyError: if the space is not discrete.
    """
    n = getattr(space, "n", None)
    if n is None:
        raise AgentPolicyError(f"'random' policy needs a discrete action space, got {space!r}")
    return int(getattr(space, "start", 0)) + rng.randrange(int(n))


def _check_frame_skip(frame_skip: Any) -> int:
    if not isinstance(frame_skip, int) or isinstance(frame_skip, bool) or frame_skip < 1:
        raise AgentPolicyError(f"frame_skip must be an integer >= 1, got {frame_skip!r}")
    return frame_skip


@dataclass(frozen=True, slots=True)
class AgentPolicy:
    """How one AI agent chooses; build it with :meth:`function`, :meth:`random` or :meth:`external`.

    Attributes:
        kind: ``"function"``, ``"random"`` or ``"external"``.
        frame_skip: Frames each chosen action is held for.
        fn: The policy function (kind ``"function"``).
        style: How ``fn`` is called (kind ``"function"``).
        space: The discrete action space (kind ``"random"``).
    """

    kind: str
    frame_skip: int = 1
    fn: Callable[..., Any] | None = None
    style: CallStyle | None = None
    space: Any = None

    @classmethod
    def function(cls, fn: Callable[..., Any], frame_skip: int = 1) -> AgentPolicy:
        """A Python policy function.

        Raises:
            AgentPolicyError: for a signature the runtime cannot call or a bad ``frame_skip``.
        """
        return cls(KIND_FUNCTION, _check_frame_skip(frame_skip), fn, call_style(fn))

    @classmethod
    def random(cls, space: Any) -> AgentPolicy:
        """Uniformly random actions of the discrete ``space``, one new draw every frame.

        Raises:
            AgentPolicyError: if ``space`` is not discrete.
        """
        if getattr(space, "n", None) is None:
            raise AgentPolicyError(f"'random' policy needs a discrete action space, got {space!r}")
        return cls(KIND_RANDOM, 1, space=space)

    @classmethod
    def external(cls, frame_skip: int = 1) -> AgentPolicy:
        """An action chosen outside Python and handed in with :meth:`AgentRuntime.set_external`."""
        return cls(KIND_EXTERNAL, _check_frame_skip(frame_skip))


class AgentRuntime:
    """The AI agents of one game: their held actions and generators, reset per episode.

    Args:
        policies: ``{agent_id: AgentPolicy}`` for every AI agent (humans are not in it).
    """

    def __init__(self, policies: Mapping[str, AgentPolicy]) -> None:
        self.policies = dict(policies)
        self._held: dict[str, Any] = {}
        self._rngs: dict[str, random.Random] = {}
        self._started = False

    @property
    def agents(self) -> list[str]:
        """The AI agents, in the order they were given."""
        return list(self.policies)

    def start_episode(self, seed: int) -> None:
        """Forgets held actions and seeds every agent's generator from the episode's reset ``seed``."""
        self._held = {}
        self._rngs = {agent: agent_rng(seed, agent) for agent in self.policies}
        self._started = True

    def due(self, agent: str, t: int) -> bool:
        """True if ``agent`` chooses a new action at step ``t`` (otherwise it repeats its held one)."""
        return t % self.policies[agent].frame_skip == 0 or agent not in self._held

    def set_external(self, agent: str, action: Any) -> None:
        """Holds ``action`` for an external agent from this frame until its next decision.

        Raises:
            KeyError: if ``agent`` is not an external agent.
        """
        policy = self.policies.get(agent)
        if policy is None or policy.kind != KIND_EXTERNAL:
            raise KeyError(f"{agent!r} is not an externally chosen (ONNX) agent")
        self._held[agent] = action

    def actions(self, t: int, observations: Mapping[str, Any], live: Collection[str] | None = None) -> dict[str, Any]:
        """The actions of the AI agents at step ``t`` of the episode.

        Args:
            t: Steps already played this episode (0 for the first step).
            observations: The current observation of each agent.
            live: Agents still in the episode (``env.agents``); the others get no action. ``None``: all.

        Raises:
            RuntimeError: if no episode was started, or an external agent is due but has no action.
            AgentPolicyError: if a live agent has no observation.
        """
        if not self._started:
            raise RuntimeError("start_episode(seed) must be called before actions()")
        chosen: dict[str, Any] = {}
        for agent, policy in self.policies.items():
            if live is not None and agent not in live:
                continue
            if policy.kind == KIND_EXTERNAL:
                if agent not in self._held:
                    raise RuntimeError(f"no action for externally chosen (ONNX) agent {agent!r}: call set_external "
                                       "(BrowserGameHost.set_external_action) before asking for actions")
            elif self.due(agent, t):
                self._held[agent] = self._choose(agent, policy, observations)
            chosen[agent] = self._held[agent]
        return chosen

    def snapshot(self) -> RuntimeSnapshot:
        """Held actions and generator states (copies; restoring one does not change it)."""
        return dict(self._held), {agent: rng.getstate() for agent, rng in self._rngs.items()}

    def restore(self, snapshot: RuntimeSnapshot) -> None:
        """Returns to a :meth:`snapshot` of this runtime."""
        held, rng_states = snapshot
        self._held = dict(held)
        for agent, state in rng_states.items():
            self._rngs[agent].setstate(state)

    def _choose(self, agent: str, policy: AgentPolicy, observations: Mapping[str, Any]) -> Any:
        rng = self._rngs[agent]
        if policy.kind == KIND_RANDOM:
            return random_action(policy.space, rng)
        if agent not in observations:
            raise AgentPolicyError(f"the environment gave no observation for agent {agent!r}, which is still live")
        assert policy.fn is not None and policy.style is not None  # guaranteed by AgentPolicy.function
        args = (observations[agent], agent) if policy.style.with_agent else (observations[agent],)
        return policy.fn(*args, rng=rng) if policy.style.with_rng else policy.fn(*args)
