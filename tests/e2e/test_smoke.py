"""The browser tooling itself works: Debian's Chromium loads Pyodide from the project's own server."""

from __future__ import annotations


def test_pyodide_loads_from_self_hosted_vendor(static_server, new_context) -> None:
    page = new_context().new_page()
    page.goto(f"{static_server.url}/test-pages/smoke.html")
    page.wait_for_function("window.smokeResult !== undefined", timeout=30_000)
    assert page.evaluate("window.smokeResult") == 45
