"""Re-runs a recorded episode through its environment and checks that it reproduces. Pure logic, no I/O.

One core for every mode. An episode of any mode is reproducible from its environment, its seed and the
recorded actions of every agent (human and AI): resetting a fresh environment with the seed and stepping
it with the same actions must give the same observations, rewards, terminations and truncations, and the
episode must end exactly where the recording ends (or later, for a partial recording). Each mode only
shapes its stored data into ``steps`` rows (see ``tools/replay.py`` and ``server/episode_verifier.py``).

What "the same" means: rewards are compared as floats, exactly (the same Python code with the same inputs
gives the same floats, and the stored JSON keeps every float exactly); observations are compared in their
JSON form (tuples were stored as lists, numpy arrays as nested lists). A difference therefore means
nondeterminism (wall clock, unseeded randomness, hidden state, ``str`` hash order), different code, or an
edited recording.

The replay does not call AI policies: their recorded actions are replayed like the humans' (an ONNX
partner cannot run here, and what matters is what the environment made of the actions). A fresh
environment is built per episode; an environment whose ``reset(seed=...)`` does not reset everything
(state carried from the previous episode) shows up as a mismatch from its second episode on.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from interactive_gym.envs.multiagent import as_multiagent
from interactive_gym.envs.stepping import jsonable, step_with_limit

MAX_REPORTED = 20
NO_LIMIT = 2**62  # a step limit no recording reaches, for recordings without one
OUTCOME_FIELDS = ("rewards", "terminated", "truncated")


@dataclass(frozen=True)
class Mismatch:
    """One recorded value the replay did not reproduce.

    Attributes:
        t: Step index (0-based) where it happened.
        what: ``"observation"``, ``"rewards"``, ``"terminated"``, ``"truncated"``, ``"length"`` (the
            recording goes on after the replayed episode ended) or ``"error"`` (the environment raised).
        agent: The agent whose value differs (``None`` for whole-step values).
        recorded: What the recording says.
        replayed: What the environment did.
    """

    t: int
    what: str
    agent: str | None
    recorded: Any
    replayed: Any

    def describe(self) -> str:
        who = f" agent {self.agent}" if self.agent is not None else ""
        return f"step {self.t}{who}: {self.what} recorded {self.recorded!r}, replay gave {self.replayed!r}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (values in their JSON shape)."""
        return jsonable(asdict(self))


@dataclass(frozen=True)
class ReplayVerdict:
    """Outcome of one replay.

    Attributes:
        steps: Steps in the recording.
        replayed: Steps the replay got through (fewer than ``steps`` after an error or an early end).
        total_mismatches: Every difference found.
        mismatches: The first :data:`MAX_REPORTED` of them, in step order.
    """

    steps: int
    replayed: int
    total_mismatches: int
    mismatches: tuple[Mismatch, ...]

    @property
    def match(self) -> bool:
        """True if every recorded step was reproduced."""
        return self.total_mismatches == 0

    @property
    def first_mismatch(self) -> Mismatch | None:
        return self.mismatches[0] if self.mismatches else None

    def summary(self) -> str:
        """A few human-readable lines."""
        if self.match:
            return f"reproduced: all {self.steps} steps match (observations, rewards, terminations, truncations)"
        lines = [f"NOT reproduced: {self.total_mismatches} mismatches in {self.steps} steps"]
        lines += ["  " + m.describe() for m in self.mismatches]
        if self.total_mismatches > len(self.mismatches):
            lines.append(f"  ... and {self.total_mismatches - len(self.mismatches)} more")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the CLI's ``--json`` and the verdict stored beside the episode."""
        first = self.first_mismatch
        return {"match": self.match, "steps": self.steps, "replayed": self.replayed,
                "total_mismatches": self.total_mismatches,
                "first_mismatch": first.to_dict() if first else None,
                "mismatches": [m.to_dict() for m in self.mismatches]}


class _Collector:
    def __init__(self) -> None:
        self.total = 0
        self.kept: list[Mismatch] = []

    def add(self, mismatch: Mismatch) -> None:
        self.total += 1
        if len(self.kept) < MAX_REPORTED:
            self.kept.append(mismatch)


def _canonical(value: Any) -> Any:
    """The JSON form a value is stored and compared in."""
    return json.loads(json.dumps(jsonable(value)))


def _same(what: str, recorded: Any, replayed: Any) -> bool:
    if what == "rewards":
        try:
            return replayed is not None and float(replayed) == float(recorded)
        except (TypeError, ValueError):
            return False
    return bool(replayed) == bool(recorded)


def _compare_outcomes(index: int, row: Mapping[str, Any], got: Mapping[str, Mapping[str, Any]],
                      found: _Collector) -> None:
    for what in OUTCOME_FIELDS:
        recorded_values = row.get(what) or {}
        replayed_values = {str(a): v for a, v in got[what].items()}
        for agent in sorted(set(recorded_values) | set(replayed_values)):
            recorded = recorded_values.get(agent)
            replayed = replayed_values.get(agent)
            if recorded is None or not _same(what, recorded, replayed):
                found.add(Mismatch(index, what, agent, recorded, replayed))


def replay_episode(
    env_factory: Callable[..., Any],
    env_kwargs: Mapping[str, Any],
    seed: int,
    steps: Sequence[Mapping[str, Any]],
    max_steps: int | None = None,
    *,
    seed_global_random: bool = False,
) -> ReplayVerdict:
    """Replays recorded ``steps`` from ``reset(seed=seed)`` of a fresh environment and compares outcomes.

    Args:
        env_factory: The scene's env factory.
        env_kwargs: Its keyword arguments.
        seed: The episode's seed.
        steps: Rows in step order with ``actions``, ``rewards``, ``terminated``, ``truncated`` (each keyed
            by agent) and optionally ``observation`` (before the step; ``None`` = not recorded).
        max_steps: The scene's step limit; its last step truncates every agent still running, as the
            recording did (``envs/stepping.py``, the rule every mode steps with).
        seed_global_random: Seed Python's global ``random`` with ``seed`` before the reset, as p2p mode
            does on every peer. Python's global ``random`` is restored afterwards either way.

    Returns:
        The verdict; a raising environment is reported as an ``"error"`` mismatch, never raised.
    """
    saved_random = random.getstate()
    try:
        return _replay(env_factory, env_kwargs, seed, steps, max_steps, seed_global_random)
    finally:
        random.setstate(saved_random)


def _replay(env_factory: Callable[..., Any], env_kwargs: Mapping[str, Any], seed: int,
            steps: Sequence[Mapping[str, Any]], max_steps: int | None, seed_global_random: bool) -> ReplayVerdict:
    found = _Collector()
    limit = NO_LIMIT if max_steps is None else max_steps
    replayed = 0
    try:
        env = as_multiagent(env_factory(**dict(env_kwargs)))
        if seed_global_random:
            random.seed(seed)
        observations, _ = env.reset(seed=seed)
        agent_ids = list(env.possible_agents)
    except Exception as exc:  # noqa: BLE001 - the verdict must say the env could not start, not crash
        found.add(Mismatch(0, "error", None, "an environment", f"{type(exc).__name__}: {exc}"))
        return ReplayVerdict(len(steps), 0, found.total, tuple(found.kept))
    for index, row in enumerate(steps):
        recorded_obs = row.get("observation")
        if recorded_obs is not None:
            replayed_obs = _canonical(observations)
            if replayed_obs != _canonical(recorded_obs):
                found.add(Mismatch(index, "observation", None, _canonical(recorded_obs), replayed_obs))
        try:
            result = step_with_limit(env, dict(row.get("actions") or {}), agent_ids, index + 1, limit)
        except Exception as exc:  # noqa: BLE001 - the verdict must say where replay failed, not crash
            found.add(Mismatch(index, "error", None, "a step", f"{type(exc).__name__}: {exc}"))
            break
        replayed = index + 1
        observations = result.observations
        got = {"rewards": result.rewards, "terminated": result.terminated, "truncated": result.truncated}
        _compare_outcomes(index, row, got, found)
        if result.episode_done and index + 1 < len(steps):
            # The environment ended the episode here; a recording that goes on was not made by it.
            found.add(Mismatch(index + 1, "length", None, len(steps), index + 1))
            break
    return ReplayVerdict(len(steps), replayed, found.total, tuple(found.kept))


def rows_of(records: Sequence[Any]) -> list[dict[str, Any]]:
    """Replay rows from stored step records (``StepRecord``-like objects with the step fields)."""
    return [{"t": s.t, "observation": s.observation, "actions": s.actions, "rewards": s.rewards,
             "terminated": s.terminated, "truncated": s.truncated} for s in records]
