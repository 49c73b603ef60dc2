"""Screening and exclusion in real Chromium against a real server and SQLite: each rule triggered for real.

A small window (Playwright viewport) is refused at entry with the screen-out code; a delayed round trip (the
project's fault injector delaying the page's probe answers) fails the ping rule; a custom rule that raises
lets the participant through and is logged; in a server-mode game a hidden tab (warned first) and an idle
player are excluded (the hidden tab's switch is simulated in the document: headless Chromium never hides a page). Each test asserts the page, the participant's status and code, and the events rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from experiment_harness import build_app
from lifecycle_support import event_kinds, participant_row
from playwright.sync_api import expect
from screening_support import consent_scene, events_of, open_page, solo_game, start_game, wait_until

from interactive_gym import EndScene, RemoteConfig, Stager
from interactive_gym.screening import (
    AllowedBrowsers,
    HiddenTab,
    Idle,
    MaxPing,
    MinWindowSize,
    NoMobileDevices,
    RequiredFeatures,
)

SCREEN_OUT = "SCREENED1"


def _config(db: Path, *, entry: list[Any] = (), exclusion: list[Any] | None = None) -> RemoteConfig:  # type: ignore[assignment]
    stager = Stager([consent_scene(), solo_game(exclusion),
                     EndScene("end", completion_code="DONE1", screen_out_completion_code=SCREEN_OUT)])
    return RemoteConfig().experiment("screening", stager=stager, db=db).screening(entry=list(entry))


def test_a_small_window_is_refused_at_entry_with_the_screen_out_code(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    app = build_app(_config(db, entry=[NoMobileDevices(), MinWindowSize(1024, 700)]))
    server = live_server(app.asgi)
    small = open_page(new_context, server.url, "small", viewport={"width": 800, "height": 600})
    expect(small.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=10_000)
    expect(small.locator("#notice")).to_contain_text("at least 1024 x 700 pixels; yours was 800 x 600")
    large = open_page(new_context, server.url, "large", viewport={"width": 1280, "height": 800})
    expect(large.locator("#consent")).to_be_visible(timeout=10_000)

    row = participant_row(db, "small")
    assert (row.status, row.completion_code, row.current_scene) == ("excluded", SCREEN_OUT, "end")
    (excluded,) = events_of(db, "excluded", "small")
    assert excluded["rule"] == "min_window_size" and excluded["stage"] == "entry"
    assert (excluded["figures"]["width"], excluded["figures"]["height"]) == (800, 600)
    assert participant_row(db, "large").status == "active"
    assert "excluded" not in event_kinds(db, "large") and "screening_passed" in event_kinds(db, "large")
    # Reloading does not start over: the excluded participant sees their screen-out end page again.
    small.reload()
    expect(small.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=10_000)


def test_a_delayed_ping_through_the_fault_injector_fails_the_ping_rule(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    config = _config(db, entry=[MaxPing(max_ms=150, samples=3)])
    config.test_faults = {"seed": 3, "rttMs": 400, "jitterMs": 0, "loss": 0}
    server = live_server(build_app(config).asgi)
    page = open_page(new_context, server.url, "slow")
    expect(page.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=20_000)
    (excluded,) = events_of(db, "excluded", "slow")
    assert excluded["rule"] == "max_ping"
    samples = excluded["figures"]["samples_ms"]
    assert len(samples) == 3 and min(samples) >= 400  # each answer was held back 400 ms by the injector
    assert participant_row(db, "slow").status == "excluded"


def test_the_ping_rule_lets_a_fast_page_through(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    server = live_server(build_app(_config(db, entry=[MaxPing(max_ms=150, samples=3),
                                                       AllowedBrowsers({"chrome": 100}), RequiredFeatures()])).asgi)
    page = open_page(new_context, server.url, "fast")
    expect(page.locator("#consent")).to_be_visible(timeout=10_000)
    (passed,) = events_of(db, "screening_passed", "fast")
    assert passed["facts"]["browser"] == "chrome" and len(passed["facts"]["ping_ms"]) == 3
    assert max(passed["facts"]["ping_ms"]) < 150


def broken_rule(facts: dict[str, Any]) -> bool:
    raise KeyError("country")


def test_a_custom_rule_that_raises_lets_the_participant_through_and_is_logged(live_server, new_context,
                                                                              tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    server = live_server(build_app(_config(db, entry=[broken_rule])).asgi)
    page = open_page(new_context, server.url, "lucky")
    expect(page.locator("#consent")).to_be_visible(timeout=10_000)
    (error,) = events_of(db, "screening_rule_error", "lucky")
    assert error == {"rule": "custom:broken_rule", "error": "KeyError: 'country'"}
    assert participant_row(db, "lucky").status == "active"


def test_a_hidden_tab_is_warned_then_excluded_in_a_server_mode_game(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    server = live_server(build_app(_config(db, exclusion=[HiddenTab(warn_after_s=1, exclude_after_s=4)])).asgi)
    page = open_page(new_context, server.url, "away")
    start_game(page)
    # Headless Chromium keeps every page visible (another tab in front, a minimised window and CDP lifecycle
    # states all leave visibilityState "visible" here), so the tab switch itself is the one simulated part: the
    # document reports hidden and fires visibilitychange; the page's own listener, the server and the rule are real.
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")
    wait_until(lambda: events_of(db, "exclusion_warning", "away"), 10, "the warning stored")
    expect(page.locator("#exclusion-warning")).to_contain_text("Please come back to this tab within")
    assert page.title().startswith("⚠ ")
    expect(page.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=15_000)
    (excluded,) = events_of(db, "excluded", "away")
    assert excluded["rule"] == "hidden_tab" and excluded["stage"] == "in_game"
    assert excluded["figures"]["warned"] is True and excluded["figures"]["lasted_s"] >= 4
    row = participant_row(db, "away")
    assert (row.status, row.completion_code) == ("excluded", SCREEN_OUT)
    kinds = event_kinds(db, "away")
    assert kinds.index("exclusion_warning") < kinds.index("excluded")


def test_an_idle_player_is_warned_then_excluded(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    server = live_server(build_app(_config(db, exclusion=[Idle(warn_after_s=2, exclude_after_s=5)])).asgi)
    page = open_page(new_context, server.url, "idle")
    start_game(page)
    expect(page.locator("#exclusion-warning")).to_contain_text("Press a game key within", timeout=10_000)
    page.keyboard.press("ArrowUp")  # back at the keys: the warning is cleared
    expect(page.locator("#exclusion-warning")).to_have_count(0, timeout=5_000)
    expect(page.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=15_000)
    kinds = event_kinds(db, "idle")
    assert kinds.count("exclusion_warning") == 2 and "exclusion_warning_cleared" in kinds
    (excluded,) = events_of(db, "excluded", "idle")
    assert excluded["rule"] == "idle" and excluded["figures"]["lasted_s"] >= 5
    assert participant_row(db, "idle").status == "excluded"
