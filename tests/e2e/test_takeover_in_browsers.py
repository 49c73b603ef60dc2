"""Partner-drop policies in real Chromium against a real server and SQLite: AI takeover after a partner closes the tab.

Two real pages play one two-human game of the demo's Fruit Gatherers with ``GymScene(on_partner_drop="ai")``;
one page is closed (``page.close()``) mid-game and the other keeps playing with real key presses to the end of
the game and its end page. The export (``export_csv`` on the real database, what ``interactive-gym export``
writes) must flag every frame of the closed page's agent after the drop (a run played with the default input
while it was gone, ``gap:default-input``, if any, then the takeover policy to the end) and no frame before it;
the remaining participant's agent is never flagged.

Server mode: the server's agent runtime plays the dropped agent once the disconnect grace has run out.
p2p mode: the remaining peer's own simulation plays it (WebRTC on loopback), once the server has told it that
no other peer is left.

A partner excluded by an in-game rule (a hidden tab) is a drop like any other: with the AI policy the other player
plays on; without one (``on_partner_drop="end"``) the other player's game ends with the clear "partner left" page.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path
from typing import Any

import db_under_test
from experiment_harness import ROOT, build_app
from lifecycle_support import participant_row, read_db
from p2p_experiments import GAME_KEYS, open_player, wait_over, wait_playing
from playwright.sync_api import Page, expect

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene
from interactive_gym.export import export_csv
from interactive_gym.screening import HiddenTab

DEMO_DIR = ROOT / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
CONTROLLER = "ai-takeover:greedy_policy"
GAP = "gap:default-input"
CODE = "TAKEOVER1"
SCREEN_OUT = "AWAY1"
GRACE_S = 1.0


def _config(db: Path, mode: str, *, max_steps: int, fps: int, exclusion: list[Any] | None = None,
            on_partner_drop: str = "ai") -> RemoteConfig:
    """The demo pair game with the takeover policy; a consent page first (server mode) so both pages load."""
    width, height = gatherers.canvas_size()
    extra: dict[str, Any] = {"input_delay": 2} if mode == "p2p" else {}
    game = GymScene(
        "orchard", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
        controls=CONTROLS, default_action=gatherers.STAY, policy_mapping={"agent_0": "human", "agent_1": "human"},
        mode=mode, fps=fps, max_steps=max_steps, disconnect_grace_s=GRACE_S, on_partner_drop=on_partner_drop,
        partner_drop_policy=gatherers.greedy_policy if on_partner_drop == "ai" else None, exclusion=exclusion,
        **extra)
    scenes: list[Any] = [StartScene("consent", body_html="<p>Hello</p>")] if mode == "server" else []
    stager = Stager([*scenes, game, EndScene("end", completion_code=CODE, screen_out_completion_code=SCREEN_OUT)])
    config = RemoteConfig().experiment(f"takeover_{mode}", stager=stager, db=db)
    return config.webrtc(stun_urls=[]) if mode == "p2p" else config


def _press_until(page: Page, condition: Any, rng: random.Random, timeout_s: float, what: str) -> None:
    """Real key presses on ``page`` (a tap every ~100 ms) until ``condition()``."""
    for _ in range(int(timeout_s * 10)):
        if condition():
            return
        page.keyboard.press(rng.choice(GAME_KEYS))
        page.wait_for_timeout(100)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def _exported(db: Path, out: Path) -> dict[str, list[dict[str, str]]]:
    export_csv(db_under_test.location_for(db), out)
    tables = {}
    for name in ("steps", "agent_steps", "events", "episodes"):
        with (out / f"{name}.csv").open(newline="") as f:
            tables[name] = list(csv.DictReader(f))
    return tables


def _check_flags(rows: list[dict[str, str]], gone_agent: str, stay_agent: str, gone: str, stay: str,
                 source: str) -> tuple[int, int]:
    """Asserts the per-agent export of one episode upload (``source``) and returns ``(first flagged step, first
    step the AI played)``.

    The closed page's agent is its participant's up to some step; from there every step is flagged: first,
    optionally, a run played with the default input while the page was gone (``gap:default-input``), then the
    takeover policy to the end. No step names a participant who did not play it; the remaining participant's
    agent is theirs on every step.
    """
    gone_rows = sorted((r for r in rows if r["agent"] == gone_agent and r["source"] == source),
                       key=lambda r: int(r["t"]))
    stay_rows = [r for r in rows if r["agent"] == stay_agent and r["source"] == source]
    assert gone_rows and stay_rows, f"no agent_steps rows from {source}"
    ai = [int(r["t"]) for r in gone_rows if r["controller"] == CONTROLLER]
    assert ai, "no step names the takeover policy"
    flagged = [int(r["t"]) for r in gone_rows if r["controller"] != gone]
    first_flag, first_ai = flagged[0], ai[0]
    for row in gone_rows:
        t = int(row["t"])
        if t < first_flag:  # before the drop: the closed page's participant played it
            expected = (gone, gone)
        elif t < first_ai:  # gone, not yet taken over: the default input, nobody's
            expected = (GAP, "")
        else:  # from the takeover on, every step is the AI's
            expected = (CONTROLLER, "")
        assert (row["controller"], row["participant_id"]) == expected, row
    assert all((r["controller"], r["participant_id"]) == (stay, stay) for r in stay_rows)
    return first_flag, first_ai


def _server_pair(new_context: Any, url: str) -> dict[str, Page]:
    """Two pages through consent into one server-mode game: ``{"stay": page, "gone": page}``, both playing."""
    pages = {}
    for subject in ("stay", "gone"):
        page = open_player(new_context().new_page(), url, subject)
        page.locator("#consent").check()
        page.locator("#continue").click()
        pages[subject] = page
    wait_playing(list(pages.values()), timeout_ms=20_000)
    return pages


def _hide(page: Page) -> None:
    """The tab switch (simulated in the document: headless Chromium never hides a page; see test_screening.py)."""
    page.evaluate("""() => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => true});
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => "hidden"});
        document.dispatchEvent(new Event("visibilitychange"));
    }""")


def test_server_mode_ai_takes_over_after_a_partner_closes_the_tab(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "takeover.sqlite"
    app = build_app(_config(db, "server", max_steps=150, fps=10))
    server = live_server(app.asgi)
    pages = _server_pair(new_context, server.url)
    agents = {s: p.evaluate("window.interactiveGym.game.agentId") for s, p in pages.items()}
    assert sorted(agents.values()) == ["agent_0", "agent_1"]
    rng = random.Random(7)

    # Both play until the server has stepped a while (frames drawn on the closing page), then one tab closes.
    frames = lambda: pages["gone"].evaluate("window.interactiveGym.game.frames")  # noqa: E731
    for _ in range(25):
        for page in pages.values():
            page.keyboard.press(rng.choice(GAME_KEYS))
        pages["stay"].wait_for_timeout(100)
    assert frames() >= 10
    pages.pop("gone").close()

    stay = pages["stay"]
    told = lambda: "an AI now plays their part" in stay.inner_text("#game-status")  # noqa: E731
    _press_until(stay, told, rng, timeout_s=30, what="the remaining participant is told an AI plays on")
    over = lambda: stay.get_attribute("#game-status", "data-state") == "over"  # noqa: E731
    _press_until(stay, over, rng, timeout_s=60, what="the remaining participant's game ends")
    assert stay.get_attribute("#game-status", "data-reason") == "complete"
    stay.locator("#continue").click()
    expect(stay.locator("#completion-code")).to_have_text(CODE, timeout=10_000)
    assert participant_row(db, "stay").status == "completed"
    assert participant_row(db, "gone").status == "dropped"

    tables = _exported(db, tmp_path / "export")
    (episode,) = [e for e in tables["episodes"] if e["scene_id"] == "orchard"]
    assert episode["status"] == "complete" and int(episode["step_count"]) == 150
    first_flag, first = _check_flags(tables["agent_steps"], agents["gone"], agents["stay"], "gone", "stay",
                                     "server")
    # The wide steps table says the same, in the closed page's agent's controller column only.
    column = f"controller.{agents['gone']}"
    for row in tables["steps"]:
        t = int(row["t"])
        assert row[column] == (CONTROLLER if t >= first else GAP if t >= first_flag else ""), row
        assert row.get(f"controller.{agents['stay']}", "") == ""
    # The takeover came after the tab closed: the closing page's last keys are before it, none after it.
    key_column = f"keys.{agents['gone']}"
    pressed = [int(r["t"]) for r in tables["steps"] if r[key_column] not in ("", "[]")]
    assert pressed and max(pressed) < first_flag
    (takeover,) = [e for e in tables["events"] if e["kind"] == "partner_takeover"]
    assert takeover["participant_id"] == "gone" and f'"frame": {first}' in takeover["data"]
    assert CONTROLLER in takeover["data"]
    assert read_db(db, lambda s: s.events("partner_takeover"))[0].data["agent"] == agents["gone"]


def test_p2p_remaining_peer_runs_the_ai_after_a_partner_closes_the_tab(live_server, new_context,
                                                                       tmp_path: Path) -> None:
    db = tmp_path / "takeover_p2p.sqlite"
    app = build_app(_config(db, "p2p", max_steps=400, fps=20))
    server = live_server(app.asgi)
    pages = {s: open_player(new_context().new_page(), server.url, s) for s in ("stay", "gone")}
    wait_playing(list(pages.values()), timeout_ms=120_000)  # Pyodide loads in each page; the machine is shared
    agents = {s: p.evaluate("window.interactiveGym.p2p.myAgent") for s, p in pages.items()}
    assert sorted(agents.values()) == ["agent_0", "agent_1"]
    rng = random.Random(11)
    for _ in range(30):
        for page in pages.values():
            page.keyboard.press(rng.choice(GAME_KEYS))
        pages["stay"].wait_for_timeout(100)
    assert pages["gone"].evaluate("window.interactiveGym.p2p.frame") > 20
    pages.pop("gone").close()

    stay = pages["stay"]
    status = stay.locator("#game-status")
    told = lambda: "an AI now plays their part" in status.inner_text()  # noqa: E731
    _press_until(stay, told, rng, timeout_s=30, what="the remaining peer is told an AI plays on")
    assert status.get_attribute("data-state") == "playing"
    over = lambda: status.get_attribute("data-state") == "over"  # noqa: E731
    _press_until(stay, over, rng, timeout_s=90, what="the remaining peer's game ends")
    assert wait_over(stay) == "complete"
    stay.locator("#continue").click()
    expect(stay.locator("#completion-code")).to_have_text(CODE, timeout=10_000)
    assert participant_row(db, "stay").status == "completed"

    tables = _exported(db, tmp_path / "export")
    episodes = {e["source"]: e for e in tables["episodes"] if e["scene_id"] == "orchard"}
    assert (episodes["stay"]["status"], int(episodes["stay"]["step_count"])) == ("complete", 400)
    # The closing page uploaded what it had confirmed as it closed: its own steps, none of them flagged.
    gone_rows = [r for r in tables["agent_steps"] if r["source"] == "gone"]
    assert gone_rows and all(r["controller"] == r["participant_id"] for r in gone_rows)
    gone_last = max(int(r["t"]) for r in gone_rows)
    first_flag, first = _check_flags(tables["agent_steps"], agents["gone"], agents["stay"], "gone", "stay", "stay")
    assert gone_last < first_flag  # flagged from after the last frame the closed page played
    (takeover,) = [e for e in tables["events"] if e["kind"] == "partner_takeover"]
    assert takeover["participant_id"] == "gone"
    assert f'"t": {first}' in takeover["data"] and CONTROLLER in takeover["data"]
    assert '"ai-takeover' in episodes["stay"]["meta.takeovers"]


def test_server_mode_ai_takes_over_from_an_excluded_partner(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "excluded.sqlite"
    rule = HiddenTab(warn_after_s=1, exclude_after_s=3)
    server = live_server(build_app(_config(db, "server", max_steps=150, fps=10, exclusion=[rule])).asgi)
    pages = _server_pair(new_context, server.url)
    agents = {s: p.evaluate("window.interactiveGym.game.agentId") for s, p in pages.items()}
    rng = random.Random(3)
    for _ in range(10):
        for page in pages.values():
            page.keyboard.press(rng.choice(GAME_KEYS))
        pages["stay"].wait_for_timeout(100)
    away, stay = pages["gone"], pages["stay"]
    _hide(away)
    # The player who stays keeps playing (and is never idle or hidden); the hidden one is screened out.
    screened = lambda: away.locator("#completion-code").count() > 0  # noqa: E731
    _press_until(stay, screened, rng, timeout_s=30, what="the hidden player is excluded")
    expect(away.locator("#completion-code")).to_have_text(SCREEN_OUT)
    status = stay.locator("#game-status")
    over = lambda: status.get_attribute("data-state") == "over"  # noqa: E731
    _press_until(stay, over, rng, timeout_s=60, what="the remaining participant's game ends")
    assert status.get_attribute("data-reason") == "complete"
    stay.locator("#continue").click()
    expect(stay.locator("#completion-code")).to_have_text(CODE, timeout=10_000)
    assert participant_row(db, "stay").status == "completed"
    gone = participant_row(db, "gone")
    assert (gone.status, gone.completion_code) == ("excluded", SCREEN_OUT)

    tables = _exported(db, tmp_path / "export")
    (episode,) = [e for e in tables["episodes"] if e["scene_id"] == "orchard"]
    assert episode["status"] == "complete" and int(episode["step_count"]) == 150
    _, first = _check_flags(tables["agent_steps"], agents["gone"], agents["stay"], "gone", "stay", "server")
    kinds = [(e["kind"], e["participant_id"]) for e in tables["events"]]
    assert kinds.index(("excluded", "gone")) < kinds.index(("partner_takeover", "gone"))
    (takeover,) = [e for e in tables["events"] if e["kind"] == "partner_takeover"]
    assert f'"frame": {first}' in takeover["data"]


def test_server_mode_partner_of_an_excluded_player_gets_a_clear_end_without_a_policy(live_server, new_context,
                                                                                     tmp_path: Path) -> None:
    db = tmp_path / "excluded_end.sqlite"
    rule = HiddenTab(warn_after_s=1, exclude_after_s=3)
    config = _config(db, "server", max_steps=100_000, fps=10, exclusion=[rule], on_partner_drop="end")
    server = live_server(build_app(config).asgi)
    pages = _server_pair(new_context, server.url)
    away, stay = pages["gone"], pages["stay"]
    _hide(away)
    status = stay.locator("#game-status")
    over = lambda: status.get_attribute("data-state") == "over"  # noqa: E731
    _press_until(stay, over, random.Random(5), timeout_s=30, what="the partner's game ends")
    expect(away.locator("#completion-code")).to_have_text(SCREEN_OUT, timeout=10_000)
    assert status.get_attribute("data-reason") == "partner_left"
    assert status.inner_text() == "Your partner left the game, so it has ended. Everything you played has been saved."
    stay.locator("#continue").click()
    expect(stay.locator("#completion-code")).to_have_text(CODE, timeout=10_000)
    assert participant_row(db, "stay").status == "completed"
    assert participant_row(db, "gone").status == "excluded"
    (episode,) = [e for e in read_db(db, lambda s: s.episodes()) if e.scene_id == "orchard"]
    assert episode.status == "partial"
    assert not read_db(db, lambda s: s.events("partner_takeover"))
