"""Stored times are when the game was played, in real Chromium against the real server.

A browser-mode episode and a p2p episode are played; the test reads the wall clock (``time.time()``, the same
clock the server and the pages read on this machine) right before the game scene starts, when the page is
seen playing, and once the page says its uploads are acknowledged. Every stored time of the episode
(``started_at``, ``ended_at``, each step's ``server_ts``) must lie inside that window, give or take
``OFFSET_BOUND_S`` for the page's estimate of the server clock (its error is at most half a loopback round
trip, far below the bound), and be ordered; ``started_at`` must precede the moment the page was seen playing
(an episode stamped with its upload time would start seconds too late); ``received_at`` is the upload's own
arrival; and the page's raw readings are kept next to the corrected ones.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import db_under_test
import pytest
from browser_runtime_support import gatherers
from experiment_harness import build_app
from playwright.sync_api import Browser, Page

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StaticScene

pytestmark = pytest.mark.e2e

OFFSET_BOUND_S = 1.0
CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
WIDTH, HEIGHT = gatherers.canvas_size()
LOAD_MS = 60_000
MAX_STEPS = 40


def experiment(db: Path, mode: str) -> Any:
    """A page, then one short game in ``mode``, then the end."""
    partner: Any = "human" if mode == "p2p" else gatherers.greedy_policy
    game = GymScene("orchard", env_creator=gatherers.make_env, render_fn=gatherers.render, width=WIDTH,
                    height=HEIGHT, controls=CONTROLS, default_action=gatherers.STAY,
                    policy_mapping={"agent_0": "human", "agent_1": partner}, mode=mode, fps=20,
                    max_steps=MAX_STEPS, seed=5)
    stager = Stager([StaticScene("ready", title="Ready?"), game, EndScene("end", completion_code="TIMES1")])
    config = RemoteConfig().experiment("times_e2e", stager=stager, db=db)
    if mode == "p2p":
        config = config.webrtc(stun_urls=[])
    return build_app(config).asgi


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


def play(browser: Browser, url: str, subjects: list[str], *, playing_js: str) -> dict[str, float]:
    """Opens one page per subject at the first page, starts the game scene on all, and waits until every page
    says the game is over (its uploads acknowledged). Returns the wall-clock window."""
    pages: list[Page] = []
    for subject in subjects:
        page = browser.new_context(permissions=["camera", "microphone"]).new_page()
        page.goto(f"{url}/?subject_id={subject}")
        page.wait_for_selector(".scene[data-scene-id=ready]")
        pages.append(page)
    before = time.time()
    for page in pages:
        page.click("#continue")
    for page in pages:
        page.wait_for_function(playing_js, timeout=LOAD_MS)
    playing = time.time()
    for page in pages:
        page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
        assert page.get_attribute("#game-status", "data-reason") == "complete"
    after = time.time()
    for page in pages:
        page.context.close()
    return {"before": before, "playing": playing, "after": after}


def stored_episodes(db: Path) -> list[tuple[Any, list[Any]]]:
    with db_under_test.open_storage(db) as storage:
        return [(e, storage.steps(e.id)) for e in storage.episodes()]


def check_window(episode: Any, steps: list[Any], window: dict[str, float]) -> None:
    """The played times lie in the real play window, in order, and the upload time is stored apart."""
    assert episode.status == "complete" and len(steps) == MAX_STEPS
    stamps = [s.server_ts for s in steps]
    assert all(ts is not None for ts in stamps)
    assert window["before"] - OFFSET_BOUND_S <= episode.started_at <= window["playing"] + OFFSET_BOUND_S
    assert episode.started_at <= stamps[0]
    assert stamps == sorted(stamps), "step times go backwards"
    assert stamps[-1] <= episode.ended_at <= window["after"] + OFFSET_BOUND_S
    # The upload's arrival, on the server's own clock: after the episode ended, before the page said so.
    assert episode.received_at is not None and episode.received_at <= window["after"]
    assert episode.received_at >= episode.ended_at
    assert not episode.meta.get("time_flags"), episode.meta


def check_raw_kept(episode: Any, steps: list[Any]) -> None:
    """The page's own readings are stored, and the stored times are exactly them plus the offset estimate."""
    offset = episode.clock_offset or 0.0
    assert episode.client_started_at is not None and episode.client_ended_at is not None
    assert episode.started_at == pytest.approx(episode.client_started_at + offset, abs=1e-6)
    assert episode.ended_at == pytest.approx(episode.client_ended_at + offset, abs=1e-6)
    for step in steps:
        assert step.client_ts is not None
        assert step.server_ts == pytest.approx(step.client_ts + offset, abs=1e-6)


def test_browser_episode_times_are_when_it_was_played(live_server, browser, tmp_path) -> None:
    db = tmp_path / "browser.sqlite"
    server = live_server(experiment(db, "browser"))
    window = play(browser, server.url, ["tb"], playing_js="window.interactiveGym.game?.phase === 'playing'")
    ((episode, steps),) = stored_episodes(db)
    assert episode.mode == "browser"
    check_window(episode, steps, window)
    check_raw_kept(episode, steps)
    assert episode.clock_offset is not None  # the page measured the server clock's lead
    assert abs(episode.clock_offset) < OFFSET_BOUND_S  # one machine: the clocks agree within the estimate


def test_p2p_episode_times_are_when_it_was_played(live_server, browser, tmp_path) -> None:
    db = tmp_path / "p2p.sqlite"
    server = live_server(experiment(db, "p2p"))
    window = play(browser, server.url, ["ta", "tc"],
                  playing_js="document.querySelector('#game-status')?.dataset.state === 'playing'")
    episodes = stored_episodes(db)
    assert sorted(e.source for e, _ in episodes) == ["ta", "tc"]  # one trajectory per peer
    for episode, steps in episodes:
        assert episode.mode == "p2p"
        check_window(episode, steps, window)
        check_raw_kept(episode, steps)
        assert episode.clock_offset is not None  # each peer measured the server clock's lead
        assert abs(episode.clock_offset) < OFFSET_BOUND_S
