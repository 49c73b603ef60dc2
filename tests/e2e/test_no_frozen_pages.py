"""The consent page stays responsive while the next game preloads, and the game then starts from the preloaded Worker.

Real Chromium against the real server with the demo's browser-mode scene (Pyodide, Phaser, the ONNX partner).
The preload starts the game's Worker (browser_game_worker.js: Pyodide starts there, off the page's main thread);
the game scene then builds the env in that Worker and draws its first frame soon after Continue.
Long tasks on the page's main thread are observed with a ``PerformanceObserver`` of type ``longtask``
installed before any page script runs. The Pyodide WebAssembly download is held back by 1.5 s (a stand-in for
a slow network) so the participant's click certainly lands while the preload runs.

The browser has a profile on disk, like a participant's: an in-memory HTTP cache (Playwright's default
incognito contexts, and private windows) does not keep the 9.6 MB WebAssembly file, so there the game page
downloads it a second time (checked: python_stdlib.zip is kept, the binary is not).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from conftest import BASE_ARGS, CHROMIUM, LiveServer
from experiment_harness import build_app, load_example

from interactive_gym import EndScene, RemoteConfig, Stager, StartScene

LONG_TASK_BOUND_MS = 50  # the bound for any task on a non-game page
CLICK_DELAY_BOUND_MS = 500  # generous: the click waited ~3 s before; a responsive page takes a few ms
# Generous: ~0.8 s measured at a load average of 12 (benchmarks/no_frozen_pages.py); starting the interpreter on
# the game page took 5.5 s.
FIRST_FRAME_BOUND_MS = 5000
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
WASM_PATH = "/vendor/pyodide/pyodide.asm.wasm"

OBSERVE = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__longTasks.push({ start: e.startTime, ms: e.duration });
}).observe({ type: "longtask", buffered: true });
window.__clicks = [];
addEventListener("click", (e) => window.__clicks.push({ at: performance.now(), delay: performance.now() - e.timeStamp }),
                 true);
"""


class SlowWasm:
    """ASGI wrapper: delays the Pyodide binary's response (a slow network) and counts full downloads of it."""

    def __init__(self, app: Any, delay_s: float) -> None:
        self.app = app
        self.delay_s = delay_s
        self.full_downloads = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != WASM_PATH:
            await self.app(scope, receive, send)
            return
        await asyncio.sleep(self.delay_s)

        async def counting_send(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                self.full_downloads += 1
            await send(message)

        await self.app(scope, receive, counting_send)


def _config(tmp_path: Path) -> RemoteConfig:
    example = load_example("examples/demo/experiment.py")
    stager = Stager([
        StartScene("consent", title="Welcome", body_html="<p>A short study.</p>"),
        example.browser_game(fps=10, max_steps=20, num_episodes=1),
        EndScene("end", completion_code="NOFREEZE"),
    ])
    return RemoteConfig().experiment("no_frozen_pages", stager=stager, db=tmp_path / "n.sqlite")


@pytest.fixture(scope="module")
def consent_then_game(playwright_instance: Any, tmp_path_factory: Any) -> dict[str, Any]:
    """One participant: the consent page while the game preloads, then the game to its end. What was seen."""
    tmp = tmp_path_factory.mktemp("no_frozen_pages")
    app = SlowWasm(build_app(_config(tmp)).asgi, delay_s=1.5)
    server = LiveServer(app).start()
    context = playwright_instance.chromium.launch_persistent_context(
        tmp / "profile", executable_path=CHROMIUM, args=BASE_ARGS)
    try:
        context.add_init_script(OBSERVE)
        return _consent_then_game(context.new_page(), server.url, app)
    finally:
        context.close()
        server.stop()


def _consent_then_game(page: Any, url: str, app: SlowWasm) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    page.goto(f"{url}/?subject_id=reader")
    page.wait_for_selector(".scene-start")
    page.wait_for_function("window.interactiveGym.preload !== undefined", timeout=10_000)
    page.check("#consent")  # while the preload runs (the binary is held back 1.5 s)
    page.wait_for_function("window.interactiveGym.preload.doneAt !== null", timeout=60_000)
    page.wait_for_timeout(200)  # a long task is reported after it ends
    seen["preload"] = page.evaluate("window.interactiveGym.preload")
    seen["consent_clicks"] = page.evaluate("window.__clicks")
    seen["preload_tasks"] = page.evaluate("window.__longTasks")
    seen["downloads_after_preload"] = app.full_downloads

    page.click("#continue")
    page.wait_for_selector("#game-status[data-state=playing]", timeout=60_000)
    seen["continue_at"] = page.evaluate("window.__clicks[window.__clicks.length - 1].at")
    seen["first_frame_at"] = page.evaluate("performance.getEntriesByName('ig-first-frame')[0].startTime")
    seen["workers"] = [worker.url for worker in page.workers]
    page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
    seen["reason"] = page.get_attribute("#game-status", "data-reason")
    seen["downloads_after_game"] = app.full_downloads
    # What this page itself fetched (a Worker's fetches are in the Worker's own timeline, not here).
    seen["page_resources"] = page.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    page.click("#continue")
    page.wait_for_selector(".scene-end")
    return seen


def test_consent_page_has_no_long_task_while_the_game_preloads(consent_then_game: dict[str, Any]) -> None:
    preload, clicks = consent_then_game["preload"], consent_then_game["consent_clicks"]
    assert len(clicks) == 1
    assert preload["startedAt"] < clicks[0]["at"] < preload["doneAt"], (preload, clicks)
    assert clicks[0]["delay"] < CLICK_DELAY_BOUND_MS, clicks
    during = [t for t in consent_then_game["preload_tasks"]
              if t["start"] + t["ms"] > preload["startedAt"] and t["start"] < preload["doneAt"]]
    assert all(t["ms"] < LONG_TASK_BOUND_MS for t in during), during
    assert consent_then_game["downloads_after_preload"] == 1, "the Worker downloaded the interpreter once"


def test_the_game_starts_from_the_preloaded_worker_soon_after_continue(consent_then_game: dict[str, Any]) -> None:
    seen = consent_then_game
    first_frame_ms = seen["first_frame_at"] - seen["continue_at"]
    assert 0 < first_frame_ms < FIRST_FRAME_BOUND_MS, first_frame_ms
    assert any(url.endswith("/static/js/browser_game_worker.js") for url in seen["workers"]), seen["workers"]
    on_page = [url for url in seen["page_resources"] if url.rsplit("/", 1)[-1] in PYODIDE_FILES]
    assert on_page == [], "the interpreter is never loaded in the page"
    assert seen["downloads_after_game"] == 1, "no second download of the interpreter"
    assert seen["reason"] == "complete"
