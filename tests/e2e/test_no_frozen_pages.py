"""The consent page stays responsive while the next game's files preload, and the game then loads from the cache.

Real Chromium against the real server with the demo's browser-mode scene (Pyodide, Phaser, the ONNX partner).
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

from conftest import BASE_ARGS, CHROMIUM
from experiment_harness import build_app, load_example

from interactive_gym import EndScene, RemoteConfig, Stager, StartScene

LONG_TASK_BOUND_MS = 50  # the bound for any task on a non-game page
CLICK_DELAY_BOUND_MS = 500  # generous: the click waited ~3 s before; a responsive page takes a few ms
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


def test_consent_page_has_no_long_task_while_the_game_preloads(live_server, playwright_instance, tmp_path) -> None:
    app = SlowWasm(build_app(_config(tmp_path)).asgi, delay_s=1.5)
    server = live_server(app)
    context = playwright_instance.chromium.launch_persistent_context(
        tmp_path / "profile", executable_path=CHROMIUM, args=BASE_ARGS)
    try:
        context.add_init_script(OBSERVE)
        _consent_then_game(context.new_page(), server.url, app)
    finally:
        context.close()


def _consent_then_game(page: Any, url: str, app: SlowWasm) -> None:
    page.goto(f"{url}/?subject_id=reader")
    page.wait_for_selector(".scene-start")
    page.wait_for_function("window.interactiveGym.preload !== undefined", timeout=10_000)
    page.check("#consent")  # while the preload runs (the binary is held back 1.5 s)
    page.wait_for_function("window.interactiveGym.preload.doneAt !== null", timeout=60_000)
    page.wait_for_timeout(200)  # a long task is reported after it ends
    preload = page.evaluate("window.interactiveGym.preload")
    clicks = page.evaluate("window.__clicks")
    tasks = page.evaluate("window.__longTasks")

    assert len(clicks) == 1
    assert preload["startedAt"] < clicks[0]["at"] < preload["doneAt"], (preload, clicks)
    assert clicks[0]["delay"] < CLICK_DELAY_BOUND_MS, clicks
    during = [t for t in tasks if t["start"] + t["ms"] > preload["startedAt"] and t["start"] < preload["doneAt"]]
    assert all(t["ms"] < LONG_TASK_BOUND_MS for t in during), during
    assert app.full_downloads == 1, "the Worker downloaded the interpreter once"

    # The game: it starts from the cache (no second download), plays and uploads.
    page.click("#continue")
    page.wait_for_selector("#game-status[data-state=playing]", timeout=60_000)
    page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
    assert page.get_attribute("#game-status", "data-reason") == "complete"
    assert app.full_downloads == 1, "the game page read the interpreter from the HTTP cache"
    page.click("#continue")
    page.wait_for_selector(".scene-end")
