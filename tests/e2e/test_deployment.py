"""The deployment path of the README, on loopback: the deployed nginx site (TLS, websocket upgrade, proxy headers)
in front of the real server started with the options ``interactive-gym run`` gives uvicorn, and the deployed
coturn configuration relaying a p2p pair over ``turns:`` (TURN over TLS).

- A participant goes through the whole demo experiment over https/wss in real Chromium; the page's socket is a
  ``wss://`` websocket, nginx logged its upgrade (101), and the app saw the participant's address and ``wss``
  (nginx connects from another loopback address, so believing X-Forwarded-For is visible).
- Plain HTTP is redirected to HTTPS; a body over the server's own limit is refused by nginx (413).
- Two participants play a p2p game over https whose only ICE server is ``turns:`` with ``force_relay``: the
  stored connection is relay over TLS, both uploads agree, and coturn saw the minted credentials.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import db_under_test
import pytest
import uvicorn
from conftest import launch_chromium
from experiment_harness import build_app, load_example
from nginx_server import NginxServer, free_port, self_signed_certificate
from p2p_experiments import open_player, p2p_app, play_randomly, read_db, wait_over, wait_playing
from playwright.sync_api import Browser, BrowserContext, Page, Playwright
from turns_server import TurnsServer

from interactive_gym.server.message_limits import MAX_BEACON_BYTES, MAX_ENGINEIO_BYTES
from interactive_gym.tools.run import uvicorn_options

SECRET = "deployment-test-shared-secret"  # noqa: S105 - a test fixture value
NGINX_SOURCE = "127.0.0.2"  # nginx's address as the server sees it: not the participant's 127.0.0.1


class ScopeLog:
    """ASGI wrapper that records what the app is told about each request (after uvicorn's proxy headers)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            self.seen.append({"type": scope["type"], "scheme": scope["scheme"], "client": scope["client"][0],
                              "path": scope["path"]})
        await self.app(scope, receive, send)


class ProxiedServer:
    """The experiment app in uvicorn with ``interactive-gym run``'s options, trusting nginx at ``NGINX_SOURCE``."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.scopes = ScopeLog(app)
        options = uvicorn_options("127.0.0.1", self.port, "warning", NGINX_SOURCE)
        self._server = uvicorn.Server(uvicorn.Config(self.scopes, lifespan="on", **options))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ProxiedServer:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            assert self._thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


@pytest.fixture(autouse=True)
def no_turn_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own TURN settings must never leak into a test (or send traffic off loopback)."""
    for name in ("TURN_USERNAME", "TURN_CREDENTIAL", "TURN_SECRET", "TURN_URLS", "STUN_URLS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tls_browser(playwright_instance: Playwright) -> Iterator[Browser]:
    """Chromium that accepts the test's self-signed certificate (also for TURN over TLS, which needs the flag)."""
    browser = launch_chromium(playwright_instance, ["--ignore-certificate-errors"])
    yield browser
    browser.close()


@pytest.fixture
def tls_context(tls_browser: Browser) -> Iterator[Callable[[], BrowserContext]]:
    contexts: list[BrowserContext] = []

    def make() -> BrowserContext:
        ctx = tls_browser.new_context(ignore_https_errors=True, permissions=["camera", "microphone"])
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_certificate(tmp_path / "tls")


def https_request(port: int, method: str, path: str, body: bytes | None = None) -> http.client.HTTPResponse:
    unverified = ssl._create_unverified_context()  # noqa: S323 - the test's own self-signed certificate
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=unverified, timeout=10)
    conn.request(method, path, body=body)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def wait_for_log(nginx: NginxServer, needle: str, timeout_s: float = 10.0) -> list[str]:
    """nginx writes a websocket's log line when the connection closes: waits for it, returns matching lines."""
    deadline = time.monotonic() + timeout_s
    while True:
        lines = [line for line in nginx.access_text().splitlines() if needle in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def socket_url(page: Page) -> str:
    return str(page.evaluate("window.interactiveGym.socket.io.engine.transport.ws.url"))


def test_a_participant_completes_the_demo_over_https_and_wss(tls_context, certificate, tmp_path: Path) -> None:
    example = load_example("examples/demo/experiment.py")
    db = tmp_path / "demo.sqlite"
    app = build_app(example.build_config(max_steps=30, fps=10, db=str(db), browser_episodes=1))
    cert, key = certificate
    with ProxiedServer(app.asgi) as server, NginxServer(tmp_path / "nginx", upstream_port=server.port, cert=cert,
                                                       key=key, proxy_bind=NGINX_SOURCE) as nginx:
        # Plain HTTP only redirects (to the default HTTPS port, as on a real server).
        plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
        plain.request("GET", "/?subject_id=x")
        redirect = plain.getresponse()
        assert redirect.status == 301 and redirect.getheader("Location") == "https://127.0.0.1/?subject_id=x"
        plain.close()
        # The body limit sits at the server's own largest (Engine.IO's buffer), above every beacon.
        limit = max(MAX_ENGINEIO_BYTES, MAX_BEACON_BYTES)
        assert https_request(nginx.https_port, "POST", "/beacon/not-a-token", b"x" * (limit + 1)).status == 413
        assert https_request(nginx.https_port, "POST", "/beacon/not-a-token", b"{}").status != 413

        page = tls_context().new_page()
        page.goto(f"{nginx.url}/?PROLIFIC_PID=https_solo&STUDY_ID=s1&SESSION_ID=t1")
        page.wait_for_selector(".scene-start")
        assert socket_url(page).startswith(f"wss://127.0.0.1:{nginx.https_port}/socket.io/")
        page.check("#consent")
        page.click("#continue")
        page.wait_for_selector(".scene-static[data-scene-id=instructions]")
        page.click("#continue")

        page.wait_for_selector("#game-status[data-state=playing]", timeout=15_000)  # server mode over wss
        page.keyboard.down("ArrowRight")
        page.wait_for_timeout(600)
        page.keyboard.up("ArrowRight")
        page.wait_for_selector("#game-status[data-state=over]", timeout=15_000)
        assert page.get_attribute("#game-status", "data-reason") == "complete"
        page.click("#continue")

        page.wait_for_selector("[data-scene-id=orchard_in_browser]")  # Pyodide's files through nginx
        page.wait_for_selector("#game-status[data-state=playing]", timeout=60_000)
        page.keyboard.down("ArrowUp")
        page.wait_for_timeout(500)
        page.keyboard.up("ArrowUp")
        page.wait_for_selector("#game-status[data-state=over]", timeout=30_000)
        assert page.get_attribute("#game-status", "data-reason") == "complete"
        page.click("#continue")

        page.wait_for_selector(".scene-static[data-scene-id=survey]")
        page.check("[name=partner_helpful][value='6']")
        page.check("[name=played_before][value=yes]")
        page.fill("[name=comments]", "over https")
        page.click("#continue")
        page.wait_for_selector(".scene-end")
        assert page.text_content("#completion-code") == "DEMO2026"
        assert socket_url(page).startswith("wss://")  # the same websocket all along, never plain ws
        page.context.close()
        upgrades = wait_for_log(nginx, "transport=websocket")
        assert upgrades and all('" 101 ' in line for line in upgrades), upgrades

    # What the app was told: the participant's address and https/wss, though nginx spoke plain HTTP from another.
    sockets = [s for s in server.scopes.seen if s["type"] == "websocket"]
    assert sockets and all(s["scheme"] == "wss" and s["client"] == "127.0.0.1" for s in sockets), sockets
    pages = [s for s in server.scopes.seen if s["type"] == "http"]
    assert pages and all(s["scheme"] == "https" and s["client"] == "127.0.0.1" for s in pages)

    with db_under_test.connect(db) as con:
        assert con.execute("SELECT status FROM participants").fetchall() == [("completed",)]
        modes = sorted(m for (m,) in con.execute("SELECT mode FROM episodes WHERE status = 'complete'"))
    assert modes == ["browser", "server"]


def play_pair(pages: list[Page], seed: int) -> None:
    wait_playing(pages)
    assert play_randomly(pages, seed=seed) > 10
    for page in pages:
        assert wait_over(page) == "complete"


def test_a_p2p_pair_over_https_is_relayed_by_coturn_over_turns(tls_context, certificate, tmp_path: Path) -> None:
    cert, key = certificate
    max_steps = 120
    with TurnsServer(tmp_path / "coturn", secret=SECRET, cert=cert, key=key) as turn:
        db = tmp_path / "p2p.sqlite"
        app = p2p_app(db, max_steps=max_steps, webrtc={"turn_secret": SECRET, "force_relay": True,
                                                       "credential_ttl_s": 600, "turn_urls": [turn.url()]})
        with ProxiedServer(app.asgi) as server, NginxServer(tmp_path / "nginx", upstream_port=server.port,
                                                           cert=cert, key=key, proxy_bind=NGINX_SOURCE) as nginx:
            pages = [open_player(tls_context().new_page(), nginx.url, s) for s in ("tls_ann", "tls_ben")]
            play_pair(pages, seed=11)
            for page in pages:
                assert socket_url(page).startswith("wss://")
                assert page.evaluate("window.interactiveGym.p2p.connectionType") == "relay"
        log = turn.log_text()

    data = read_db(db)
    episodes = data["episodes"]
    assert [e["status"] for e in episodes] == ["complete", "complete"], episodes
    assert all(len(e["steps"]) == max_steps for e in episodes)
    assert data["verdicts"] and all(v["agree"] for v in data["verdicts"]), data["verdicts"]
    for episode in episodes:
        network = episode["meta"]["network"]
        connection = network["connection"]
        assert network["force_relay"] is True and network["turn_used"] is True
        assert connection["type"] == "relay" and connection["local_candidate"] == "relay", connection
        assert connection["relay_protocol"] == "tls", connection  # the browser reached coturn over TLS
    assert ":tls_ann" in log and ":tls_ben" in log  # coturn checked the minted per-participant credentials
    assert json.dumps(data).count(SECRET) == 0
