"""Re-runs a recorded episode through its environment and checks that it reproduces. Pure logic, no I/O.

An episode is reproducible from its seed and the recorded actions of every agent (the human's and the
AI's): resetting the environment with the seed and stepping it with the same actions must give the same
rewards, terminations and truncations. :func:`replay_episode` checks exactly that, step by step, and
reports every difference (up to a limit), so a researcher can trust that what the browser recorded is
what the environment does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_REPORTED = 20


@dataclass(frozen=True)
class Mismatch:
    """One recorded value the replay did not reproduce."""

    t: int
    what: str  # "observation" | "rewards" | "terminated" | "truncated" | "error"
    agent: str | None
    recorded: Any
    replayed: Any

    def describe(self) -> str:
        who = f" agent {self.agent}" if self.agent is not None else ""
        return f"step {self.t}{who}: {self.what} recorded {self.recorded!r}, replay gave {self.replayed!r}"


@dataclass
class ReplayReport:
    """Outcome of a replay: ``ok`` when every step matched."""

    steps: int
    mismatches: list[Mismatch] = field(default_factory=list)
    total_mismatches: int = 0

    @property
    def ok(self) -> bool:
        return self.total_mismatches == 0

    def add(self, mismatch: Mismatch) -> None:
        self.total_mismatches += 1
        if len(self.mismatches) < MAX_REPORTED:
            self.mismatches.append(mismatch)

    def summary(self) -> str:
        if self.ok:
            return f"reproduced: all {self.steps} steps match (rewards, terminations, truncations)"
        lines = [f"NOT reproduced: {self.total_mismatches} mismatches in {self.steps} steps"]
        lines += ["  " + m.describe() for m in self.mismatches]
        if self.total_mismatches > len(self.mismatches):
            lines.append(f"  ... and {self.total_mismatches - len(self.mismatches)} more")
        return "\n".join(lines)


def replay_episode(
    env_factory: Callable[..., Any],
    env_kwargs: Mapping[str, Any],
    seed: int,
    steps: Sequence[Mapping[str, Any]],
    max_steps: int | None = None,
) -> ReplayReport:
    """Replays recorded ``steps`` (rows as uploaded) from ``reset(seed=seed)`` and compares outcomes.

    Rewards are compared exactly: the same Python code with the same inputs gives the same floats, and
    JSON keeps every float exactly. A difference therefore means nondeterminism (wall clock, unseeded
    randomness, hidden state) or different code.

    Args:
        env_factory: The scene's env factory.
        env_kwargs: Its keyword arguments, as recorded.
        seed: The episode's seed.
        steps: Recorded rows with ``actions``, ``rewards``, ``terminated``, ``truncated``.
        max_steps: The scene's step limit; its last step truncates every agent still running, as the
            recording did.
    """
    from interactive_gym.browser.host import _jsonable
    from interactive_gym.envs.multiagent import as_multiagent

    env = as_multiagent(env_factory(**dict(env_kwargs)))
    observations, _ = env.reset(seed=seed)
    report = ReplayReport(steps=len(steps))
    for index, row in enumerate(steps):
        if "observation" in row and row["observation"] is not None:
            # Compared in their recorded (JSON) form: tuples were stored as lists.
            replayed_obs = json.loads(json.dumps(_jsonable(observations)))
            if replayed_obs != row["observation"]:
                report.add(Mismatch(index, "observation", None, row["observation"], replayed_obs))
        actions = dict(row["actions"])
        try:
            observations, rewards, terminated, truncated, _ = env.step(actions)
        except Exception as exc:  # noqa: BLE001 - the report must say where replay failed, not crash
            report.add(Mismatch(index, "error", None, "a step", f"{type(exc).__name__}: {exc}"))
            break
        if max_steps is not None and index + 1 >= max_steps:
            agents = list(env.possible_agents)
            if not all(bool(terminated.get(a)) or bool(truncated.get(a)) for a in agents):
                truncated = {a: bool(truncated.get(a)) or not bool(terminated.get(a)) for a in agents}
        got = {"rewards": rewards, "terminated": terminated, "truncated": truncated}
        for what, recorded_values in (("rewards", row["rewards"]), ("terminated", row["terminated"]),
                                      ("truncated", row["truncated"])):
            replayed_values = got[what]
            for agent, recorded in recorded_values.items():
                replayed = replayed_values.get(agent)
                if what == "rewards":
                    same = replayed is not None and float(replayed) == float(recorded)
                else:
                    same = bool(replayed) == bool(recorded)
                if not same:
                    report.add(Mismatch(index, what, agent, recorded, replayed))
            extra = set(map(str, replayed_values)) - set(recorded_values)
            for agent in sorted(extra):
                report.add(Mismatch(index, what, agent, None, replayed_values[agent]))
    return report
