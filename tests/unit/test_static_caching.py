"""Cache headers of the files pages load: our own files and unversioned vendor URLs are revalidated (ETag, 304),
fingerprinted vendor URLs are immutable and never serve other bytes than the ones fingerprinted."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.applications import Starlette

from interactive_gym.server.static_files import (
    IMMUTABLE,
    REVALIDATE,
    VENDOR_FOLDERS,
    static_mounts,
    vendor_package,
    vendor_packages,
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def get(app: Starlette, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> Reply:
    """One request through the real ASGI app (no server, no socket)."""

    async def run() -> Reply:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
        sent: list[dict] = []
        requested = False
        never = asyncio.Event()

        async def receive() -> dict:
            nonlocal requested
            if not requested:  # the (empty) request body once; then the client stays connected until the end
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return Reply(start["status"], {k.decode().lower(): v.decode() for k, v in start["headers"]}, body)

    return asyncio.run(run())


@pytest.fixture
def node_modules(tmp_path: Path) -> Path:
    """A node_modules with every vendored package: a package.json and two files in each served folder."""
    root = tmp_path / "node_modules"
    for prefix, folder in VENDOR_FOLDERS.items():
        served = root / folder
        (served / "sub").mkdir(parents=True)
        (served / "main.js").write_text(f"// {prefix} 1\n")
        (served / "sub" / "big.wasm").write_bytes(b"\0asm" + prefix.encode() * 100)
        package = root / Path(folder).parts[0]
        (package / "package.json").write_text(json.dumps({"name": prefix, "version": "1.2.3"}))
    return root


def app_for(node_modules: Path) -> Starlette:
    return Starlette(routes=static_mounts(node_modules))


def test_our_own_files_are_revalidated_each_use_and_unchanged_ones_are_a_304(node_modules: Path) -> None:
    app = app_for(node_modules)
    first = get(app, "/static/js/pyodide_loader.js")
    assert first.status == 200 and first.body.startswith(b"//")
    assert first.headers["cache-control"] == REVALIDATE == "no-cache"
    etag = first.headers["etag"]
    again = get(app, "/static/js/pyodide_loader.js", {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.headers["cache-control"] == "no-cache" and again.headers["etag"] == etag
    other = get(app, "/static/js/pyodide_loader.js", {"If-None-Match": '"not-this-one"'})
    assert other.status == 200 and other.body == first.body


def test_unversioned_vendor_urls_are_revalidated_and_see_a_reinstall(node_modules: Path) -> None:
    app = app_for(node_modules)
    first = get(app, "/vendor/pyodide/main.js")
    assert first.status == 200 and first.headers["cache-control"] == "no-cache"
    assert get(app, "/vendor/pyodide/main.js", {"If-None-Match": first.headers["etag"]}).status == 304
    target = node_modules / "pyodide" / "main.js"
    target.write_text("// pyodide 2, a new install\n")
    os.utime(target, ns=(1, 1_000_000_000))  # a different time, whatever the clock's resolution
    changed = get(app, "/vendor/pyodide/main.js", {"If-None-Match": first.headers["etag"]})
    assert changed.status == 200 and changed.body == b"// pyodide 2, a new install\n"


def test_fingerprinted_vendor_urls_are_immutable_and_serve_the_same_bytes(node_modules: Path) -> None:
    packages = vendor_packages(node_modules)
    app = Starlette(routes=static_mounts(node_modules, packages))
    for prefix, package in packages.items():
        assert package.url.startswith(f"/vendor/{prefix}@1.2.3-") and package.url.endswith("/")
        reply = get(app, package.url + "sub/big.wasm")
        assert reply.status == 200 and reply.headers["cache-control"] == IMMUTABLE
        assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert reply.body == get(app, f"/vendor/{prefix}/sub/big.wasm").body
        assert reply.headers["content-type"] == "application/wasm"  # streaming compilation needs it
        assert get(app, package.url + "sub/big.wasm", {"If-None-Match": reply.headers["etag"]}).status == 304


def test_the_fingerprint_changes_with_any_file_and_only_with_the_files(node_modules: Path) -> None:
    before = vendor_package(node_modules, "phaser")
    assert vendor_package(node_modules, "phaser").fingerprint == before.fingerprint  # stable across start-ups
    os.utime(node_modules / "phaser" / "dist" / "sub" / "big.wasm", ns=(5, 5_000_000_000))  # reinstalled
    touched = vendor_package(node_modules, "phaser")
    assert touched.fingerprint != before.fingerprint and touched.version == before.version
    (node_modules / "phaser" / "dist" / "added.js").write_text("x")
    assert vendor_package(node_modules, "phaser").fingerprint not in {before.fingerprint, touched.fingerprint}
    manifest = node_modules / "phaser" / "package.json"
    manifest.write_text(json.dumps({"version": "9.0.0"}))
    assert vendor_package(node_modules, "phaser").url.startswith("/vendor/phaser@9.0.0-")


def test_a_file_replaced_while_the_server_runs_is_404_under_its_old_fingerprint(node_modules: Path) -> None:
    packages = vendor_packages(node_modules)
    app = Starlette(routes=static_mounts(node_modules, packages))
    url = packages["pyodide"].url + "main.js"
    assert get(app, url).status == 200
    target = node_modules / "pyodide" / "main.js"
    target.write_text("// other bytes, same URL?\n")
    os.utime(target, ns=(7, 7_000_000_000))
    assert get(app, url).status == 404  # never other bytes under a name browsers keep for a year
    assert get(app, "/vendor/pyodide/main.js").body == b"// other bytes, same URL?\n"  # revalidated URL: the new file


def test_unknown_fingerprints_paths_outside_and_other_methods_are_refused(node_modules: Path) -> None:
    app = app_for(node_modules)
    assert get(app, "/vendor/pyodide@0.0.1-0000000000000000/main.js").status == 404
    assert get(app, "/vendor/pyodide/../../package.json").status == 404
    assert get(app, "/vendor/pyodide/missing.js").status == 404
    assert get(app, "/vendor/pyodide/main.js", method="POST").status == 405


def test_a_package_without_a_version_fails_at_start_up_with_what_to_do(node_modules: Path) -> None:
    (node_modules / "uplot" / "package.json").write_text("{}")
    with pytest.raises(RuntimeError, match=r"uplot/package.json .*npm ci"):
        vendor_packages(node_modules)


def test_the_real_pyodide_is_fingerprinted_with_its_npm_version() -> None:
    package = vendor_packages()["pyodide"]
    expected = json.loads((package.folder / "package.json").read_text())["version"]
    assert package.version == expected and package.url.startswith(f"/vendor/pyodide@{expected}-")
    assert "pyodide.asm.wasm" in package.files
