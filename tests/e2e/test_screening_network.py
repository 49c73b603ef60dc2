"""Network screening rules triggered for real in Chromium against a real server, SQLite and coturn.

In game: a page whose answers to the server's round-trip probes are held back by the project's fault injector
(``transport_faults.js``, the profile in ``RemoteConfig.test_faults``) has a round trip above the bound in M of
the last N windows and is excluded from its server-mode game (``SustainedRtt``). At entry: the TURN pre-test of a
study with a p2p scene (``TurnPretest``) gathers a relay candidate through a real coturn with the credentials the
server mints from the shared secret, and a study configured with the wrong secret turns the participant away
with the screen-out code (coturn refuses the minted credentials). Each test asserts the page, the participant's
status and code, and the events row with the rule and its figures.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from experiment_harness import ROOT, build_app
from lifecycle_support import event_kinds, participant_row, read_db
from playwright.sync_api import expect
from screening_support import consent_scene, events_of, open_page, solo_game, start_game, wait_until

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
from interactive_gym.screening import NoMobileDevices, SustainedRtt, TurnPretest

DEMO_DIR = ROOT / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

SCREEN_OUT = "NETWORK0"
DONE = "DONE2"
SECRET = "screening-turn-secret"  # noqa: S105 - a test fixture value


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TURN settings must never leak into a test (or send traffic off loopback)."""
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


def _end() -> EndScene:
    return EndScene("end", completion_code=DONE, screen_out_completion_code=SCREEN_OUT)


# -- in game: sustained round trip above the bound ---------------------------------------------------------------
RTT_RULE = SustainedRtt(max_ms=150, bad_windows=2, of_windows=3, window_s=1)


def _rtt_config(db: Path, faults: dict[str, Any] | None) -> RemoteConfig:
    stager = Stager([consent_scene(), solo_game([RTT_RULE]), _end()])
    config = RemoteConfig().experiment("rtt_screening", stager=stager, db=db)
    config.test_faults = faults
    return config


def test_a_sustained_slow_round_trip_in_game_excludes_the_player(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "rtt.sqlite"
    # No entry rules: the page learns the fault profile from the in-game probes themselves.
    server = live_server(build_app(_rtt_config(db, {"seed": 5, "rttMs": 400, "jitterMs": 0, "loss": 0})).asgi)
    page = open_page(new_context, server.url, "laggy")
    start_game(page)

    expect(page.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=30_000)
    expect(page.locator("#notice")).to_contain_text("Your connection to our server was too slow for the game")
    (excluded,) = events_of(db, "excluded", "laggy")
    assert excluded["rule"] == "sustained_rtt" and excluded["stage"] == "in_game"
    figures = excluded["figures"]
    assert (figures["max_ms"], figures["window_s"]) == (150, 1)
    bad = [m for m in figures["window_medians_ms"] if m > 150]
    assert figures["bad_windows"] == len(bad) >= 2 and len(figures["window_medians_ms"]) <= 3
    assert min(bad) >= 400  # each probe answer was held back 2 x 200 ms by the injector
    row = participant_row(db, "laggy")
    assert (row.status, row.completion_code, row.current_scene) == ("excluded", SCREEN_OUT, "end")
    # The game scene's data was kept: the episode played up to the exclusion is stored.
    (episode,) = read_db(db, lambda s: s.episodes())
    assert episode.scene_id == "solo" and episode.step_count > 0


def test_a_fast_round_trip_in_game_is_not_excluded(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "rtt_fast.sqlite"
    app = build_app(_rtt_config(db, None))
    server = live_server(app.asgi)
    page = open_page(new_context, server.url, "quick")
    start_game(page)
    # Watched for more than N windows (the monitor has closed at least three): every window was fast.
    screening = app.server.flow.screening
    wait_until(lambda: (w := screening._watches.get("quick")) is not None and len(w.monitors.rtt.medians) >= 3,
           20, "three closed RTT windows")
    medians = list(screening._watches["quick"].monitors.rtt.medians)
    assert max(medians) < 150, medians
    assert participant_row(db, "quick").status == "active"
    assert "excluded" not in event_kinds(db, "quick")
    assert page.locator("#completion-code").count() == 0


# -- entry: the TURN pre-test of a p2p study ---------------------------------------------------------------------
def _turn_config(db: Path, turn_url: str, secret: str) -> RemoteConfig:
    width, height = gatherers.canvas_size()
    game = GymScene("orchard_p2p", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                    height=height, controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                    policy_mapping={"agent_0": "human", "agent_1": "human"}, mode="p2p", fps=15, max_steps=100)
    stager = Stager([consent_scene(), game, _end()])
    config = RemoteConfig().experiment("turn_screening", stager=stager, db=db)
    config.webrtc(turn_secret=secret, turn_urls=[turn_url], stun_urls=[])
    return config.screening(entry=[NoMobileDevices(), TurnPretest(timeout_s=5)])


def test_the_turn_pretest_passes_through_coturn_with_the_right_secret(live_server, new_context, turn_server,
                                                                      tmp_path: Path) -> None:
    turn = turn_server(auth_secret=SECRET)
    db = tmp_path / "turn_ok.sqlite"
    server = live_server(build_app(_turn_config(db, turn.url("udp"), SECRET)).asgi)
    page = open_page(new_context, server.url, "relayed")
    expect(page.locator("#consent")).to_be_visible(timeout=15_000)
    (passed,) = events_of(db, "screening_passed", "relayed")
    assert passed["facts"]["relay"] is True and 0 <= passed["facts"]["relay_ms"] < 5000
    assert participant_row(db, "relayed").status == "active"
    assert "excluded" not in event_kinds(db, "relayed")
    assert "ALLOCATE" in turn.log_text()  # the relay candidate came from this coturn


def test_the_turn_pretest_with_a_wrong_secret_screens_the_participant_out(live_server, new_context, turn_server,
                                                                          tmp_path: Path) -> None:
    turn = turn_server(auth_secret=SECRET)
    db = tmp_path / "turn_bad.sqlite"
    server = live_server(build_app(_turn_config(db, turn.url("udp"), "not-" + SECRET)).asgi)
    page = open_page(new_context, server.url, "blocked")
    expect(page.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=20_000)
    assert page.locator("#consent").count() == 0
    (excluded,) = events_of(db, "excluded", "blocked")
    assert excluded["rule"] == "turn_pretest" and excluded["stage"] == "entry"
    assert excluded["figures"]["relay"] is False and excluded["figures"]["relay_ms"] is None
    row = participant_row(db, "blocked")
    assert (row.status, row.completion_code, row.current_scene) == ("excluded", SCREEN_OUT, "end")
    assert "screening_passed" not in event_kinds(db, "blocked")
    assert "401" in turn.log_text()  # coturn refused the credentials minted from the wrong secret
