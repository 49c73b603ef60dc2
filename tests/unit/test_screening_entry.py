"""Entry screening: every built-in rule's pass and fail, declared order, and custom rules (raising = let through)."""

from __future__ import annotations

from typing import Any

import pytest

from interactive_gym.screening import (
    AllowedBrowsers,
    CustomRule,
    EntryFacts,
    MaxPing,
    MinWindowSize,
    NoMobileDevices,
    RequiredFeatures,
    TurnPretest,
    judge_entry,
    needed_features,
)
from interactive_gym.screening.entry import RuleError

CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
REPORT = {"user_agent": CHROME, "brands": [], "touch_points": 0, "width": 1280, "height": 800,
          "webassembly": True, "webrtc": True}


def facts(ping: tuple[float, ...] = (20.0, 22.0, 21.0), **report: Any) -> EntryFacts:
    return EntryFacts.from_report({**REPORT, **report}, ping, {"subject_id": "p1"})


def test_facts_from_a_report() -> None:
    f = facts(brands=["Chromium/126"], relay=True, relay_ms=80.0)
    assert (f.browser, f.version, f.device, f.width, f.height) == ("chrome", 126, "desktop", 1280, 800)
    assert f.ping_ms == (20.0, 22.0, 21.0) and f.relay is True and f.url_params == {"subject_id": "p1"}
    assert f.as_dict()["ping_ms"] == [20.0, 22.0, 21.0]


@pytest.mark.parametrize(("rule", "good", "bad", "figures"), [
    (AllowedBrowsers({"chrome": 120, "firefox": 115}), {}, {"user_agent": "Firefox/110"},
     {"browser": "firefox", "version": 110}),
    (AllowedBrowsers({"chrome": 120}), {}, {"user_agent": "curl/8"}, {"browser": "unknown", "version": None}),
    (AllowedBrowsers({"firefox": 100}), {"user_agent": "Gecko Firefox/125"}, {}, {"browser": "chrome"}),
    (NoMobileDevices(), {}, {"user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4) Version/17.4 Mobile Safari/604.1"},
     {"device": "phone"}),
    (NoMobileDevices(), {}, {"user_agent": "Mozilla/5.0 (Linux; Android 10) Chrome/124.0 Safari/537.36"},
     {"device": "tablet"}),
    (MinWindowSize(1024, 700), {"width": 1024, "height": 700}, {"width": 1023, "height": 900},
     {"width": 1023, "height": 900, "min_width": 1024, "min_height": 700}),
    (MinWindowSize(1024, 700), {}, {"width": 1920, "height": 699}, {"height": 699}),
    (RequiredFeatures(), {}, {"webrtc": False}, {"missing": ["webrtc"], "needed": ["webassembly", "webrtc"]}),
])
def test_each_built_in_rule_passes_and_fails(rule: Any, good: dict, bad: dict, figures: dict) -> None:
    needs = frozenset({"webassembly", "webrtc"})
    assert judge_entry([rule], facts(**good), needs).passed
    verdict = judge_entry([rule], facts(**bad), needs)
    assert verdict.failure is not None and verdict.failure.rule == rule.name
    assert figures.items() <= verdict.failure.figures.items()
    assert verdict.failure.message


def test_the_window_message_names_both_sizes() -> None:
    verdict = judge_entry([MinWindowSize(1024, 700)], facts(width=800, height=600))
    assert verdict.failure is not None
    assert verdict.failure.message == ("This study needs a browser window of at least 1024 x 700 pixels; yours was "
                                       "800 x 600.")


def test_required_features_follow_the_scenes() -> None:
    assert needed_features(["server"]) == frozenset()
    assert needed_features(["server", "browser"]) == {"webassembly"}
    assert needed_features(["p2p"]) == {"webassembly", "webrtc"}
    no_webrtc = facts(webrtc=False, webassembly=False)
    assert judge_entry([RequiredFeatures()], no_webrtc, needed_features(["server"])).passed
    failure = judge_entry([RequiredFeatures()], no_webrtc, needed_features(["browser"])).failure
    assert failure is not None and failure.figures["missing"] == ["webassembly"]


@pytest.mark.parametrize(("samples", "passed", "median"), [
    ((20.0, 30.0, 900.0), True, 30.0),        # one slow sample is not a slow connection
    ((200.0, 260.0, 300.0), False, 260.0),
    ((250.0,), True, 250.0),                  # at the bound passes
    ((), False, None),                        # nothing measured (socket gone) never passes
])
def test_max_ping_judges_the_median(samples: tuple[float, ...], passed: bool, median: float | None) -> None:
    verdict = judge_entry([MaxPing(max_ms=250)], facts(ping=samples))
    assert verdict.passed is passed
    if not passed:
        assert verdict.failure is not None and verdict.failure.figures["median_ms"] == median
        assert verdict.failure.figures["samples_ms"] == list(samples)


@pytest.mark.parametrize(("relay", "passed"), [(True, True), (False, False), (None, False)])
def test_turn_pretest(relay: bool | None, passed: bool) -> None:
    report = {} if relay is None else {"relay": relay}
    assert judge_entry([TurnPretest()], facts(**report)).passed is passed


def test_the_first_failing_rule_in_declared_order_decides() -> None:
    small_phone = facts(width=400, height=800, user_agent="Mozilla/5.0 (iPhone) Version/17 Mobile Safari/604.1")
    rules = [MinWindowSize(1024, 700), NoMobileDevices()]
    assert judge_entry(rules, small_phone).failure.rule == "min_window_size"  # type: ignore[union-attr]
    assert judge_entry(rules[::-1], small_phone).failure.rule == "no_mobile_devices"  # type: ignore[union-attr]


def test_custom_rules_see_the_facts_and_may_give_a_reason() -> None:
    seen: list[dict[str, Any]] = []

    def from_uk(f: dict[str, Any]) -> bool | str:
        seen.append(f)
        return True if f["url_params"].get("country") == "uk" else "not in the UK"

    verdict = judge_entry([CustomRule(from_uk, message="Only for UK residents.")], facts())
    assert verdict.failure is not None and verdict.failure.rule == "custom:from_uk"
    assert verdict.failure.figures == {"result": False, "reason": "not in the UK"}
    assert verdict.failure.message == "Only for UK residents."
    assert seen[0]["browser"] == "chrome" and seen[0]["ping_ms"] == [20.0, 22.0, 21.0]
    assert judge_entry([CustomRule(lambda f: False)], facts()).failure.figures == {"result": False}  # type: ignore[union-attr]
    assert judge_entry([CustomRule(lambda f: None)], facts()).passed


def test_a_raising_custom_rule_lets_the_participant_through_and_is_reported() -> None:
    def broken(f: dict[str, Any]) -> bool:
        return f["no such fact"]

    verdict = judge_entry([CustomRule(broken), MinWindowSize(1, 1)], facts())
    assert verdict.passed
    assert verdict.errors == (RuleError("custom:broken", "KeyError: 'no such fact'"),)
    # ...and the rules after it still judge.
    verdict = judge_entry([CustomRule(broken), MinWindowSize(5000, 1)], facts())
    assert verdict.failure is not None and verdict.failure.rule == "min_window_size" and len(verdict.errors) == 1


@pytest.mark.parametrize("odd", [0, 1, "", [], {"ok": True}])
def test_a_custom_rule_returning_something_else_is_a_bug_not_an_exclusion(odd: Any) -> None:
    verdict = judge_entry([CustomRule(lambda f: odd)], facts())
    if odd == "":  # a string is a reason, even an empty one
        assert not verdict.passed
        return
    assert verdict.passed and verdict.errors[0].error.startswith(f"returned {type(odd).__name__}")


def test_a_custom_rule_cannot_change_the_facts_for_the_next_rule() -> None:
    def meddle(f: dict[str, Any]) -> bool:
        f["width"] = 10_000
        return True

    verdict = judge_entry([CustomRule(meddle), MinWindowSize(2000, 1)], facts())
    assert not verdict.passed
