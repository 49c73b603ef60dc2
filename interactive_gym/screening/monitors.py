"""In-game monitors: pure state machines fed events with their times, answering warn, clear or exclude.

One :class:`GameMonitors` watches one participant on one game scene. The server feeds it what it learns
(tab hidden or shown, an input, a measured round trip) and polls it twice a second; each call returns the
:class:`Signal`\\ s to act on. Times are seconds on one monotonic clock chosen by the caller. No I/O.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.screening.rules import HiddenTab, Idle, InGameRule, SustainedRtt

WARN = "warn"
CLEAR = "clear"
EXCLUDE = "exclude"


@dataclass(frozen=True)
class Signal:
    """What to do: ``kind`` is warn, clear or exclude; ``message`` is what the participant reads."""

    kind: str
    rule: str
    figures: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class WarnThenExclude:
    """A condition that warns after ``warn_after_s`` and excludes after ``exclude_after_s`` of lasting.

    ``begin(now)`` starts the condition (a second begin keeps the first start), ``end(now)`` stops it (and
    clears a warning that was given), ``poll(now)`` says what has become due. Each warning and the exclusion
    are given once per stretch of the condition.
    """

    def __init__(self, rule: HiddenTab | Idle, warning: str, exclusion: str) -> None:
        self.rule = rule
        self._warning = warning
        self._exclusion = exclusion
        self.since: float | None = None
        self.warned = False
        self.excluded = False

    def begin(self, now: float) -> None:
        if self.since is None:
            self.since = now

    def end(self, now: float) -> Signal | None:
        since, warned = self.since, self.warned
        self.since = None
        self.warned = False
        if warned and not self.excluded:
            return Signal(CLEAR, self.rule.name, {"lasted_s": round(now - since, 3) if since is not None else None})
        return None

    def restart(self, now: float) -> Signal | None:
        """The condition ended and began again at ``now`` (an input resets the idle clock)."""
        signal = self.end(now)
        self.begin(now)
        return signal

    def poll(self, now: float) -> Signal | None:
        if self.since is None or self.excluded:
            return None
        lasted = now - self.since
        if lasted >= self.rule.exclude_after_s:
            self.excluded = True
            return Signal(EXCLUDE, self.rule.name, {"lasted_s": round(lasted, 3),
                                                    "exclude_after_s": self.rule.exclude_after_s,
                                                    "warned": self.warned}, self._exclusion)
        if lasted >= self.rule.warn_after_s and not self.warned:
            self.warned = True
            left = self.rule.exclude_after_s - lasted
            return Signal(WARN, self.rule.name, {"lasted_s": round(lasted, 3), "seconds_left": round(left, 1)},
                          self._warning.format(seconds=_seconds(left)))
        return None


class RttWindows:
    """Round trips in consecutive windows of ``window_s``; excludes when ``bad_windows`` of the last
    ``of_windows`` windows had a median above ``max_ms``. Windows without a sample (a socket away) are skipped.
    """

    def __init__(self, rule: SustainedRtt, start: float) -> None:
        self.rule = rule
        self.window_start = start
        self.current: list[float] = []
        self.medians: deque[float] = deque(maxlen=rule.of_windows)
        self.excluded = False

    def _close_due(self, now: float) -> None:
        if now < self.window_start + self.rule.window_s:
            return
        if self.current:
            self.medians.append(statistics.median(self.current))
            self.current = []
        elapsed = int((now - self.window_start) // self.rule.window_s)
        self.window_start += elapsed * self.rule.window_s

    def sample(self, now: float, rtt_ms: float) -> Signal | None:
        self._close_due(now)
        self.current.append(float(rtt_ms))
        return self._verdict()

    def poll(self, now: float) -> Signal | None:
        self._close_due(now)
        return self._verdict()

    def _verdict(self) -> Signal | None:
        bad = [m for m in self.medians if m > self.rule.max_ms]
        if self.excluded or len(bad) < self.rule.bad_windows:
            return None
        self.excluded = True
        return Signal(EXCLUDE, self.rule.name, {"window_medians_ms": [round(m, 1) for m in self.medians],
                                                "bad_windows": len(bad), "max_ms": self.rule.max_ms,
                                                "window_s": self.rule.window_s},
                      "Your connection to our server was too slow for the game for too long, so the study has "
                      "ended for you.")


HIDDEN_WARNING = "Please come back to this tab within {seconds} or the study will end for you."
HIDDEN_EXCLUSION = "You were away from the study's tab for too long, so the study has ended for you."
IDLE_WARNING = "Are you still there? Press a game key within {seconds} or the study will end for you."
IDLE_EXCLUSION = "There was no input from you for too long, so the study has ended for you."


class GameMonitors:
    """Every in-game rule of one participant on one game scene.

    Args:
        rules: The scene's in-game rules.
        now: When watching starts (the idle clock starts here).
        visible: Whether the tab is visible now.
    """

    def __init__(self, rules: Sequence[InGameRule], now: float, visible: bool = True) -> None:
        self.hidden: WarnThenExclude | None = None
        self.idle: WarnThenExclude | None = None
        self.rtt: RttWindows | None = None
        for rule in rules:
            if isinstance(rule, HiddenTab):
                self.hidden = WarnThenExclude(rule, HIDDEN_WARNING, HIDDEN_EXCLUSION)
                if not visible:
                    self.hidden.begin(now)
            elif isinstance(rule, Idle):
                self.idle = WarnThenExclude(rule, IDLE_WARNING, IDLE_EXCLUSION)
                self.idle.begin(now)
            elif isinstance(rule, SustainedRtt):
                self.rtt = RttWindows(rule, now)
        self.excluded = False

    def visibility(self, now: float, visible: bool) -> list[Signal]:
        if self.hidden is None:
            return []
        if visible:
            return self._settle([self.hidden.end(now)])
        self.hidden.begin(now)
        return []

    def input(self, now: float) -> list[Signal]:
        return self._settle([self.idle.restart(now)]) if self.idle is not None else []

    def rtt_sample(self, now: float, rtt_ms: float) -> list[Signal]:
        return self._settle([self.rtt.sample(now, rtt_ms)] if self.rtt is not None else [])

    def poll(self, now: float) -> list[Signal]:
        return self._settle([m.poll(now) for m in (self.hidden, self.idle, self.rtt) if m is not None])

    def _settle(self, signals: list[Signal | None]) -> list[Signal]:
        """At most one exclusion, ever: the first one wins and nothing follows it."""
        if self.excluded:
            return []
        kept = _kept(signals)
        exclusion = next((s for s in kept if s.kind == EXCLUDE), None)
        if exclusion is not None:
            self.excluded = True
            return [exclusion]
        return kept


def _seconds(left: float) -> str:
    n = max(1, round(left))
    return "1 second" if n == 1 else f"{n} seconds"


def _kept(signals: Sequence[Signal | None]) -> list[Signal]:
    return [s for s in signals if s is not None]
