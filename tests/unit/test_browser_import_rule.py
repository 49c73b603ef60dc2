"""The import rule of browser code: what ships into Pyodide imports nothing server-side."""

from __future__ import annotations

import pytest

from interactive_gym.server.browser_modules import (
    BROWSER_MODULES,
    import_problems,
    module_name_of_path,
    server_side_imports,
)
from interactive_gym.server.pyodide_bundle import PACKAGE_DIR, core_files


@pytest.mark.parametrize("rel_path", BROWSER_MODULES)
def test_every_shipped_module_imports_only_stdlib_and_browser_modules(rel_path: str) -> None:
    source = (PACKAGE_DIR / rel_path).read_text(encoding="utf-8")
    assert import_problems(source, module_name_of_path(rel_path)) == []


def test_the_bundle_core_is_exactly_the_declared_list_plus_the_generated_init() -> None:
    shipped = sorted(f.path for f in core_files())
    assert shipped == sorted(["interactive_gym/__init__.py", *(f"interactive_gym/{p}" for p in BROWSER_MODULES)])


def test_the_generated_init_obeys_the_rule_too() -> None:
    init = next(f for f in core_files() if f.path == "interactive_gym/__init__.py")
    assert import_problems(init.data.decode(), "interactive_gym") == []


@pytest.mark.parametrize(("source", "expected"), [
    ("import sqlite3\n", "imports sqlite3 (server-side standard library)"),
    ("import socketio\n", "imports socketio, which is not in the standard library"),
    ("from starlette.requests import Request\n", "imports starlette.requests, which is not in the standard"),
    ("from interactive_gym.server import app\n", "imports interactive_gym.server, which does not run"),
    ("from interactive_gym import GymScene\n", "imports interactive_gym.GymScene, which does not run"),
    ("def f():\n    from interactive_gym.scenes import gym_scene\n", "imports interactive_gym.scenes, which"),
    ("import numpy as np\n", "imports numpy at module level"),
    ("from ..server import schemas\n", "imports interactive_gym.server, which does not run"),
])
def test_the_rule_catches_each_kind_of_server_import(source: str, expected: str) -> None:
    problems = import_problems(source, "interactive_gym.browser.host")
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("source", [
    "import json\nfrom collections.abc import Mapping\n",
    "from interactive_gym.rendering import Surface\n",
    "from .refs import resolve_ref\n",
    "def f():\n    import numpy\n",
])
def test_the_rule_allows_stdlib_browser_modules_and_lazy_numpy(source: str) -> None:
    assert import_problems(source, "interactive_gym.browser.host") == []


def test_researcher_modules_are_checked_at_module_level_only() -> None:
    source = ("from interactive_gym import GymScene, KeyMapping, RemoteConfig\n"
              "from interactive_gym.envs.spaces import Discrete\n"
              "import interactive_gym.server.waiting_room\n"
              "def later():\n    from interactive_gym.scenes import stager\n")
    found = server_side_imports(source, "experiment", ["KeyMapping"])
    assert found == ["interactive_gym.GymScene", "interactive_gym.RemoteConfig", "interactive_gym.server.waiting_room"]


def test_the_preflight_driver_that_runs_in_pyodide_obeys_the_rule() -> None:
    source = (PACKAGE_DIR / "preflight" / "frames.py").read_text(encoding="utf-8")
    assert import_problems(source, "interactive_gym.preflight.frames") == []
