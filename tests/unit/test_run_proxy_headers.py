"""``interactive-gym run`` behind a reverse proxy: uvicorn believes X-Forwarded-For/-Proto from the trusted
proxies only (loopback by default), so the app sees the participant's address and ``https``; anyone else's
headers are ignored. A real uvicorn serves a probe app that reports the scope it was given."""

from __future__ import annotations

import http.client
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from interactive_gym.cli import UserError, main
from interactive_gym.tools.run import LOOPBACK_PROXIES, trusted_proxies, uvicorn_options

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}


async def scope_probe(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request with the client address and scheme uvicorn put in the scope."""
    if scope["type"] != "http":
        return
    body = json.dumps({"client": scope["client"][0], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served(forwarded_allow_ips: str) -> Iterator[int]:
    """Runs the probe with exactly the options ``interactive-gym run`` gives uvicorn; yields the port."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(scope_probe, lifespan="off",
                                           **uvicorn_options("127.0.0.1", port, "warning", forwarded_allow_ips)))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def seen(port: int, headers: dict[str, str]) -> dict[str, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/", headers=headers)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def test_the_default_trusts_a_proxy_on_this_machine() -> None:
    with served(LOOPBACK_PROXIES) as port:
        assert seen(port, FORWARDED) == {"client": "203.0.113.7", "scheme": "https"}
        assert seen(port, {}) == {"client": "127.0.0.1", "scheme": "http"}  # no proxy: the real peer


def test_headers_from_a_sender_that_is_not_a_trusted_proxy_are_ignored() -> None:
    with served("10.1.2.3") as port:  # the proxy is elsewhere; this loopback client could be anyone
        assert seen(port, FORWARDED) == {"client": "127.0.0.1", "scheme": "http"}


def test_a_trusted_network_covers_its_addresses() -> None:
    with served("10.0.0.0/8,127.0.0.0/8") as port:
        assert seen(port, FORWARDED) == {"client": "203.0.113.7", "scheme": "https"}


def test_trusted_proxies_parses_addresses_networks_and_star() -> None:
    assert trusted_proxies(" 127.0.0.1, ::1 ,10.0.0.0/8") == ["127.0.0.1", "::1", "10.0.0.0/8"]
    assert trusted_proxies("*") == ["*"]
    for bad, named in (("nginx.local", "'nginx.local'"), ("127.0.0.1,300.1.1.1", "'300.1.1.1'"), (" , ", "empty")):
        with pytest.raises(UserError, match=named):
            trusted_proxies(bad)


def test_a_bad_proxy_address_stops_run_with_the_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    experiment = tmp_path / "exp.py"
    experiment.write_text("raise SystemExit('the experiment must not even be loaded')\n")
    assert main(["run", str(experiment), "--forwarded-allow-ips", "localhost"]) == 2
    err = capsys.readouterr().err
    assert "--forwarded-allow-ips: 'localhost' is not an IP address or network" in err
    assert "Traceback" not in err


def test_run_serves_with_the_fast_websocket_http_and_loop_implementations() -> None:
    config = uvicorn.Config(scope_probe, **uvicorn_options("127.0.0.1", _free_port(), "warning", "127.0.0.1"))
    config.load()  # resolves the names: a missing dependency fails here, as it would at start-up
    assert config.ws_protocol_class.__module__ == "uvicorn.protocols.websockets.websockets_sansio_impl"
    assert config.http_protocol_class.__module__ == "uvicorn.protocols.http.httptools_impl"
    if sys.platform != "win32":
        import uvloop

        assert config.get_loop_factory() is uvloop.new_event_loop
