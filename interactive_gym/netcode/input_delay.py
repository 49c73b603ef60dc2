"""Adaptive input delay: the rule that picks an episode's input delay from measured round-trip times.

Input delay and rollback trade against each other. A remote input reaches this peer about one one-way latency
after it was given; a peer whose local inputs wait ``delay`` frames before they apply gives that input ``delay``
frames of head start, so the other peers have to predict (and later roll back) about
``one_way_frames - delay`` frames. Each frame of delay is a frame of latency the participant feels on every key
press; each frame of rollback depth is a frame the remote avatar may be shown wrong and then corrected.

The rule (:func:`choose_input_delay`): allow rollbacks up to a budget of frames, and spend input delay only on
the latency beyond it::

    one_way_frames = ceil(median(rtt_ms) / 2 / frame_ms)
    delay = clamp(one_way_frames - min(rollback_budget_frames, prediction_window), min_delay, max_delay)

The median ignores the odd late pong. The budget is capped by the prediction window because a session never
predicts further than that (it stalls instead), so a budget above it would buy stalls, not rollbacks. The RTT the
session measures includes the time a ping waits for the other page's next frame, which inputs wait too; that is
why it is used as it is. With no sample at all (no pong came back) the rule picks ``max_delay``: rollbacks deeper
than the window would stall the game, a large delay only makes it feel slower.

At 30 fps and the default budget of 2 frames: an RTT up to 133 ms gives delay 0, up to 200 ms 1, up to 266 ms 2.

Pure standard-library code (runs in Pyodide); :mod:`interactive_gym.netcode.episode_delays` applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from .settings import MAX_INPUT_DELAY, SettingsError

AUTO = "auto"
DEFAULT_BOUNDS = (0, 6)
DEFAULT_ROLLBACK_BUDGET = 2


def one_way_frames(rtt_ms: float, fps: float) -> int:
    """Frames of one-way latency, rounded up: ``ceil(rtt_ms / 2 / (1000 / fps))``.

    Computed as ``rtt * fps / 2000`` so that an exact multiple (200 ms at 30 fps = 3 frames) stays exact.
    """
    return max(0, math.ceil(rtt_ms * fps / 2000.0 - 1e-9))


def choose_input_delay(rtt_samples_ms: Sequence[float], fps: float, min_delay: int, max_delay: int,
                       rollback_budget_frames: int, prediction_window: int) -> int:
    """The input delay for the next episode (the module docstring states and argues the rule).

    Args:
        rtt_samples_ms: Recent round-trip times of the slowest link, in ms (any order).
        fps: Frames per second of the game.
        min_delay: Smallest delay the rule may pick.
        max_delay: Largest delay the rule may pick.
        rollback_budget_frames: Rollback depth accepted before input delay is added.
        prediction_window: The session's ``max_prediction``.

    Returns:
        A delay in ``min_delay..max_delay``.

    Raises:
        SettingsError: for bounds outside ``0..30`` or reversed, a negative budget, or non-positive fps.
    """
    check_bounds(min_delay, max_delay, rollback_budget_frames)
    if not fps > 0:
        raise SettingsError(f"fps must be positive, got {fps!r}")
    samples = [float(s) for s in rtt_samples_ms if math.isfinite(s) and s >= 0]
    if not samples:
        return max_delay
    budget = min(rollback_budget_frames, max(0, prediction_window))
    return min(max_delay, max(min_delay, one_way_frames(median(samples), fps) - budget))


def check_bounds(min_delay: Any, max_delay: Any, rollback_budget_frames: Any) -> None:
    """Raises :class:`SettingsError` unless ``0 <= min_delay <= max_delay <= 30`` and the budget is ``>= 0``."""
    for name, value in (("min_delay", min_delay), ("max_delay", max_delay),
                        ("rollback_budget_frames", rollback_budget_frames)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise SettingsError(f"{name} must be an integer, got {value!r}")
    if not 0 <= min_delay <= max_delay <= MAX_INPUT_DELAY:
        raise SettingsError(f"input delay bounds must satisfy 0 <= min <= max <= {MAX_INPUT_DELAY}, "
                            f"got ({min_delay}, {max_delay})")
    if not 0 <= rollback_budget_frames <= MAX_INPUT_DELAY:
        raise SettingsError(f"rollback_budget_frames must be 0..{MAX_INPUT_DELAY}, got {rollback_budget_frames!r}")


@dataclass(frozen=True)
class AutoInputDelay:
    """The settings of ``input_delay="auto"``: bounds and rollback budget (validated on creation).

    Attributes:
        min_delay: Smallest delay the rule may pick.
        max_delay: Largest delay the rule may pick.
        rollback_budget_frames: Rollback depth accepted before input delay is added.
    """

    min_delay: int = DEFAULT_BOUNDS[0]
    max_delay: int = DEFAULT_BOUNDS[1]
    rollback_budget_frames: int = DEFAULT_ROLLBACK_BUDGET

    def __post_init__(self) -> None:
        check_bounds(self.min_delay, self.max_delay, self.rollback_budget_frames)

    def choose(self, rtt_samples_ms: Sequence[float], fps: float, prediction_window: int) -> int:
        """:func:`choose_input_delay` with these settings."""
        return choose_input_delay(rtt_samples_ms, fps, self.min_delay, self.max_delay,
                                  self.rollback_budget_frames, prediction_window)

    def to_config(self) -> dict[str, int]:
        """The JSON form carried in the p2p scene config (``config["p2p"]["auto_input_delay"]``)."""
        return {"min": self.min_delay, "max": self.max_delay, "rollback_budget": self.rollback_budget_frames}

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> AutoInputDelay:
        """Reads :meth:`to_config` output (raises :class:`SettingsError` for a bad one)."""
        try:
            return cls(data["min"], data["max"], data["rollback_budget"])
        except (KeyError, TypeError) as exc:
            raise SettingsError(f"auto_input_delay must be {{'min', 'max', 'rollback_budget'}}, got {data!r}") \
                from exc
