"""Save, load, checksum and step any Gymnasium-style environment for rollback netcode.

:class:`EnvStateAdapter` is the :class:`interactive_gym.netcode.runner.RollbackEnv` for real environments:

* State: the env's own ``get_state()``/``set_state()`` when it has them, else a deep copy of the env object's
  attributes (restored into the same object, so references held elsewhere stay valid). Either way the snapshot also
  holds every RNG's state: Python's ``random`` module and the env's ``np_random`` (when present), plus the adapter's
  episode counter. Nothing wall-clock based is stored.
* Inputs: each player's bytes are decoded with an input codec (one per agent; from the action spaces by default).
* Episodes: when every agent is terminated or truncated, the env is reset with a seed derived from the shared base
  seed and the episode number (Python's global ``random`` is seeded with it too), so the reset is part of the
  deterministic stream on every peer.
* Checksums: :func:`interactive_gym.netcode.checksum.stable_checksum` of the snapshot.

Both the multi-agent parallel API (``possible_agents``, ``step(dict)``) and single-agent Gymnasium envs
(``step(action)``, one player) are supported.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any, cast

from interactive_gym.netcode.checksum import stable_checksum
from interactive_gym.netcode.requests import InputStatus

from .input_codecs import InputCodec, codec_for_space

SINGLE_AGENT = "agent_0"


class EnvAdapterError(TypeError):
    """The environment does not fit the adapter; the message says what to add or pass."""


def episode_seed(base_seed: int, episode: int) -> int:
    """The reset seed of ``episode``: deterministic, different per episode, within 0..2**31-1."""
    return (base_seed * 1_000_003 + episode * 7_919 + 12_345) % 2_147_483_647


def action_space_of(env: Any, agent: Any, multi_agent: bool) -> Any:
    """The action space of ``agent``, from ``action_space(agent)``, ``action_spaces[agent]`` or ``action_space``."""
    space = getattr(env, "action_space", None)
    if multi_agent:
        if callable(space):
            return space(agent)
        spaces = getattr(env, "action_spaces", None)
        if isinstance(spaces, dict) and agent in spaces:
            return spaces[agent]
    if space is not None and not callable(space):
        return space
    raise EnvAdapterError(
        f"cannot find the action space of agent {agent!r}: give the env action_space(agent), an action_spaces "
        "dict or an action_space attribute, or pass input_codecs= to EnvStateAdapter"
    )


class EnvStateAdapter:
    """Makes an environment steppable, saveable and loadable by a rollback session.

    Args:
        env: A parallel multi-agent env (``possible_agents``) or a single-agent Gymnasium env.
        seed: Base seed shared by every peer; episode ``k`` resets with ``episode_seed(seed, k)``.
        input_codecs: One codec per player (agent order = ``possible_agents``); default from the action spaces.
        isolate_global_random: Give this env a private copy of Python's global ``random`` state, swapped in
            around every reset and step. Used by the network simulator, where several peers share one process
            but each real browser has its own interpreter.
        reset: Reset the env for episode 0 now.
    """

    def __init__(
        self,
        env: Any,
        seed: int = 0,
        input_codecs: Sequence[InputCodec] | None = None,
        isolate_global_random: bool = False,
        reset: bool = True,
    ) -> None:
        self.env = env
        self.multi_agent = hasattr(env, "possible_agents")
        self.agents = list(env.possible_agents) if self.multi_agent else [SINGLE_AGENT]
        if not self.agents:
            raise EnvAdapterError("the env's possible_agents is empty")
        if input_codecs is None:
            input_codecs = [codec_for_space(action_space_of(env, a, self.multi_agent)) for a in self.agents]
        if len(input_codecs) != len(self.agents):
            raise EnvAdapterError(f"expected {len(self.agents)} input codecs (one per agent), got {len(input_codecs)}")
        self.codecs = list(input_codecs)
        self.input_size = max(c.size for c in self.codecs)
        self.default_inputs = [c.default.ljust(self.input_size, b"\0") for c in self.codecs]
        self.seed = seed
        self.episode = 0
        self.has_state_api = callable(getattr(env, "get_state", None)) and callable(getattr(env, "set_state", None))
        if not self.has_state_api and not isinstance(getattr(env, "__dict__", None), dict):
            raise EnvAdapterError(
                f"{type(env).__name__} has neither get_state()/set_state() nor a __dict__ to copy; add the two methods"
            )
        self._isolate = isolate_global_random
        self._private_random: Any = random.Random(0).getstate() if isolate_global_random else None
        self.last_outcome: Any = None
        if reset:
            self.reset()

    # --- stepping ------------------------------------------------------------------------------------------

    def reset(self) -> Any:
        """Resets the env for the current episode with its derived seed; returns the reset's result.

        Python's global ``random`` is seeded with the same seed first, so an env that draws from it is
        deterministic on every peer too (and its state is part of every snapshot).
        """
        seed = episode_seed(self.seed, self.episode)
        result = self._guarded(self._seeded_reset, seed)
        self.last_outcome = result
        return result

    def _seeded_reset(self, seed: int) -> Any:
        random.seed(seed)
        return self.env.reset(seed=seed)

    def decode(self, inputs: Sequence[tuple[bytes, InputStatus]] | Sequence[bytes]) -> dict[Any, Any]:
        """Actions by agent for one frame's inputs (bytes or ``(bytes, status)`` pairs)."""
        actions = {}
        for agent, codec, item in zip(self.agents, self.codecs, inputs, strict=True):
            data = cast(bytes, item[0] if isinstance(item, tuple) else item)
            actions[agent] = codec.decode(data)
        return actions

    def advance(self, frame: int, inputs: Sequence[tuple[bytes, InputStatus]] | Sequence[bytes]) -> int | None:
        """Steps once; on episode end resets with the next derived seed and returns the ended episode's number."""
        actions = self.decode(inputs)
        if self.multi_agent:
            outcome = self._guarded(self.env.step, actions)
            _, _, terminations, truncations, _ = outcome
            done = self._all_done(terminations, truncations)
        else:
            outcome = self._guarded(self.env.step, actions[SINGLE_AGENT])
            done = bool(outcome[2]) or bool(outcome[3])
        self.last_outcome = outcome
        if not done:
            return None
        ended = self.episode
        self.episode += 1
        self.reset()
        return ended

    def _all_done(self, terminations: dict, truncations: dict) -> bool:
        if terminations.get("__all__") or truncations.get("__all__"):
            return True
        agents = getattr(self.env, "agents", None)
        if agents is not None and len(agents) == 0:
            return True  # PettingZoo removes finished agents
        keys = [a for a in self.agents if a in terminations or a in truncations]
        return bool(keys) and all(terminations.get(a) or truncations.get(a) for a in keys)

    def _guarded(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._isolate:
            return method(*args, **kwargs)
        outside = random.getstate()
        random.setstate(self._private_random)
        try:
            return method(*args, **kwargs)
        finally:
            self._private_random = random.getstate()
            random.setstate(outside)

    # --- state ---------------------------------------------------------------------------------------------

    def _np_random(self) -> Any:
        target = getattr(self.env, "unwrapped", self.env)
        generator = getattr(target, "_np_random", None)
        if generator is None and "np_random" in getattr(target, "__dict__", {}):
            generator = target.__dict__["np_random"]
        return generator if hasattr(generator, "bit_generator") else None

    def save_state(self) -> tuple:
        """Snapshot: (env state, episode, Python random state, numpy RNG state or None)."""
        if self.has_state_api:
            core = self.env.get_state()
            generator = self._np_random()
            np_state = copy.deepcopy(generator.bit_generator.state) if generator is not None else None
        else:
            core = copy.deepcopy(self.env.__dict__)
            np_state = None  # already inside the copied attributes
        py_state = self._private_random if self._isolate else random.getstate()
        return (core, self.episode, py_state, np_state)

    def load_state(self, state: tuple) -> None:
        """Restores a snapshot from :meth:`save_state`; the snapshot itself is never modified."""
        core, episode, py_state, np_state = state
        if self.has_state_api:
            self.env.set_state(core)
            if np_state is not None:
                generator = self._np_random()
                if generator is not None:
                    generator.bit_generator.state = copy.deepcopy(np_state)
        else:
            attributes = self.env.__dict__
            attributes.clear()
            attributes.update(copy.deepcopy(core))
        self.episode = episode
        if self._isolate:
            self._private_random = py_state
        else:
            random.setstate(py_state)

    def checksum(self, state: tuple) -> int:
        """64-bit checksum of a snapshot (identical on every peer for identical states)."""
        return stable_checksum(state)

    def random_input(self, rng: random.Random, player: int) -> bytes:
        """Bytes of a random valid action for ``player`` (padded to the session's input size)."""
        return self.codecs[player].random(rng).ljust(self.input_size, b"\0")

    def encode_action(self, player: int, action: Any) -> bytes:
        """Bytes for ``player``'s ``action`` (padded to the session's input size)."""
        return self.codecs[player].encode(action).ljust(self.input_size, b"\0")
