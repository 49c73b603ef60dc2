"""Judging a page's entry facts against the study's entry rules. Pure: no I/O.

The page reports what it can see (:class:`EntryFacts`, built from the ``screening_report`` event), the server
adds the round trips it measured itself, and :func:`judge_entry` decides: the first rule, in the order the
researcher declared them, that the facts fail excludes the participant. The page never decides.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from interactive_gym.screening.browsers import identify
from interactive_gym.screening.rules import (
    AllowedBrowsers,
    CustomRule,
    EntryRule,
    MaxPing,
    MinWindowSize,
    NoMobileDevices,
    RequiredFeatures,
    TurnPretest,
)

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class EntryFacts:
    """What is known about a page at entry (all of it is stored with the verdict)."""

    user_agent: str
    browser: str
    version: int | None
    device: str
    width: int
    height: int
    webassembly: bool
    webrtc: bool
    ping_ms: tuple[float, ...] = ()
    relay: bool | None = None
    relay_ms: float | None = None
    url_params: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_report(cls, report: Mapping[str, Any], ping_ms: Sequence[float] = (),
                    url_params: Mapping[str, str] | None = None) -> EntryFacts:
        """From a validated ``screening_report`` payload and the server's own ping samples."""
        user_agent = str(report.get("user_agent", ""))
        browser = identify(user_agent, report.get("brands") or (), report.get("ua_mobile"),
                           int(report.get("touch_points", 0)))
        return cls(user_agent=user_agent, browser=browser.family, version=browser.version, device=browser.device,
                   width=int(report["width"]), height=int(report["height"]),
                   webassembly=bool(report["webassembly"]), webrtc=bool(report["webrtc"]),
                   ping_ms=tuple(round(float(p), 1) for p in ping_ms), relay=report.get("relay"),
                   relay_ms=report.get("relay_ms"), url_params=dict(url_params or {}))

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ping_ms"] = list(self.ping_ms)
        data["url_params"] = dict(self.url_params)
        return data


@dataclass(frozen=True)
class Failure:
    """Why a rule excludes: its name, the figures it judged, and what the participant reads."""

    rule: str
    figures: dict[str, Any]
    message: str


@dataclass(frozen=True)
class RuleError:
    """A custom rule that raised (the participant was let through)."""

    rule: str
    error: str


@dataclass(frozen=True)
class EntryVerdict:
    """The outcome of entry screening: ``failure`` is None when the participant may take part."""

    failure: Failure | None
    errors: tuple[RuleError, ...] = ()

    @property
    def passed(self) -> bool:
        return self.failure is None


def needed_features(modes: Sequence[str]) -> frozenset[str]:
    """What the browser must have for game scenes of these modes."""
    needs = set()
    if any(m in ("browser", "p2p") for m in modes):
        needs.add("webassembly")
    if "p2p" in modes:
        needs.add("webrtc")
    return frozenset(needs)


def judge_entry(rules: Sequence[EntryRule], facts: EntryFacts, needs: frozenset[str] = frozenset()) -> EntryVerdict:
    """The first rule the facts fail, in declared order; custom rules that raise are passed over and listed."""
    errors: list[RuleError] = []
    for rule in rules:
        if isinstance(rule, CustomRule):
            outcome = _custom(rule, facts)
            if isinstance(outcome, RuleError):
                errors.append(outcome)
                continue
            failure = outcome
        else:
            failure = judge_rule(rule, facts, needs)
        if failure is not None:
            return EntryVerdict(failure, tuple(errors))
    return EntryVerdict(None, tuple(errors))


def judge_rule(rule: EntryRule, facts: EntryFacts, needs: frozenset[str] = frozenset()) -> Failure | None:
    """One built-in rule's verdict on the facts (None: passed)."""
    if isinstance(rule, AllowedBrowsers):
        minimum = rule.minimum_versions.get(facts.browser)
        figures = {"browser": facts.browser, "version": facts.version, "allowed": dict(rule.minimum_versions)}
        if minimum is None or facts.version is None or facts.version < minimum:
            names = ", ".join(f"{family.capitalize()} {version}+" for family, version in rule.minimum_versions.items())
            return Failure(rule.name, figures, f"This study needs one of these browsers: {names}.")
        return None
    if isinstance(rule, NoMobileDevices):
        if facts.device != "desktop":
            return Failure(rule.name, {"device": facts.device},
                           "This study needs a computer with a keyboard; it cannot be done on a phone or tablet.")
        return None
    if isinstance(rule, MinWindowSize):
        if facts.width < rule.width or facts.height < rule.height:
            return Failure(rule.name, {"width": facts.width, "height": facts.height, "min_width": rule.width,
                                       "min_height": rule.height},
                           f"This study needs a browser window of at least {rule.width} x {rule.height} pixels; "
                           f"yours was {facts.width} x {facts.height}.")
        return None
    if isinstance(rule, RequiredFeatures):
        missing = sorted(f for f in needs if not getattr(facts, f))
        if missing:
            names = " and ".join({"webassembly": "WebAssembly", "webrtc": "WebRTC"}[f] for f in missing)
            return Failure(rule.name, {"missing": missing, "needed": sorted(needs)},
                           f"This study needs {names}, which this browser does not offer.")
        return None
    if isinstance(rule, MaxPing):
        median = statistics.median(facts.ping_ms) if facts.ping_ms else None
        if median is None or median > rule.max_ms:
            return Failure(rule.name, {"median_ms": median, "samples_ms": list(facts.ping_ms),
                                       "max_ms": rule.max_ms},
                           "Your connection to our server is too slow for this study's games.")
        return None
    if isinstance(rule, TurnPretest):
        if facts.relay is not True:
            return Failure(rule.name, {"relay": facts.relay, "relay_ms": facts.relay_ms,
                                       "timeout_s": rule.timeout_s},
                           "Your network does not allow the connections this study's games need.")
        return None
    raise TypeError(f"not a built-in entry rule: {rule!r}")


def _custom(rule: CustomRule, facts: EntryFacts) -> Failure | RuleError | None:
    try:
        outcome = rule.check(facts.as_dict())
    except Exception as exc:  # noqa: BLE001 - a researcher's buggy rule lets the participant through, logged
        return RuleError(rule.name, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS])
    if outcome is True or outcome is None:
        return None
    if outcome is False:
        return Failure(rule.name, {"result": False}, rule.message)
    if isinstance(outcome, str):
        return Failure(rule.name, {"result": False, "reason": outcome[:500]}, rule.message)
    # Anything else is a bug in the rule, treated like one that raised: never a reason to turn someone away.
    return RuleError(rule.name, f"returned {type(outcome).__name__} {repr(outcome)[:200]}; a rule returns "
                                "True, False or a reason string")
