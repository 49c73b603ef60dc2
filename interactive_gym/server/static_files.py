"""Where the browser's files come from (the package's own static folder and the npm packages), and how long a
browser may keep them.

Everything a page loads is served by the experiment's own server; nothing comes from a CDN. The npm
packages are installed from the committed lock file into ``node_modules`` at the checkout's root (see
``scripts/bootstrap.sh``); a deployment can point elsewhere with ``INTERACTIVE_GYM_NODE_MODULES``.

Caching (a participant who reloads mid-game must not download Python again, and must never run stale code):

* ``/static/...`` (our own JavaScript and CSS) and ``/vendor/<package>/...`` are ``no-cache``: the browser keeps
  them but asks each time whether they changed (ETag and Last-Modified; an unchanged file is a bodyless 304).
  Their URLs stay the same across upgrades of the server or of ``node_modules``, so a longer lifetime could
  serve yesterday's code with today's server. Without any header the browser would guess a lifetime itself
  (a tenth of the file's age), which is exactly that risk.
* ``/vendor/<package>@<fingerprint>/...`` serves the same files ``immutable`` for a year: the fingerprint is the
  package's version plus a digest of every served file's path, size and modification time, so any reinstall or
  edit of the package gives a new URL (a fresh download), and the bytes at one URL never change. Only the
  current fingerprint is served; an old one is 404 rather than new bytes under an old name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

PACKAGE_DIR = Path(__file__).resolve().parent.parent
STATIC_DIR = PACKAGE_DIR / "server" / "static"

# URL prefix -> folder inside node_modules. Only these folders are reachable.
VENDOR_FOLDERS: dict[str, str] = {
    "pyodide": "pyodide",
    "phaser": "phaser/dist",
    "socket.io": "socket.io-client/dist",
    "onnxruntime-web": "onnxruntime-web/dist",
    "uplot": "uplot/dist",  # the dashboard's plots (/admin)
}

REVALIDATE = "no-cache"  # keep, but ask the server before each use
IMMUTABLE = "public, max-age=31536000, immutable"  # one year, never asked again


class VendorMissingError(RuntimeError):
    """The npm packages are not installed where the server looks for them."""


def find_node_modules() -> Path:
    """Returns the ``node_modules`` folder holding the browser dependencies.

    Raises:
        VendorMissingError: with the command that installs them, if none is found.
    """
    override = os.environ.get("INTERACTIVE_GYM_NODE_MODULES")
    candidates = [Path(override)] if override else []
    candidates += [PACKAGE_DIR.parent / "node_modules", Path.cwd() / "node_modules"]
    for candidate in candidates:
        if (candidate / "pyodide" / "pyodide.mjs").is_file():
            return candidate
    raise VendorMissingError(
        "Browser dependencies not found (looked in: "
        + ", ".join(str(c) for c in candidates)
        + "). Run scripts/bootstrap.sh (npm ci) in the checkout, or set INTERACTIVE_GYM_NODE_MODULES."
    )


class CachedStaticFiles(StaticFiles):
    """Starlette's StaticFiles (ETag, Last-Modified, 304 on a matching If-None-Match) plus one Cache-Control
    header on every file it serves, full or not modified."""

    def __init__(self, *, directory: PathLike, cache_control: str) -> None:
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self.cache_control
        return response


class PinnedStaticFiles(CachedStaticFiles):
    """Serves only the files of a :class:`VendorPackage` as they were when it was fingerprinted: a file replaced
    while the server runs is 404 here (its fingerprinted URL would otherwise start serving other bytes)."""

    def __init__(self, package: VendorPackage) -> None:
        super().__init__(directory=package.folder, cache_control=IMMUTABLE)
        self.package = package

    def file_response(self, full_path: PathLike, stat_result: os.stat_result, scope: Scope,
                      status_code: int = 200) -> Response:
        relative = Path(full_path).resolve().relative_to(self.package.folder.resolve()).as_posix()
        if self.package.files.get(relative) != file_stamp(stat_result):
            raise HTTPException(status_code=404)
        return super().file_response(full_path, stat_result, scope, status_code)


@dataclass(frozen=True)
class VendorPackage:
    """One npm package folder the pages load from.

    Attributes:
        prefix: Its name under ``/vendor/`` (``"pyodide"``).
        folder: The folder served.
        version: The npm package's version (its ``package.json``).
        files: Each served file (relative POSIX path) -> its (size, modification time in ns) when fingerprinted.
        fingerprint: ``<version>-<digest of files>``: changes whenever a served file is replaced or edited.
    """

    prefix: str
    folder: Path
    version: str
    files: Mapping[str, tuple[int, int]] = field(repr=False)
    fingerprint: str

    @property
    def url(self) -> str:
        """The fingerprinted base URL (ends in ``/``), whose files may be cached for good."""
        return f"/vendor/{self.prefix}@{self.fingerprint}/"


def package_root(node_modules: Path, folder: str) -> Path:
    """The npm package a served folder belongs to (``phaser/dist`` -> ``phaser``, ``@a/b/dist`` -> ``@a/b``)."""
    parts = Path(folder).parts
    return node_modules.joinpath(*parts[: 2 if parts[0].startswith("@") else 1])


def file_stamp(info: os.stat_result) -> tuple[int, int]:
    """What says a file was replaced or edited, without reading it: size and modification time."""
    return info.st_size, info.st_mtime_ns


def file_stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """The stamp of every file below ``folder``, by relative POSIX path."""
    return {p.relative_to(folder).as_posix(): file_stamp(p.stat()) for p in sorted(folder.rglob("*")) if p.is_file()}


def stamps_digest(stamps: Mapping[str, tuple[int, int]]) -> str:
    """A short digest of the stamps (path, size, modification time of each file)."""
    digest = hashlib.sha256()
    for path in sorted(stamps):
        size, mtime_ns = stamps[path]
        digest.update(f"{path}\0{size}\0{mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def vendor_package(node_modules: Path, prefix: str) -> VendorPackage:
    """Describes the package served under ``/vendor/<prefix>`` (one of :data:`VENDOR_FOLDERS`)."""
    folder = node_modules / VENDOR_FOLDERS[prefix]
    manifest = package_root(node_modules, VENDOR_FOLDERS[prefix]) / "package.json"
    try:
        version = str(json.loads(manifest.read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError) as exc:
        raise VendorMissingError(f"{manifest} is missing or has no version ({exc}); reinstall with npm ci") from exc
    stamps = file_stamps(folder)
    return VendorPackage(prefix, folder, version, stamps, f"{version}-{stamps_digest(stamps)}")


def vendor_packages(node_modules: Path | None = None) -> dict[str, VendorPackage]:
    """Every package of :data:`VENDOR_FOLDERS`, fingerprinted now (a few dozen ``stat`` calls)."""
    modules = node_modules or find_node_modules()
    return {prefix: vendor_package(modules, prefix) for prefix in VENDOR_FOLDERS}


def static_mounts(node_modules: Path | None = None,
                  packages: Mapping[str, VendorPackage] | None = None) -> list[Mount]:
    """Builds the Starlette mounts for ``/static``, ``/vendor/<package>`` and ``/vendor/<package>@<fingerprint>``.

    Args:
        node_modules: Where the npm packages are (default :func:`find_node_modules`).
        packages: Already fingerprinted packages (:func:`vendor_packages`), when the caller also hands their
            URLs to pages; fingerprinted here otherwise.
    """
    mounts = [Mount("/static", app=CachedStaticFiles(directory=STATIC_DIR, cache_control=REVALIDATE), name="static")]
    for prefix, package in (packages or vendor_packages(node_modules)).items():
        mounts.append(Mount(package.url.rstrip("/"), app=PinnedStaticFiles(package),
                            name=f"vendor-{prefix}-fingerprinted"))
        mounts.append(Mount(f"/vendor/{prefix}", name=f"vendor-{prefix}",
                            app=CachedStaticFiles(directory=package.folder, cache_control=REVALIDATE)))
    return mounts
