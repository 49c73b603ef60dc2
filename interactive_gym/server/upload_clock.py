"""The times an uploaded episode carries: checks on the page's clock readings, and flags for suspect ones.

Pure. The page stamps its steps and the episode's start and end with its own clock (unix seconds) and sends its
estimate of the server clock's lead (``offset_s``, measured with the ``ping`` event, and the round trip it came
from). Malformed readings are refused (:class:`ClockError`, code ``bad_clock``); well-formed but suspect
ones are stored with a flag so nothing is lost (see :func:`time_flags`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "CLOCK_FIELDS",
    "CLOCK_OPTIONAL",
    "CLOCK_SLACK_S",
    "MAX_CLOCK_OFFSET_S",
    "MAX_EPISODE_AGE_S",
    "ClockError",
    "check_clock",
    "time_flags",
]

CLOCK_FIELDS = ("started_at", "ended_at")
CLOCK_OPTIONAL = ("offset_s", "rtt_s")
CLOCK_SLACK_S = 120.0  # how far a corrected time may lie outside its plausible window before it is flagged
MAX_CLOCK_OFFSET_S = 86_400.0  # a page clock off by more than a day is not a clock we can correct
MAX_EPISODE_AGE_S = 30 * 86_400.0  # without an attempt's issue time: oldest plausible start of an upload


class ClockError(ValueError):
    """The upload's clock readings are malformed; the message says which."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_clock(clock: Any) -> dict[str, Any]:
    """The validated ``{started_at, ended_at, offset_s, rtt_s}``; raises :class:`ClockError`."""
    if not isinstance(clock, dict):
        raise ClockError("clock must be an object")
    missing = [k for k in CLOCK_FIELDS if k not in clock]
    unknown = sorted(str(k) for k in clock if k not in CLOCK_FIELDS and k not in CLOCK_OPTIONAL)
    if missing or unknown:
        raise ClockError(f"clock needs {', '.join(CLOCK_FIELDS)} and may have {', '.join(CLOCK_OPTIONAL)}")
    for name in CLOCK_FIELDS:
        if not _is_number(clock[name]) or clock[name] <= 0:
            raise ClockError(f"clock.{name} must be a finite number of unix seconds")
    if clock["ended_at"] < clock["started_at"]:
        raise ClockError("clock.ended_at is before clock.started_at")
    offset, rtt = clock.get("offset_s"), clock.get("rtt_s")
    if offset is not None and not (_is_number(offset) and abs(offset) <= MAX_CLOCK_OFFSET_S):
        raise ClockError(f"clock.offset_s must be a number of seconds within ±{MAX_CLOCK_OFFSET_S:g}")
    if rtt is not None and not (_is_number(rtt) and 0 <= rtt <= 600):
        raise ClockError("clock.rtt_s must be a non-negative number of seconds")
    return {
        "started_at": clock["started_at"],
        "ended_at": clock["ended_at"],
        "offset_s": offset,
        "rtt_s": rtt,
    }


def time_flags(
    clock: dict[str, Any] | None,
    steps: list[dict[str, Any]],
    issued_at: float | None,
    received_at: float | None,
) -> tuple[str, ...]:
    """Flags for suspect but well-formed times (the episode is stored with them in ``meta.time_flags``).

    ``no_clock``: the upload has no clock readings (times are then the arrival time). ``unordered_steps``: step
    times go backwards or lie outside the episode's start and end. ``implausible_time``: corrected by the
    offset, the episode started before its attempt was issued (or, without one, over
    :data:`MAX_EPISODE_AGE_S` before arrival) or ended after the upload arrived, by more than
    :data:`CLOCK_SLACK_S`.
    """
    if clock is None:
        return ("no_clock",)
    flags = []
    stamps = [row["client_ts"] for row in steps if row.get("client_ts") is not None]
    inside = all(clock["started_at"] - 1.0 <= ts <= clock["ended_at"] + 1.0 for ts in stamps)
    if not inside or any(later < earlier for earlier, later in zip(stamps, stamps[1:], strict=False)):
        flags.append("unordered_steps")
    if received_at is not None:
        offset = clock["offset_s"] or 0.0
        not_before = issued_at if issued_at is not None else received_at - MAX_EPISODE_AGE_S
        if clock["started_at"] + offset < not_before - CLOCK_SLACK_S or (
            clock["ended_at"] + offset > received_at + CLOCK_SLACK_S
        ):
            flags.append("implausible_time")
    return tuple(flags)
