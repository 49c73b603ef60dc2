"""DataChannel round-trip time between two headless Chromium contexts: direct vs TURN relay, unordered vs reliable.

Two pages join a test game, connect through WebRTCManager (signaling via the real SignalingRelay), then one page
sends small ping packets at a fixed interval and the other answers each with a pong on the same channel.
Relay runs go through a coturn started on loopback (long-term credentials, ``force_relay``). Prints JSON.

Usage: ``.venv/bin/python benchmarks/webrtc_rtt.py [--pings 300] [--interval-ms 5]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # reuse the browser-test helpers: flags, coturn, test app
sys.path.insert(1, str(ROOT / "tests"))  # after tests/e2e (its conftest): the service helpers (service_process.py)

from conftest import LiveServer, launch_chromium  # noqa: E402
from coturn_server import CoturnServer  # noqa: E402
from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from webrtc_test_app import WebRTCTestApp  # noqa: E402

from interactive_gym.configurations.webrtc import WebRTCSettings  # noqa: E402


class IsolationHeaders:
    """Adds COOP/COEP so performance.now() has 5 us resolution instead of 100 us."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"cross-origin-opener-policy", b"same-origin"),
                                      (b"cross-origin-embedder-policy", b"require-corp")]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def measure(browser: Browser, settings: WebRTCSettings | None, pings: int, interval_ms: float) -> dict[str, Any]:
    app = WebRTCTestApp(settings)
    server = LiveServer(IsolationHeaders(app.asgi)).start()
    contexts = [browser.new_context(permissions=["camera", "microphone"]) for _ in range(2)]
    try:
        pages = []
        for player, ctx in enumerate(contexts):
            cfg = {"game_id": "bench", "player_id": player, "participant_id": f"p{player}"}
            page = ctx.new_page()
            page.goto(f"{server.url}/test-pages/webrtc_peer.html?cfg={quote(json.dumps(cfg))}")
            pages.append(page)
        a, b = pages
        a.wait_for_function("t.ready && t.healthy(1) && t.connectionInfo(1)", timeout=30_000)
        b.wait_for_function("t.ready && t.healthy(0)", timeout=30_000)
        result: dict[str, Any] = {"connection": a.evaluate("t.connectionInfo(1)")}
        for label, reliable in (("unordered", "false"), ("reliable", "true")):
            run = a.evaluate(f"t.pingPong(1, {pings}, {interval_ms}, {reliable})")
            rtts = run["rtts"]
            result[label] = {
                "sent": run["sent"], "received": len(rtts),
                "p50_ms": round(statistics.median(rtts), 3), "p99_ms": round(percentile(rtts, 0.99), 3),
                "max_ms": round(rtts[-1], 3),
            }
        return result
    finally:
        for ctx in contexts:
            ctx.close()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pings", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=5)
    args = parser.parse_args()
    out: dict[str, Any] = {"pings": args.pings, "interval_ms": args.interval_ms}
    with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
        browser = launch_chromium(p)
        try:
            out["direct"] = measure(browser, None, args.pings, args.interval_ms)
            for transport in ("udp", "tcp"):
                with CoturnServer(Path(tmp) / transport, users={"bench": "bench-pw"}) as turn:
                    settings = WebRTCSettings.from_config("bench", "bench-pw", True, turn_urls=[turn.url(transport)],
                                                          stun_urls=[], environ={})
                    out[f"relay_{transport}"] = measure(browser, settings, args.pings, args.interval_ms)
        finally:
            browser.close()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
