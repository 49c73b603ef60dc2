"""One environment step with Interactive Gym's episode-end rule, and the data row it leaves, shared by every mode.

Server mode (``server/remote_game.py``), browser mode (``browser/host.py``) and p2p mode
(``browser/p2p_sim.py``) all step the same way, so the data of the three modes means the same thing: an episode
ends when every agent terminated or was truncated, or when ``max_steps`` steps were played, in which case every
agent that did not terminate is marked truncated.

:func:`step_row` builds the row every mode stores for a step (the columns of ``StepRecord``)::

    {"t": 0, "observation": {agent: obs before the step}, "actions": {agent: action}, "rewards": {agent: float},
     "terminated": {agent: bool}, "truncated": {agent: bool}, "info": ..., "keys": {human_agent: [keys]},
     "<server_ts | client_ts>": unix seconds}

Server mode stores the values as they are (the storage codec keeps numpy arrays and tuples losslessly); the
browser modes upload JSON, so their rows are *portable*: plain JSON values, with a bounded ``info``. Pure Python
(runs in Pyodide too).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_INFO_CHARS = 4096  # a portable row's info larger than this is cut to its JSON prefix, so uploads stay bounded
SERVER_TS = "server_ts"
CLIENT_TS = "client_ts"


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


def jsonable(value: Any, depth: int = 0) -> Any:
    """A JSON-native copy of ``value``; anything exotic becomes its ``repr`` (never fails)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 8:
        return repr(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, depth + 1) for v in value]
    item = getattr(value, "item", None)  # numpy scalars, when the deployment loads numpy
    if callable(item):
        try:
            return jsonable(item(), depth + 1)
        except (TypeError, ValueError):
            pass
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        return jsonable(tolist(), depth + 1)
    return repr(value)


def bounded_info(info: Any) -> Any:
    """:func:`jsonable` of ``info``, or ``{"_truncated": prefix}`` if its JSON is longer than ``MAX_INFO_CHARS``."""
    clean = jsonable(info)
    text = json.dumps(clean, separators=(",", ":"))
    return clean if len(text) <= MAX_INFO_CHARS else {"_truncated": text[:MAX_INFO_CHARS]}


def step_row(t: int, observation: Any, actions: Mapping[str, Any], result: StepResult,
             keys: Mapping[str, list[str]], *, timestamp: float, portable: bool) -> dict[str, Any]:
    """The data row of one step (see the module docstring).

    Args:
        t: The step's index in the episode (0 for the first).
        observation: The observations the actions were chosen from (before the step).
        actions: Every acting agent's action.
        result: What :func:`step_with_limit` returned for the step.
        keys: Held keys per human agent whose keys this row records.
        timestamp: Wall clock (unix seconds) of the machine that stepped: ``client_ts`` if ``portable``, else
            ``server_ts``.
        portable: Build plain JSON values for an upload (browser and p2p modes) instead of keeping them as they are.
    """
    rewards = {agent: float(reward) for agent, reward in result.rewards.items()}
    if not portable:
        return {"t": t, "observation": observation, "actions": dict(actions), "rewards": rewards,
                "terminated": result.terminated, "truncated": result.truncated, "info": result.infos,
                "keys": {agent: list(held) for agent, held in keys.items()}, SERVER_TS: timestamp}
    return {"t": t, "observation": jsonable(observation), "actions": jsonable(actions),
            "rewards": {agent: jsonable(reward) for agent, reward in rewards.items()},
            "terminated": result.terminated, "truncated": result.truncated, "info": bounded_info(result.infos),
            "keys": {agent: list(held) for agent, held in keys.items()}, CLIENT_TS: timestamp}
