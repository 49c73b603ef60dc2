"""Shared fixtures for real-browser tests: Debian's Chromium driven by Playwright, and live servers.

Chromium flags follow ../shared/BROWSER_TESTING.md: no sandbox (root), no background networking (the
machine has no internet), loopback allowed in peer connections (WebRTC on ``lo``).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from interactive_gym.server.static_files import static_mounts
from interactive_gym.tools.run import FAST_PATHS

CHROMIUM = "/usr/bin/chromium"
BASE_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-loopback-in-peer-connection",
    # Timers in hidden/background pages must keep running for real-time games under test.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]
PAGES_DIR = Path(__file__).parent / "pages"

pytestmark = pytest.mark.e2e


def free_port() -> int:
    """Returns a TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """Runs an ASGI app with uvicorn in a background thread on 127.0.0.1 for the duration of a test."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The websocket, HTTP and loop implementations ``interactive-gym run`` serves with.
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on",
                                **FAST_PATHS)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@pytest.fixture
def live_server() -> Iterator[Callable[[Any], LiveServer]]:
    """Factory: ``live_server(app, port=None)`` starts ``app`` and returns the running :class:`LiveServer`
    (a restarted server keeps its port, so pages keep their origin and its storage)."""
    started: list[LiveServer] = []

    def start(app: Any, port: int | None = None) -> LiveServer:
        server = LiveServer(app, port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def static_server(live_server: Callable[[Any], LiveServer]) -> LiveServer:
    """Serves ``/static``, ``/vendor/*`` and the test pages in ``tests/e2e/pages`` at ``/test-pages``."""
    app = Starlette(routes=[*static_mounts(), Mount("/test-pages", app=StaticFiles(directory=PAGES_DIR))])
    return live_server(app)


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


def launch_chromium(p: Playwright, extra_args: list[str] | None = None) -> Browser:
    """Launches Debian's Chromium headless with the project's standard flags plus ``extra_args``."""
    return p.chromium.launch(executable_path=CHROMIUM, args=[*BASE_ARGS, *(extra_args or [])])


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """One Chromium for the session; tests open their own contexts."""
    b = launch_chromium(playwright_instance)
    yield b
    b.close()


@pytest.fixture
def new_context(browser: Browser) -> Iterator[Callable[..., BrowserContext]]:
    """Factory for isolated browser contexts (one per simulated participant), closed after the test.

    Camera/microphone permissions are granted because Chromium gathers no ICE candidates on a
    loopback-only machine without them (see BROWSER_TESTING.md).
    """
    contexts: list[BrowserContext] = []

    def make(**kwargs: Any) -> BrowserContext:
        kwargs.setdefault("permissions", ["camera", "microphone"])
        ctx = browser.new_context(**kwargs)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def turn_server(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Factory: ``turn_server(users=...)`` or ``turn_server(auth_secret=...)`` starts a real coturn on loopback
    (long-term or TURN REST credentials, see ``coturn_server.py``), stopped after the test."""
    from coturn_server import CoturnServer

    started: list[CoturnServer] = []

    def start(**kwargs: Any) -> CoturnServer:
        server = CoturnServer(tmp_path / f"coturn{len(started)}", **kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
