"""Checks of the parts of an uploaded episode: fields, steps, pauses, gaps and the page's clock. Pure.

:mod:`upload_validation` checks an upload as a whole against its scene and calls these for each part; every
check raises :class:`UploadPartError` with a stable code and a message that says what was wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from interactive_gym.server.upload_clock import ClockError, check_clock

MAX_INFO_CHARS = 8192
MAX_KEYS_PER_STEP = 16
MAX_KEY_CHARS = 32
MAX_PAUSES = 10_000
MAX_GAP_RUNS = 64
MAX_OBSERVATION_CHARS = 65536
STEP_FIELDS = ("t", "keys", "actions", "rewards", "terminated", "truncated")
STEP_OPTIONAL = ("observation", "info", "client_ts", "checksum")  # checksum: p2p, hex of the confirmed state
MAX_CHECKSUM_CHARS = 32


class UploadPartError(Exception):
    """A part of an upload is wrong: ``code`` for counting, ``message`` for the client and the log."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def is_action(value: Any, depth: int = 0) -> bool:
    """Actions are numbers, booleans, or (nested) lists of them: Discrete, MultiDiscrete, Box, MultiBinary."""
    if isinstance(value, bool) or is_number(value):
        return True
    if isinstance(value, list) and depth < 3 and len(value) <= 256:
        return all(is_action(v, depth + 1) for v in value)
    return False


def is_key_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) <= MAX_KEYS_PER_STEP
        and all(isinstance(k, str) and 0 < len(k) <= MAX_KEY_CHARS for k in value)
    )


def check_fields(obj: Any, required: Sequence[str], optional: Sequence[str], where: str) -> None:
    if not isinstance(obj, dict):
        raise UploadPartError("malformed", f"{where} must be an object")
    missing = [k for k in required if k not in obj]
    if missing:
        raise UploadPartError("malformed", f"{where} is missing {', '.join(missing)}")
    unknown = sorted(str(k) for k in obj if k not in required and k not in optional)
    if unknown:
        raise UploadPartError("malformed", f"{where} has unknown fields: {', '.join(unknown[:5])}")


def check_agent_dict(value: Any, agents: frozenset[str], check: Any, what: str, where: str) -> None:
    if not isinstance(value, dict):
        raise UploadPartError("bad_step", f"{where}.{what} must be an object keyed by agent id")
    for key, item in value.items():
        if key not in agents and key != "__all__":
            raise UploadPartError("bad_step", f"{where}.{what} names unknown agent {str(key)[:40]!r}")
        if not check(item):
            raise UploadPartError("bad_step", f"{where}.{what}[{key!r}] has an invalid value {str(item)[:40]!r}")


def check_step(step: Any, index: int, agents: frozenset[str], first_t: int = 0) -> None:
    where = f"steps[{index}]"
    check_fields(step, STEP_FIELDS, STEP_OPTIONAL, where)
    if step["t"] != first_t + index or not is_int(step["t"]):
        raise UploadPartError("bad_step", f"{where}.t is {step['t']!r}; steps must be numbered {first_t}, "
                                       f"{first_t + 1}, {first_t + 2}, ... in order")
    check_agent_dict(step["keys"], agents, is_key_list, "keys", where)
    check_agent_dict(step["actions"], agents, is_action, "actions", where)
    check_agent_dict(step["rewards"], agents, is_number, "rewards", where)
    check_agent_dict(step["terminated"], agents, lambda v: isinstance(v, bool), "terminated", where)
    check_agent_dict(step["truncated"], agents, lambda v: isinstance(v, bool), "truncated", where)
    for name, limit in (("info", MAX_INFO_CHARS), ("observation", MAX_OBSERVATION_CHARS)):
        if name in step and json_chars(step[name], f"{where}.{name}") > limit:
            raise UploadPartError("bad_step", f"{where}.{name} is longer than {limit} characters")
    checksum = step.get("checksum")
    if checksum is not None and not (isinstance(checksum, str) and 0 < len(checksum) <= MAX_CHECKSUM_CHARS):
        raise UploadPartError("bad_step", f"{where}.checksum must be a short hex string or null")
    if "client_ts" in step and step["client_ts"] is not None and not is_number(step["client_ts"]):
        raise UploadPartError("bad_step", f"{where}.client_ts must be a number (unix seconds)")


def json_chars(value: Any, where: str) -> int:
    # Strict (no NaN/Infinity): a payload sized by its transport was never re-encoded whole, so this is where
    # a non-finite number in an observation or info is refused (other fields check their numbers directly).
    try:
        return len(json.dumps(value, separators=(",", ":"), allow_nan=False))
    except ValueError:
        raise UploadPartError("bad_step", f"{where} must be plain JSON (finite numbers only)") from None


def episode_finished(step: dict[str, Any], agents: Sequence[str], max_steps: int) -> bool:
    if step["t"] + 1 >= max_steps:
        return True
    term, trunc = step["terminated"], step["truncated"]
    if term.get("__all__") or trunc.get("__all__"):
        return True
    return all(term.get(a) or trunc.get(a) for a in agents)


def check_pauses(pauses: Any, num_steps: int) -> list[dict[str, Any]]:
    if not isinstance(pauses, list) or len(pauses) > MAX_PAUSES:
        raise UploadPartError("malformed", f"pauses must be a list of at most {MAX_PAUSES} entries")
    for i, pause in enumerate(pauses):
        check_fields(pause, ("t", "ms"), (), f"pauses[{i}]")
        if not is_int(pause["t"]) or not 0 <= pause["t"] <= num_steps:
            raise UploadPartError("malformed", f"pauses[{i}].t must be a step index between 0 and {num_steps}")
        if not is_number(pause["ms"]) or pause["ms"] < 0:
            raise UploadPartError("malformed", f"pauses[{i}].ms must be a non-negative number")
    return pauses



def check_gaps(gaps: Any, agents: frozenset[str], max_steps: int) -> tuple[dict[str, Any], ...]:
    """Runs of steps an agent played with the default input while its player was away (p2p)."""
    if not isinstance(gaps, list) or len(gaps) > MAX_GAP_RUNS:
        raise UploadPartError("malformed", f"gaps must be a list of at most {MAX_GAP_RUNS} entries")
    out = []
    for i, gap in enumerate(gaps):
        check_fields(gap, ("agent", "from_t", "to_t"), (), f"gaps[{i}]")
        if gap["agent"] not in agents:
            raise UploadPartError("malformed", f"gaps[{i}].agent names an unknown agent")
        if not (is_int(gap["from_t"]) and is_int(gap["to_t"]) and 0 <= gap["from_t"] <= gap["to_t"] < max_steps):
            raise UploadPartError("malformed", f"gaps[{i}] must be steps from_t <= to_t within 0..{max_steps - 1}")
        out.append({"agent": gap["agent"], "from_t": gap["from_t"], "to_t": gap["to_t"]})
    return tuple(out)


def checked_clock(clock: Any) -> dict[str, Any]:
    try:
        return check_clock(clock)
    except ClockError as exc:
        raise UploadPartError("bad_clock", str(exc)) from None
