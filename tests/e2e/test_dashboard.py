"""The study dashboard in real Chromium: log in with the password from the environment, watch a server-mode game
of two real Socket.IO clients appear and finish, read a participant's timeline whose URL parameter holds markup
(shown as text), pause enrolment and see a new participant refused with the clear text, download the export zip,
and check the plots were drawn (uPlot's canvas has a size and the series' colour in its pixels). And end a stuck
game of two real Chromium pages from the dashboard: both pages get the researcher's game-over and go on to the
end page; the data keeps the partial episode and the end reason, recorded once although the game was asked to end
three times at once. The same for a p2p game (WebRTC on loopback):
both pages upload what they played and show the researcher's message."""

from __future__ import annotations

import threading
import time
import zipfile
from pathlib import Path

import pytest
from experiment_harness import build_app, load_example, run_async
from lifecycle_support import CONSENT, Page, event_kinds, participant_row, read_db
from p2p_experiments import SCENE, open_player, p2p_app, wait_playing
from playwright.sync_api import expect

from interactive_gym.server.admin.auth import PASSWORD_ENV

PASSWORD = "dashboard-test-pw"
MARKUP = "<b>x</b>"
ERRORS_RGB = (207, 34, 46)  # admin.js: the "errors" series stroke, #cf222e


async def play_pair(url: str, started: threading.Event) -> None:
    """Two participants through consent into one server-mode game, until it is over for both."""
    pages = [await Page(url, name).open() for name in ("pair-a", "pair-b")]
    for page in pages:
        await page.wait_scene("consent")
        assert (await page.call("advance", {"scene_index": 0, "scene_id": "consent", "answers": CONSENT}))["ok"]
        await page.wait_scene("orchard_pair")
    for page in pages:
        await page.call("join_game", {"scene_index": 1, "scene_id": "orchard_pair"})
    for page in pages:
        await page.wait("game_start")
    started.set()
    for page in pages:
        await page.wait("game_over", timeout=30)
    for page in pages:
        await page.close()


def canvas_has_colour(page, rgb: tuple[int, int, int]) -> dict:
    return page.evaluate("""([r, g, b]) => {
        const canvas = document.querySelector('#plots canvas');
        const ctx = canvas.getContext('2d');
        const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        let coloured = 0, series = 0;
        for (let i = 0; i < px.length; i += 4) {
            if (px[i + 3] > 0) coloured++;
            if (px[i + 3] > 200 && Math.abs(px[i] - r) < 12 && Math.abs(px[i + 1] - g) < 12 && Math.abs(px[i + 2] - b) < 12) series++;
        }
        return { width: canvas.width, height: canvas.height, coloured, series };
    }""", list(rgb))


def test_dashboard_live_game_pause_export_and_plots(live_server, new_context, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    example = load_example("examples/demo/two_humans.py")
    db = tmp_path / "dashboard.sqlite"
    app = build_app(example.build_config(max_steps=60, fps=10, db=str(db)))
    server = live_server(app.asgi)

    admin = new_context(accept_downloads=True).new_page()
    response = admin.goto(f"{server.url}/admin")
    assert response is not None and response.status == 401  # the login form, not the dashboard
    admin.fill("#password", "wrong")
    admin.click("#login")
    admin.wait_for_selector("#login-error:not([hidden])")
    admin.fill("#password", PASSWORD)
    admin.click("#login")
    admin.wait_for_selector("#live-status[data-state=live]")
    admin.wait_for_selector("body[data-pushes]")
    assert app.dashboard.auth.unauthorized["POST /admin/login"] == 1

    # A participant whose URL parameter holds markup: shown as text in their timeline.
    marked = new_context().new_page()
    marked.goto(f"{server.url}/?subject_id=markup1&note={MARKUP}")
    marked.wait_for_selector("#consent")
    admin.click("button.pid[data-participant=markup1]")
    admin.wait_for_selector("#timeline:not([hidden])")
    assert MARKUP in admin.inner_text("#timeline-participant")
    assert admin.locator("#timeline b").count() == 0 and admin.locator("main b").count() == 0

    # A live server-mode game appears in the view and then finishes.
    started = threading.Event()
    players = threading.Thread(target=lambda: run_async(play_pair(server.url, started)), daemon=True)
    players.start()
    assert started.wait(30)
    admin.wait_for_selector("#games[data-count='1']", timeout=10_000)
    row = admin.locator("#games tbody tr")
    assert "server" in row.inner_text() and "pair-a" in row.inner_text() and "pair-b" in row.inner_text()
    admin.wait_for_selector("#games[data-count='0']", timeout=30_000)
    players.join(timeout=30)
    assert not players.is_alive()

    # Pause enrolment: a new participant gets the clear page; then reopen.
    admin.click("#enrolment-toggle")
    admin.wait_for_selector("#enrolment-state[data-open=false]")
    assert not app.server.flow.enrolment_open
    newcomer = new_context().new_page()
    newcomer.goto(f"{server.url}/?subject_id=late1")
    refused = newcomer.wait_for_selector("[data-refused=refused_paused]")
    assert refused.inner_text() == "This study is not taking participants right now. Please try again later."
    assert app.server.registry.get("late1") is None

    # The export: a zip of CSVs with the game's episode in it.
    with admin.expect_download() as download_info:
        admin.click("#export")
    archive = zipfile.ZipFile(download_info.value.path())
    names = set(archive.namelist())
    assert {"participants.csv", "episodes.csv", "steps.csv", "events.csv"} <= names
    assert "orchard_pair" in archive.read("episodes.csv").decode()
    assert "pair-a" in archive.read("participants.csv").decode()

    # The plots: a screenshot of the dashboard, and uPlot's canvas drawn with the series.
    admin.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    drawn = canvas_has_colour(admin, ERRORS_RGB)
    assert drawn["width"] > 100 and drawn["height"] > 100
    assert drawn["coloured"] > 1000 and drawn["series"] > 20, drawn


END_TWICE_MORE = """async (gameId) => {
    // The button's click, and two more asks at once (another dashboard tab, a repeated click).
    const csrf = document.querySelector('meta[name="csrf-token"]').content;
    const ask = () => fetch(`/admin/games/${encodeURIComponent(gameId)}/end`, {
        method: "POST", credentials: "same-origin", body: "{}",
        headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
    }).then(async (r) => [r.status, await r.json()]);
    document.querySelector(`button[data-end-game="${gameId}"]`).click();
    return Promise.all([ask(), ask()]);
}"""


def end_game_three_times(admin, game_id: str) -> None:
    """Clicks End game and asks twice more at once: the extra asks are duplicates (or find the game over)."""
    for status, answer in admin.evaluate(END_TWICE_MORE, game_id):
        assert (status, answer) in ((200, {"ok": True, "duplicate": True}),
                                    (404, {"ok": False, "error": "no such running game"})), (status, answer)


def log_in(admin, url: str) -> None:
    """Logs the dashboard page in with the environment's password and waits for the first live push."""
    admin.goto(f"{url}/admin")
    admin.fill("#password", PASSWORD)
    admin.click("#login")
    admin.wait_for_selector("#live-status[data-state=live]")
    admin.wait_for_selector("body[data-pushes]")


def test_dashboard_ends_a_stuck_game_of_two_browser_pages(live_server, new_context, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    example = load_example("examples/demo/two_humans.py")
    db = tmp_path / "stuck.sqlite"
    # A game far longer than the test: it ends only because the researcher ends it.
    app = build_app(example.build_config(max_steps=100_000, fps=10, db=str(db)))
    server = live_server(app.asgi)
    admin = new_context().new_page()
    log_in(admin, server.url)

    players = {}
    for subject in ("stuck-a", "stuck-b"):
        page = new_context().new_page()
        page.goto(f"{server.url}/?subject_id={subject}")
        page.locator("#consent").check()
        page.locator("#continue").click()
        players[subject] = page
    for page in players.values():
        expect(page.locator("#game-status")).to_have_attribute("data-state", "playing", timeout=20_000)
        page.keyboard.press("ArrowUp")

    admin.wait_for_selector("#games[data-count='1']", timeout=10_000)
    row = admin.locator("#games tbody tr")
    assert "stuck-a" in row.inner_text() and "stuck-b" in row.inner_text()
    (game_id,) = app.server.server_mode.runners
    # The pages say "playing" when their countdown ends, which can be a moment before the server's first tick:
    # the game is ended once it has played a step (the stored episode must hold what was played).
    runner = app.server.server_mode.runners[game_id]
    deadline = time.monotonic() + 10
    while runner.game.t < 1:
        assert time.monotonic() < deadline, "the game never ticked"
        players["stuck-a"].wait_for_timeout(50)
    end_game_three_times(admin, game_id)

    for page in players.values():
        status = page.locator("#game-status")
        expect(status).to_have_attribute("data-state", "over", timeout=10_000)
        assert status.get_attribute("data-reason") == "ended_by_researcher"
        assert status.inner_text() == "The researcher ended this game. Everything you played has been saved."
    admin.wait_for_selector("#games[data-count='0']", timeout=10_000)
    expect(admin.locator("#action-error")).to_be_hidden()  # the action answered ok
    for page in players.values():
        page.locator("#continue").click()
        expect(page.locator("#completion-code")).to_have_text("PAIR2026", timeout=10_000)

    (ended,) = [e for e in read_db(db, lambda s: s.events("game_ended_by_researcher"))]  # once, for three asks
    assert (ended.game_id, ended.data) == (game_id, {"mode": "server"})
    (episode,) = [e for e in read_db(db, lambda s: s.episodes()) if e.game_id == game_id]
    assert episode.status == "partial" and 0 < episode.step_count < 100_000
    for subject in players:
        assert participant_row(db, subject).status == "completed"
        (record,) = [r for r in read_db(db, lambda s: s.scene_records())
                     if r.participant_id == subject and r.scene_id == "orchard_pair"]
        assert record.meta["game_over"]["reason"] == "ended_by_researcher"
        assert "game_error" not in event_kinds(db, subject)


def test_dashboard_ends_a_stuck_p2p_game_of_two_browser_pages(live_server, new_context, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)  # loopback only
    db = tmp_path / "stuck_p2p.sqlite"
    app = p2p_app(db, max_steps=100_000, fps=20)
    server = live_server(app.asgi)
    admin = new_context().new_page()
    log_in(admin, server.url)
    players = {s: open_player(new_context().new_page(), server.url, s) for s in ("peer-a", "peer-b")}
    wait_playing(list(players.values()), timeout_ms=120_000)
    for page in players.values():
        page.keyboard.press("ArrowUp")

    admin.wait_for_selector("#games[data-count='1']", timeout=10_000)
    assert "p2p" in admin.locator("#games tbody tr").inner_text()
    (game_id,) = app.server.p2p_mode.coordinator.games
    end_game_three_times(admin, game_id)
    for page in players.values():
        status = page.locator("#game-status")
        expect(status).to_have_attribute("data-state", "over", timeout=15_000)
        assert status.inner_text() == "The researcher ended this game. Everything you played has been saved."
    admin.wait_for_selector("#games[data-count='0']", timeout=15_000)
    expect(admin.locator("#action-error")).to_be_hidden()
    for page in players.values():
        page.locator("#continue").click()
        expect(page.locator("#completion-code")).to_have_text("P2P2026", timeout=10_000)

    (ended,) = [e for e in read_db(db, lambda s: s.events("game_ended_by_researcher"))]  # once, for three asks
    assert (ended.game_id, ended.data) == (game_id, {"mode": "p2p"})
    episodes = [e for e in read_db(db, lambda s: s.episodes()) if e.game_id == game_id]
    assert sorted(e.source for e in episodes) == ["peer-a", "peer-b"]  # each page uploaded what it played
    assert all(e.status == "partial" and 0 < e.step_count < 100_000 for e in episodes)
    for subject in players:
        assert participant_row(db, subject).status == "completed"
        (record,) = [r for r in read_db(db, lambda s: s.scene_records())
                     if r.participant_id == subject and r.scene_id == SCENE]
        assert record.meta["game_over"]["reason"] == "ended_by_researcher"
