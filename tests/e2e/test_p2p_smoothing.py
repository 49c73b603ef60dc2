"""Rollback smoothing in real browsers: ``GymScene(rollback_smoothing_frames=3)`` over a faulty network (100 ms
RTT, jitter, 10% loss, no input delay, so the partner's inputs are often predicted wrong) glides the objects the
corrections moved, and changes nothing in the data: both peers' uploads agree frame by frame and the server's
parity verdict agrees. And the renderer alone (tests/e2e/pages/render_harness.html): the pixels glide while the
model holds the corrected position; with 0 frames or an excluded id the correction is drawn at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from p2p_experiments import open_player, p2p_app, play_randomly, read_db, wait_over, wait_playing
from p2p_smoothing_app import with_rollback_smoothing
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from test_renderer_browser import PAGES_DIR, draw, pixels, start

from interactive_gym.rendering import Surface
from interactive_gym.server.static_files import static_mounts

MAX_STEPS = 240
FRAMES = 3


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TURN settings must never leak into a test (or send traffic off loopback)."""
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


def test_smoothing_on_glides_corrections_and_leaves_the_data_agreeing(live_server, new_context,
                                                                      tmp_path: Path) -> None:
    db = tmp_path / "smoothing.sqlite"
    faults = {"seed": 11, "rttMs": 100, "jitterMs": 15, "loss": 0.1}
    app = with_rollback_smoothing(p2p_app(db, max_steps=MAX_STEPS, input_delay=0, faults=faults), FRAMES)
    server = live_server(app.asgi)
    pages = [open_player(new_context().new_page(), server.url, s) for s in ("kim", "lou")]
    wait_playing(pages)
    assert play_randomly(pages, seed=3, gap_ms=100) > 10
    for page in pages:
        assert wait_over(page) == "complete"

    data = read_db(db)
    episodes = data["episodes"]
    assert [e["status"] for e in episodes] == ["complete", "complete"], episodes
    a, b = episodes
    assert [s["t"] for s in a["steps"]] == [s["t"] for s in b["steps"]] == list(range(MAX_STEPS))
    for field in ("actions", "rewards", "terminated", "truncated"):
        assert [s[field] for s in a["steps"]] == [s[field] for s in b["steps"]], field
    assert data["verdicts"] and all(v["agree"] for v in data["verdicts"]), data["verdicts"]
    for episode in episodes:
        network = episode["meta"]["network"]
        assert network["rollbacks"]["count"] > 0, network["rollbacks"]  # the faults really caused rollbacks
        assert network["desyncs"] == [] and network["packets"]["row_mismatches"] == 0

    for page in pages:
        smoothing = page.evaluate("window.interactiveGym.p2p.smoothing()")
        agent = page.evaluate("window.interactiveGym.p2p.myAgent")
        print(f"{agent}: {smoothing}")
        assert smoothing["corrections"] > 0, smoothing
        # Every correction glided (the option reached the page), each glide drawing at least one step.
        assert smoothing["smoothed"] == smoothing["corrections"], smoothing
        assert smoothing["glide_step_px"]["n"] >= smoothing["smoothed"], smoothing


# -- the renderer in Chromium: the drawn pixels glide, the model does not ------------------------------------------
RED_PIXEL, BACKGROUND_PIXEL = (255, 0, 0, 255), (16, 16, 24, 255)


@pytest.fixture
def page(live_server, new_context):
    """The renderer harness page (no assets), as test_renderer_browser.py serves it."""
    server = live_server(Starlette(routes=[*static_mounts(), Mount("/test-pages", app=StaticFiles(directory=PAGES_DIR))]))
    page = new_context().new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{server.url}/test-pages/render_harness.html")
    page.wait_for_function("window.harnessLoaded === true", timeout=30_000)
    yield page
    assert errors == []


def draw_correction(page, packet: dict[str, Any], frames: int | None, exclude: list[str] | None = None) -> float:
    """Draws ``packet`` as a rollback tick's (``frames``: the glide; None: an ordinary tick); returns the model's
    x of "mover" afterwards."""
    return page.evaluate("""async ([packet, frames, exclude]) => {
      const r = harness.renderer;
      if (frames === null) r.draw(packet); else r.draw(packet, {correction: {frames, exclude}});
      await r.whenRendered();
      return r.model.objects.get("mover").x;
    }""", [json.loads(json.dumps(packet)), frames, exclude or []])


def red_columns(page) -> list[int]:
    """The x of every red pixel on the row y = 50."""
    row = page.evaluate("() => Array.from(harness.renderer.canvas.getContext('2d').getImageData(0, 50, 200, 1).data)")
    return [i // 4 for i in range(0, len(row), 4) if tuple(row[i:i + 4]) == RED_PIXEL]


def test_the_renderer_draws_a_glide_while_the_model_holds_the_corrected_place(page) -> None:
    surface = Surface(200, 100, background="#101018")
    start(page, surface)
    surface.rect(0, 40, 20, 20, color="red", id="mover")
    draw(page, surface.commit())
    assert red_columns(page) == list(range(0, 20))
    surface.rect(90, 40, 20, 20, color="red", id="mover")
    assert draw_correction(page, surface.commit(), FRAMES) == 90
    assert red_columns(page) == list(range(30, 50)), "a third of the way"
    # The next ticks leave it where it is (the packets do not touch it): the glide goes on.
    for drawn in (range(60, 80), range(90, 110), range(90, 110)):
        surface.rect(90, 40, 20, 20, color="red", id="mover")
        assert draw_correction(page, surface.commit(), None) == 90
        assert red_columns(page) == list(drawn)
    summary = page.evaluate("() => harness.renderer.smoothing.summary()")
    assert summary["corrections"] == summary["smoothed"] == 1 and summary["jump_px"]["max"] == 90


@pytest.mark.parametrize(("frames", "exclude"), [(0, []), (FRAMES, ["mover"])])
def test_with_zero_frames_or_an_excluded_id_the_correction_is_drawn_at_once(page, frames: int,
                                                                            exclude: list[str]) -> None:
    surface = Surface(200, 100, background="#101018")
    start(page, surface)
    surface.rect(0, 40, 20, 20, color="red", id="mover")
    draw(page, surface.commit())
    surface.rect(90, 40, 20, 20, color="red", id="mover")
    assert draw_correction(page, surface.commit(), frames, exclude) == 90
    assert red_columns(page) == list(range(90, 110))
    assert pixels(page, (10, 50)) == [BACKGROUND_PIXEL]
    assert page.evaluate("() => harness.renderer.smoothing.summary().smoothed") == 0
