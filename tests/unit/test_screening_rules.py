"""Screening rule declarations, their validation messages, and start-up validation of the experiment."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from gymnasium.spaces import Discrete

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene
from interactive_gym.configurations.remote_config import ConfigError
from interactive_gym.scenes.scene import SceneConfigError
from interactive_gym.screening import (
    AllowedBrowsers,
    CustomRule,
    HiddenTab,
    Idle,
    MaxPing,
    MinWindowSize,
    NoMobileDevices,
    RequiredFeatures,
    ScreeningConfigError,
    SustainedRtt,
    TurnPretest,
    entry_rules,
    in_game_rules,
)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: AllowedBrowsers({}), "AllowedBrowsers needs {family: minimum major version}"),
    (lambda: AllowedBrowsers({"netscape": 4}), "unknown browser family 'netscape'; use one of chrome, edge"),
    (lambda: AllowedBrowsers({"chrome": 11.5}), r"AllowedBrowsers\(chrome=...\) must be a whole number"),
    (lambda: AllowedBrowsers({"chrome": True}), r"AllowedBrowsers\(chrome=...\) must be a whole number"),
    (lambda: MinWindowSize(0, 700), r"MinWindowSize\(width=...\) must be a whole number from 1 to 16384"),
    (lambda: MinWindowSize(1024, math.nan), r"MinWindowSize\(height=...\)"),
    (lambda: MaxPing(max_ms=0), r"MaxPing\(max_ms=...\) must be a number from 1"),
    (lambda: MaxPing(samples=0), r"MaxPing\(samples=...\) must be a whole number from 1 to 20"),
    (lambda: MaxPing(max_ms=500, timeout_ms=400), r"timeout_ms \(400\) must be longer than max_ms \(500\)"),
    (lambda: TurnPretest(timeout_s=0.1), r"TurnPretest\(timeout_s=...\) must be a number from 0.5 to 60"),
    (lambda: CustomRule("not callable"), "CustomRule needs a function"),
    (lambda: CustomRule(lambda f: True, rule_name="x" * 65), "rule_name=...\\) must be 1-64 characters"),
    (lambda: SustainedRtt(bad_windows=6, of_windows=5), r"bad_windows \(6\) cannot exceed of_windows \(5\)"),
    (lambda: SustainedRtt(window_s=0.5), r"SustainedRtt\(window_s=...\)"),
    (lambda: HiddenTab(warn_after_s=20, exclude_after_s=20), "warn_after_s \\(20\\) must be shorter than"),
    (lambda: HiddenTab(warn_after_s=-1), r"HiddenTab\(warn_after_s=...\)"),
    (lambda: Idle(exclude_after_s=math.inf), r"Idle\(exclude_after_s=...\)"),
])
def test_a_rule_that_cannot_work_says_what_to_change(make: Any, message: str) -> None:
    with pytest.raises(ScreeningConfigError, match=message):
        make()


def test_rule_errors_are_scene_config_errors() -> None:
    assert issubclass(ScreeningConfigError, SceneConfigError)


def test_defaults_and_names() -> None:
    assert (HiddenTab().warn_after_s, HiddenTab().exclude_after_s) == (5.0, 20.0)
    assert (Idle().warn_after_s, Idle().exclude_after_s) == (30.0, 60.0)
    rtt = SustainedRtt(max_ms=100, window_s=6)
    assert rtt.probe_every_s == 2.0 and rtt.timeout_ms == 1000.0
    assert SustainedRtt(max_ms=800).timeout_ms == 1600.0
    assert [r.name for r in (AllowedBrowsers({"chrome": 1}), NoMobileDevices(), MinWindowSize(1, 1),
                             RequiredFeatures(), MaxPing(), TurnPretest())] == [
        "allowed_browsers", "no_mobile_devices", "min_window_size", "required_features", "max_ping", "turn_pretest"]


def only_adults(facts: dict[str, Any]) -> bool:
    return True


def test_a_bare_function_becomes_a_custom_rule_named_after_it() -> None:
    (rule,) = entry_rules([only_adults])
    assert isinstance(rule, CustomRule) and rule.name == "custom:only_adults" and rule.check is only_adults
    assert CustomRule(only_adults, rule_name="adults").name == "custom:adults"


@pytest.mark.parametrize(("rules", "message"), [
    ("MaxPing", "must be a list of rules"),
    ([HiddenTab()], "is not an entry rule"),
    ([MaxPing(), MaxPing(max_ms=100)], "max_ping given twice"),
    ([NoMobileDevices()] * 33, "at most 32 rules"),
])
def test_entry_lists_are_checked(rules: Any, message: str) -> None:
    with pytest.raises(ScreeningConfigError, match=message):
        entry_rules(rules)


@pytest.mark.parametrize(("rules", "message"), [
    ([MaxPing()], "is not an in-game rule; use SustainedRtt, HiddenTab, Idle"),
    ([only_adults], "is not an in-game rule"),
    ([Idle(), Idle(warn_after_s=1)], "idle given twice"),
])
def test_in_game_lists_are_checked(rules: Any, message: str) -> None:
    with pytest.raises(ScreeningConfigError, match=message):
        in_game_rules(rules)


# -- the experiment -------------------------------------------------------------------------------------------
class One:
    possible_agents = ["a"]

    def __init__(self) -> None:
        self.agents = ["a"]

    def action_space(self, agent: str) -> Discrete:
        return Discrete(2)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        return {"a": 0}, {"a": {}}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        return {"a": 0}, {"a": 0.0}, {"a": False}, {"a": False}, {"a": {}}


def _game(**kwargs: Any) -> GymScene:
    return GymScene("g", env_creator=One, render_fn=lambda env, s: None, width=32, height=32,
                    controls={"ArrowUp": 1}, **kwargs)


def _config(tmp_path: Path, *scenes: Any) -> RemoteConfig:
    stager = Stager([StartScene(), *scenes, EndScene(completion_code="C1", screen_out_completion_code="S1")])
    return RemoteConfig().experiment("e", stager=stager, db=tmp_path / "e.sqlite")


def test_a_scene_with_a_wrong_exclusion_rule_stops_at_once() -> None:
    with pytest.raises(SceneConfigError, match="GymScene 'g': exclusion: .*is not an in-game rule"):
        _game(exclusion=[NoMobileDevices()])
    assert _game(exclusion=[Idle()]).exclusion == (Idle(),)
    assert _game().exclusion is None and _game(exclusion=[]).exclusion == ()


def test_start_up_lists_every_screening_problem_with_the_fix(tmp_path: Path) -> None:
    config = _config(tmp_path, _game()).screening(entry=[MaxPing(), "fast"])
    with pytest.raises(ConfigError, match="'fast' is not an entry rule"):
        config.validate(environ={})
    config = _config(tmp_path, _game()).screening(in_game=[MaxPing()])
    with pytest.raises(ConfigError, match="screening\\(in_game=...\\): MaxPing.* is not an in-game rule"):
        config.validate(environ={})


def test_a_turn_pretest_needs_a_p2p_scene(tmp_path: Path) -> None:
    config = _config(tmp_path, _game()).screening(entry=[TurnPretest()])
    with pytest.raises(ConfigError, match="no p2p scene, so there is no TURN connection to test"):
        config.validate(environ={})


def test_valid_screening_is_kept_checked(tmp_path: Path) -> None:
    config = _config(tmp_path, _game()).screening(entry=[NoMobileDevices(), only_adults], in_game=[HiddenTab()])
    config.validate(environ={})
    assert [r.name for r in config.entry_screening] == ["no_mobile_devices", "custom:only_adults"]
    assert config.in_game_screening == (HiddenTab(),)


# -- the end page -----------------------------------------------------------------------------------------------
def test_excluded_participants_get_the_screen_out_code_and_text() -> None:
    end = EndScene(completion_code="C1", error_completion_code="E1", screen_out_completion_code="S1",
                   redirect_url="https://example.org/done?cc={completion_code}", screen_out_body_html="<p>Sorry</p>")
    assert [end.code_for(s) for s in ("completed", "errored", "excluded")] == ["C1", "E1", "S1"]
    view = end.client_view("p1", "excluded")
    assert (view["completion_code"], view["body_html"], view["status"]) == ("S1", "<p>Sorry</p>", "excluded")
    assert view["redirect_url"] == "https://example.org/done?cc=S1"


def test_excluded_participants_without_a_screen_out_code_get_no_code_and_no_redirect() -> None:
    end = EndScene(completion_code="C1", redirect_url="https://example.org/done?cc={completion_code}")
    view = end.client_view("p1", "excluded")
    assert view["completion_code"] is None and "redirect_url" not in view


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"screen_out_completion_code": "no spaces"}, "screen_out_completion_code must be 1-64"),
    ({"completion_code": "C1", "screen_out_completion_code": "C1"},
     "screen_out_completion_code must differ from completion_code"),
    ({"error_completion_code": "E1", "screen_out_completion_code": "E1"},
     "screen_out_completion_code must differ from error_completion_code"),
    ({"completion_code": "C1", "error_completion_code": "C1"}, "error_completion_code must differ from completion_code"),
])
def test_codes_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SceneConfigError, match=message):
        EndScene(**kwargs)
