"""Turns a preflight failure into the start-up message: scene, function, traceback's last lines, what to change.

Pure: no I/O. The failure is the dict of :func:`interactive_gym.preflight.frames.describe_failure`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

SELF_HOSTED_INDEX = "/vendor/pyodide/"
FULL_PYODIDE_URL = "https://cdn.jsdelivr.net/pyodide/v{version}/full/"
SERVER_SIDE_MARK = "is server-side and does not exist in the browser"


@dataclass(frozen=True)
class Where:
    """Where a scene's preflight ran.

    Attributes:
        scene_id: The scene.
        mode: ``"server"``, ``"browser"`` or ``"p2p"``.
        runtime: ``"CPython"`` or ``"Pyodide"``.
        index_url: The scene's Pyodide index URL (browser/p2p).
        packages: The Pyodide packages the scene loads.
        pyodide_packages: Packages the Pyodide distribution knows (from its lock file).
        pyodide_version: Version of the self-hosted Pyodide (for the full-distribution URL).
    """

    scene_id: str
    mode: str
    runtime: str
    index_url: str = SELF_HOSTED_INDEX
    packages: tuple[str, ...] = ()
    pyodide_packages: Collection[str] = ()
    pyodide_version: str = ""


def _module_hint(module: str, where: Where, function: str) -> str:
    if where.runtime != "Pyodide":
        return f"install {module} on the server (pip install {module}) or remove it from {function}"
    known = {name.lower() for name in where.pyodide_packages}
    if module.lower() in known:
        if where.index_url == SELF_HOSTED_INDEX:
            url = FULL_PYODIDE_URL.format(version=where.pyodide_version or "<version>")
            return (f"{module} is not in the self-hosted Pyodide: set RemoteConfig().pyodide(index_url={url!r}, "
                    f"packages=[{module!r}]) to a full Pyodide or remove {module} from the env")
        if module not in where.packages:
            return f"{module} is a Pyodide package: load it with RemoteConfig().pyodide(packages=[..., {module!r}])"
    if module == "gymnasium":
        return ("gymnasium is not available in Pyodide: the browser code must not import it (use "
                "interactive_gym.envs.spaces.Discrete for action spaces; in p2p mode the server sends the players' "
                "action spaces to the page)")
    return (f"{module} is not available in the browser's Pyodide: remove it from the code the browser runs, "
            "or ship it as a module next to the experiment")


def what_to_change(failure: Mapping[str, Any], where: Where) -> str:
    """The one-sentence fix for ``failure``."""
    function = failure.get("function") or "the scene's code"
    error = str(failure.get("error", ""))
    kind = failure.get("error_type")
    if SERVER_SIDE_MARK in error:
        what = function.split(" ")[0] if failure.get("function") else "the function"
        return f"move {what} to a module next to the experiment, e.g. my_env.py, that does not import server-side names"
    module = failure.get("missing_module")
    if module:
        return _module_hint(str(module), where, function)
    if kind == "ColorError":
        return f"give {function} colours as '#rrggbb' (or a colour name the renderer knows)"
    if kind in ("DrawError", "AssetError"):
        return f"fix the drawing call in {function} (see the error above)"
    if kind == "InputCodecError":
        return "give the human agents a Discrete, MultiBinary, MultiDiscrete or small Box action space"
    if kind == "PackageLoadError":
        return "check RemoteConfig().pyodide(index_url=..., packages=[...]): the packages must exist in that Pyodide"
    return f"fix {function} so that it runs without raising ({error or kind})"


def failure_message(failure: Mapping[str, Any], where: Where) -> str:
    """The full start-up message of one failed scene."""
    function = failure.get("function")
    head = (f"GymScene {where.scene_id!r} (mode={where.mode!r}, in {where.runtime}): "
            + (f"{function} raised {failure.get('error_type')}" if function else
               f"{failure.get('error_type')} while {failure.get('stage')}")
            + (f" during {failure.get('stage')}" if function else ""))
    tail = "\n".join(f"    {line}" for line in failure.get("traceback_tail") or [])
    body = f"{head}\n{tail}\n" if tail else f"{head}: {failure.get('error')}\n"
    return f"{body}  What to change: {what_to_change(failure, where)}"
