"""Runtime errors are never silent, in real Chromium against the real server: an env step, a render function
or a module import that raises reaches the server log with its traceback, an ``events`` row (``game_error``)
and the participant's page; the steps played before it are stored; the scene's ``on_error`` decides what
follows (``"end"``: the end page with status ``errored`` and the error completion code, never the normal one;
``"continue"``: the next scene, and ``completed`` with the normal code at the end).

The bugs live in ``failing_envs.py`` (step ``BREAK_AT`` divides by zero in ``pace_bonus``; the render of that
step raises ``KeyError`` in ``render_raises``; the AI partner ``policy_raises`` fails when first asked) and ``failing_import_env.py`` (raises ``ImportError`` when
imported in Pyodide only, so the server starts but the browser game cannot).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import db_under_test
import pytest
from browser_runtime_support import gatherers  # first: puts examples/demo on sys.path for failing_envs
from experiment_harness import build_app
from failing_envs import BREAK_AT, make_step_raises, policy_raises, render_raises
from failing_import_env import make_env as make_env_failing_in_pyodide
from playwright.sync_api import Page

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StaticScene
from interactive_gym.server.game_over import END_MESSAGES

pytestmark = pytest.mark.e2e

DONE_CODE, ERROR_CODE = "DONE1", "ERR1"
CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
WIDTH, HEIGHT = gatherers.canvas_size()
LOAD_MS = 60_000


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TURN settings must never reach a test (p2p traffic stays on loopback)."""
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


def game_scene(mode: str, *, env_creator: Any = gatherers.make_env, render_fn: Any = gatherers.render,
               on_error: str = "end", max_steps: int = 200, partner: Any = None) -> GymScene:
    partner = partner or ("human" if mode == "p2p" else gatherers.greedy_policy)
    return GymScene("orchard", env_creator=env_creator, render_fn=render_fn, width=WIDTH, height=HEIGHT,
                    controls=CONTROLS, default_action=gatherers.STAY,
                    policy_mapping={"agent_0": "human", "agent_1": partner}, mode=mode, fps=20,
                    max_steps=max_steps, seed=11, on_error=on_error, disconnect_grace_s=5.0)


def app_for(db: Path, scene: GymScene) -> Any:
    """The game, a page after it, and the end page with a normal and an error completion code."""
    stager = Stager([scene, StaticScene("after", title="After the game"),
                     EndScene("end", completion_code=DONE_CODE, error_completion_code=ERROR_CODE)])
    config = RemoteConfig().experiment("errors_e2e", stager=stager, db=db)
    if scene.mode == "p2p":
        config = config.webrtc(stun_urls=[])
    return build_app(config).asgi


def open_page(new_context: Any, url: str, subject: str) -> Page:
    page = new_context().new_page()
    lines: list[str] = []
    frames: list[str] = []
    page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"))
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    page.console_lines = lines  # type: ignore[attr-defined]
    page.ws_frames = frames  # type: ignore[attr-defined]
    page.goto(f"{url}/?subject_id={subject}")
    return page


def wait_error_over(page: Page, timeout_ms: float = LOAD_MS) -> None:
    """The page shows the game over because of an error, and offers Continue."""
    page.wait_for_selector("#game-status[data-state=over]", timeout=timeout_ms)
    assert page.get_attribute("#game-status", "data-reason") == "error", page.console_lines  # type: ignore[attr-defined]
    assert "error" in page.text_content("#game-status")
    page.wait_for_selector("#continue:visible", timeout=30_000)


def continue_to_end(page: Page, on_error: str) -> str:
    """Clicks Continue until the end page; returns its completion code (checks the page in between)."""
    page.click("#continue")
    if on_error == "continue":
        page.wait_for_selector(".scene[data-scene-id=after]")
        page.click("#continue")
    page.wait_for_selector(".scene-end")
    return page.text_content("#completion-code") or ""


def stored(db: Path, subject: str) -> dict[str, Any]:
    with db_under_test.open_storage(db) as storage:
        participant = next(p for p in storage.participants() if p.participant_id == subject)
        errors = [e for e in storage.events("game_error") if e.participant_id == subject]
        episodes = [e for e in storage.episodes() if e.source in (subject, "server")]
        steps = {e.id: storage.steps(e.id) for e in episodes}
    return {"participant": participant, "errors": errors, "episodes": episodes, "steps": steps}


def check_end(data: dict[str, Any], on_error: str, code: str) -> None:
    participant = data["participant"]
    if on_error == "end":
        assert participant.status == "errored" and participant.completion_code == ERROR_CODE == code
    else:
        assert participant.status == "completed" and participant.completion_code == DONE_CODE == code


def traceback_records(caplog: pytest.LogCaptureFixture, *needles: str) -> list[logging.LogRecord]:
    """Server log records whose text (message plus any exception traceback) contains every needle."""
    found = []
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        if all(n in text for n in needles):
            found.append(record)
    return found


# -- server mode -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("failure", "on_error"), [("step", "end"), ("render", "end"), ("policy", "end"),
                                                   ("step", "continue"), ("render", "continue")])
def test_server_mode_env_or_render_error(failure, on_error, live_server, new_context, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "server.sqlite"
    if failure == "step":
        scene = game_scene("server", env_creator=make_step_raises, on_error=on_error)
        function, exception, played = "pace_bonus", "ZeroDivisionError", BREAK_AT
    elif failure == "render":
        scene = game_scene("server", render_fn=render_raises, on_error=on_error)
        function, exception, played = "render_raises", "KeyError", BREAK_AT + 1  # the step it drew is kept
    else:  # the AI partner raises the first time it is asked, before any step
        scene = game_scene("server", partner=policy_raises, on_error=on_error)
        function, exception, played = "policy_raises", "RuntimeError", 0
    server = live_server(app_for(db, scene))
    page = open_page(new_context, server.url, "srv")
    wait_error_over(page, timeout_ms=15_000)
    assert page.text_content("#game-status") == END_MESSAGES["error"]
    page.reload()  # the game over is shown again after a reload...
    page.wait_for_selector(".scene-gym #game-over")
    assert page.text_content("#game-over") == END_MESSAGES["error"]
    # ...and the server's traceback never reaches the page (it names the server's files and code).
    assert not [f for f in page.ws_frames if "failing_envs.py" in f or "Traceback" in f]  # type: ignore[attr-defined]

    code = continue_to_end(page, on_error)
    data = stored(db, "srv")
    (event,) = data["errors"]
    assert event.scene_id == "orchard"
    for needle in (exception, function, "failing_envs.py", "Traceback"):
        assert needle in event.data["error"], event.data
    (episode,) = data["episodes"]
    assert episode.status == "partial" and episode.mode == "server"
    assert [s.t for s in data["steps"][episode.id]] == list(range(played))
    check_end(data, on_error, code)
    if on_error == "end":
        assert page.text_content(".scene-end .body").startswith("The game could not continue")
    assert traceback_records(caplog, "crashed", function, exception), "the server log has no traceback"


# -- browser mode ----------------------------------------------------------------------------------------------

def test_browser_mode_env_error_mid_episode(live_server, new_context, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "browser.sqlite"
    server = live_server(app_for(db, game_scene("browser", env_creator=make_step_raises)))
    page = open_page(new_context, server.url, "brw")
    wait_error_over(page)
    assert "Sorry, the game stopped because of an error" in page.text_content(".ig-game-message")
    assert any("pace_bonus" in line for line in page.console_lines), page.console_lines  # type: ignore[attr-defined]

    code = continue_to_end(page, "end")
    data = stored(db, "brw")
    (event,) = data["errors"]
    for needle in ("ZeroDivisionError", "pace_bonus", "failing_envs.py", "Traceback"):
        assert needle in event.data["error"], event.data
    (episode,) = data["episodes"]
    assert episode.status == "partial" and episode.mode == "browser" and episode.meta["end_reason"] == "error"
    assert [s.t for s in data["steps"][episode.id]] == list(range(BREAK_AT))
    check_end(data, "end", code)
    assert traceback_records(caplog, "brw", "pace_bonus", "ZeroDivisionError"), "the server log has no traceback"


def test_browser_mode_game_that_cannot_start(live_server, new_context, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "load.sqlite"
    server = live_server(app_for(db, game_scene("browser", env_creator=make_env_failing_in_pyodide)))
    page = open_page(new_context, server.url, "ldr")
    page.wait_for_selector("#game-status[data-reason=error]", timeout=LOAD_MS)
    assert "could not start" in page.text_content("#game-status")
    # Not left waiting on the loading screen: once the error is stored, the participant can move on.
    page.wait_for_selector("#continue:visible", timeout=15_000)
    assert page.get_attribute("#game-status", "data-state") == "over"
    assert "researchers have been told" in page.text_content("#game-status")

    code = continue_to_end(page, "end")
    data = stored(db, "ldr")
    (event,) = data["errors"]
    for needle in ("ImportError", "native_orchard", "failing_import_env.py", "Traceback"):
        assert needle in event.data["error"], event.data
    (episode,) = data["episodes"]  # the report: one zero-step partial episode 0
    assert episode.status == "partial" and episode.episode == 0 and data["steps"][episode.id] == []
    check_end(data, "end", code)
    assert traceback_records(caplog, "ldr", "native_orchard"), "the server log has no traceback"


# -- p2p mode --------------------------------------------------------------------------------------------------

def test_p2p_env_error_in_both_peers(live_server, new_context, tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO)
    db = tmp_path / "p2p.sqlite"
    server = live_server(app_for(db, game_scene("p2p", env_creator=make_step_raises)))
    pages = {subject: open_page(new_context, server.url, subject) for subject in ("pa", "pb")}
    for page in pages.values():
        wait_error_over(page)
    codes = {subject: continue_to_end(page, "end") for subject, page in pages.items()}

    for subject, code in codes.items():
        data = stored(db, subject)
        (event,) = data["errors"]
        assert event.game_id and event.scene_id == "orchard"
        for needle in ("ZeroDivisionError", "pace_bonus", "failing_envs.py", "Traceback"):
            assert needle in event.data["error"], (subject, event.data)
        # What both peers confirmed before the failing step is kept.
        for episode in data["episodes"]:
            assert episode.status == "partial" and episode.mode == "p2p"
            assert [s.t for s in data["steps"][episode.id]] == list(range(len(data["steps"][episode.id])))
            assert len(data["steps"][episode.id]) <= BREAK_AT
        check_end(data, "end", code)
        assert traceback_records(caplog, subject, "pace_bonus", "ZeroDivisionError"), \
            f"the server log has no traceback for {subject}"
