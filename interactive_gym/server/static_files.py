"""Where the browser's files come from: the package's own static folder and the npm packages.

Everything a page loads is served by the experiment's own server; nothing comes from a CDN. The npm
packages are installed from the committed lock file into ``node_modules`` at the checkout's root (see
``scripts/bootstrap.sh``); a deployment can point elsewhere with ``INTERACTIVE_GYM_NODE_MODULES``.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

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


def static_mounts(node_modules: Path | None = None) -> list[Mount]:
    """Builds the Starlette mounts for ``/static`` and ``/vendor/<package>``."""
    modules = node_modules or find_node_modules()
    mounts = [Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static")]
    for prefix, folder in VENDOR_FOLDERS.items():
        mounts.append(Mount(f"/vendor/{prefix}", app=StaticFiles(directory=modules / folder), name=f"vendor-{prefix}"))
    return mounts
