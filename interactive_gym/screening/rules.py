"""Screening rules a researcher declares, checked when declared. Pure: no I/O.

Entry rules (``RemoteConfig().screening(entry=[...])``) judge the facts a page reports before consent;
in-game rules (``screening(in_game=[...])`` for every game scene, ``GymScene(exclusion=[...])`` for one) are
watched while a participant plays, by the monitors in :mod:`interactive_gym.screening.monitors`. A rule that
cannot work raises :class:`ScreeningConfigError` naming what to change, so the mistake stops start-up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.scenes.scene import SceneConfigError
from interactive_gym.screening.browsers import FAMILIES

MAX_RULES = 32


class ScreeningConfigError(SceneConfigError):
    """A screening rule the experiment cannot use; the message says what to change."""


def _number(rule: str, name: str, value: Any, low: float, high: float, *, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and low <= value <= high and (not integer or float(value).is_integer())
    if not ok:
        kind = "a whole number" if integer else "a number"
        raise ScreeningConfigError(f"{rule}({name}=...) must be {kind} from {low:g} to {high:g}, got {value!r}")


# -- entry rules -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AllowedBrowsers:
    """Only these browser families, each at least at a major version, e.g. ``{"chrome": 110, "firefox": 115}``.

    Families: chrome (and other Chromium browsers without their own brand), edge, firefox, safari, opera,
    samsung. A browser that cannot be identified is refused.
    """

    minimum_versions: Mapping[str, int]
    name = "allowed_browsers"

    def __post_init__(self) -> None:
        if not isinstance(self.minimum_versions, Mapping) or not self.minimum_versions:
            raise ScreeningConfigError("AllowedBrowsers needs {family: minimum major version}, e.g. "
                                       "AllowedBrowsers({'chrome': 110, 'firefox': 115})")
        for family, version in self.minimum_versions.items():
            if family not in FAMILIES:
                raise ScreeningConfigError(f"AllowedBrowsers: unknown browser family {family!r}; use one of "
                                           f"{', '.join(FAMILIES)}")
            _number("AllowedBrowsers", family, version, 0, 10_000, integer=True)
        object.__setattr__(self, "minimum_versions", {k: int(v) for k, v in self.minimum_versions.items()})


@dataclass(frozen=True)
class NoMobileDevices:
    """Refuses phones and tablets (the games need a keyboard and a large screen)."""

    name = "no_mobile_devices"


@dataclass(frozen=True)
class MinWindowSize:
    """The browser window's inner size must be at least ``width`` x ``height`` CSS pixels."""

    width: int
    height: int
    name = "min_window_size"

    def __post_init__(self) -> None:
        _number("MinWindowSize", "width", self.width, 1, 16_384, integer=True)
        _number("MinWindowSize", "height", self.height, 1, 16_384, integer=True)


@dataclass(frozen=True)
class RequiredFeatures:
    """The browser must have what the study's game scenes need: WebAssembly for browser and p2p scenes (the
    environment runs in Pyodide), WebRTC (``RTCPeerConnection``) for p2p scenes."""

    name = "required_features"


@dataclass(frozen=True)
class MaxPing:
    """The median of ``samples`` round trips to the server (measured by the server) must be at most ``max_ms``.

    A round trip with no answer within ``timeout_ms`` counts as ``timeout_ms``.
    """

    max_ms: float = 250.0
    samples: int = 5
    timeout_ms: float = 3000.0
    name = "max_ping"

    def __post_init__(self) -> None:
        _number("MaxPing", "max_ms", self.max_ms, 1, 60_000)
        _number("MaxPing", "samples", self.samples, 1, 20, integer=True)
        _number("MaxPing", "timeout_ms", self.timeout_ms, 100, 60_000)
        if self.timeout_ms <= self.max_ms:
            raise ScreeningConfigError(f"MaxPing: timeout_ms ({self.timeout_ms:g}) must be longer than max_ms "
                                       f"({self.max_ms:g}), else every answer that is late enough to matter "
                                       "counts as no answer")


@dataclass(frozen=True)
class TurnPretest:
    """For studies with a p2p scene: the page must obtain a relay candidate from the configured TURN server
    (``RemoteConfig().webrtc(...)``) within ``timeout_s``, showing that its network lets the game through."""

    timeout_s: float = 5.0
    name = "turn_pretest"

    def __post_init__(self) -> None:
        _number("TurnPretest", "timeout_s", self.timeout_s, 0.5, 60)


@dataclass(frozen=True)
class CustomRule:
    """A researcher's own entry rule: ``check(facts) -> bool | str``.

    ``facts`` is a dict (browser, version, device, width, height, webassembly, webrtc, ping_ms, relay,
    url_params, user_agent). True (or None) lets the participant through; False excludes them; a string
    excludes them and is stored as the reason. A check that raises lets them through and is logged (an
    events row ``screening_rule_error``): a bug in a rule never turns participants away.
    """

    check: Callable[[dict[str, Any]], bool | str | None]
    rule_name: str = ""
    message: str = "This study is not open to you. Thank you for your interest."
    name: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if not callable(self.check):
            raise ScreeningConfigError(f"CustomRule needs a function facts -> bool | str, got {self.check!r}")
        label = self.rule_name or getattr(self.check, "__name__", "custom")
        if not isinstance(label, str) or not label or len(label) > 64:
            raise ScreeningConfigError("CustomRule(rule_name=...) must be 1-64 characters")
        object.__setattr__(self, "name", label if label.startswith("custom:") else f"custom:{label}")


EntryRule = AllowedBrowsers | NoMobileDevices | MinWindowSize | RequiredFeatures | MaxPing | TurnPretest | CustomRule
ENTRY_RULES = (AllowedBrowsers, NoMobileDevices, MinWindowSize, RequiredFeatures, MaxPing, TurnPretest, CustomRule)


# -- in-game rules ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SustainedRtt:
    """Excludes a player whose round trip to the server is above ``max_ms`` in ``bad_windows`` of the last
    ``of_windows`` windows of ``window_s`` seconds (a window's figure is the median of its probes; the server
    probes each player three times per window)."""

    max_ms: float = 300.0
    bad_windows: int = 3
    of_windows: int = 5
    window_s: float = 5.0
    name = "sustained_rtt"

    def __post_init__(self) -> None:
        _number("SustainedRtt", "max_ms", self.max_ms, 1, 60_000)
        _number("SustainedRtt", "of_windows", self.of_windows, 1, 100, integer=True)
        _number("SustainedRtt", "bad_windows", self.bad_windows, 1, 100, integer=True)
        _number("SustainedRtt", "window_s", self.window_s, 1, 600)
        if self.bad_windows > self.of_windows:
            raise ScreeningConfigError(f"SustainedRtt: bad_windows ({self.bad_windows}) cannot exceed of_windows "
                                       f"({self.of_windows})")

    @property
    def probe_every_s(self) -> float:
        return self.window_s / 3

    @property
    def timeout_ms(self) -> float:
        """A probe without an answer this long counts as this RTT (above the bound)."""
        return max(2 * self.max_ms, 1000.0)


@dataclass(frozen=True)
class _WarnThenExclude:
    warn_after_s: float
    exclude_after_s: float

    def _check(self, rule: str) -> None:
        _number(rule, "warn_after_s", self.warn_after_s, 0, 86_400)
        _number(rule, "exclude_after_s", self.exclude_after_s, 1, 86_400)
        if not self.warn_after_s < self.exclude_after_s:
            raise ScreeningConfigError(f"{rule}: warn_after_s ({self.warn_after_s:g}) must be shorter than "
                                       f"exclude_after_s ({self.exclude_after_s:g}): the warning comes first")


@dataclass(frozen=True)
class HiddenTab(_WarnThenExclude):
    """A tab hidden for ``warn_after_s`` gets a warning; hidden for ``exclude_after_s``, the player is excluded."""

    warn_after_s: float = 5.0
    exclude_after_s: float = 20.0
    name = "hidden_tab"

    def __post_init__(self) -> None:
        self._check("HiddenTab")


@dataclass(frozen=True)
class Idle(_WarnThenExclude):
    """No key press (or click) for ``warn_after_s`` gets a warning; for ``exclude_after_s``, exclusion."""

    warn_after_s: float = 30.0
    exclude_after_s: float = 60.0
    name = "idle"

    def __post_init__(self) -> None:
        self._check("Idle")


InGameRule = SustainedRtt | HiddenTab | Idle
IN_GAME_RULES = (SustainedRtt, HiddenTab, Idle)


# -- lists -----------------------------------------------------------------------------------------------------
def entry_rules(rules: Sequence[Any], where: str = "screening(entry=...)") -> tuple[EntryRule, ...]:
    """Checks a list of entry rules (a bare function becomes a :class:`CustomRule`)."""
    out = [CustomRule(rule) if callable(rule) and not isinstance(rule, ENTRY_RULES) else rule
           for rule in _as_list(rules, where)]
    for rule in out:
        if not isinstance(rule, ENTRY_RULES):
            raise ScreeningConfigError(f"{where}: {rule!r} is not an entry rule; use "
                                       f"{', '.join(r.__name__ for r in ENTRY_RULES)} or a function")
    _unique(out, where)
    return tuple(out)


def in_game_rules(rules: Sequence[Any], where: str = "screening(in_game=...)") -> tuple[InGameRule, ...]:
    """Checks a list of in-game rules."""
    out = _as_list(rules, where)
    for rule in out:
        if not isinstance(rule, IN_GAME_RULES):
            raise ScreeningConfigError(f"{where}: {rule!r} is not an in-game rule; use "
                                       f"{', '.join(r.__name__ for r in IN_GAME_RULES)}")
    _unique(out, where)
    return tuple(out)


def _as_list(rules: Any, where: str) -> list[Any]:
    if isinstance(rules, str | bytes) or not isinstance(rules, Sequence):
        raise ScreeningConfigError(f"{where} must be a list of rules, got {rules!r}")
    if len(rules) > MAX_RULES:
        raise ScreeningConfigError(f"{where}: at most {MAX_RULES} rules")
    return list(rules)


def _unique(rules: Sequence[Any], where: str) -> None:
    names = [rule.name for rule in rules]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ScreeningConfigError(f"{where}: {', '.join(twice)} given twice; keep one of each")
