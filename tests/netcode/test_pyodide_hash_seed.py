"""Every peer's Pyodide gets the same str hash seed: the page's loader passes the scene config's env on.

Runs the page's own loader (pyodide_loader.js) in Node, in two separate processes (two "browsers"), with
the pyodide settings the server really sends, and once without the env, as a control.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from interactive_gym.browser.scene_config import pyodide_settings
from interactive_gym.envs.determinism import PYTHON_HASH_SEED

ROOT = Path(__file__).resolve().parents[2]


def _run_in_node(settings: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None, "node is required for this test (see scripts/bootstrap.sh)"
    completed = subprocess.run(
        [node, str(ROOT / "tests/netcode/pyodide_hash_seed.mjs"), str(ROOT), json.dumps(settings)],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_two_pyodide_processes_hash_strings_alike_with_the_configured_seed() -> None:
    settings = pyodide_settings(None)
    assert settings["env"] == {"PYTHONHASHSEED": PYTHON_HASH_SEED}
    first, second = _run_in_node(settings), _run_in_node(settings)
    for run in (first, second):
        assert run["seeded"]["env_seed"] == PYTHON_HASH_SEED
        assert run["seeded"]["randomized"] == (0 if PYTHON_HASH_SEED == "0" else 1)
        assert run["unseeded"]["env_seed"] is None and run["unseeded"]["randomized"] == 1
    assert first["seeded"]["hash"] == second["seeded"]["hash"]
    assert first["seeded"]["order"] == second["seeded"]["order"]
    # The control: without the env each interpreter draws its own seed (equal only with chance 2**-32).
    assert first["unseeded"]["hash"] != second["unseeded"]["hash"]
    assert first["unseeded"]["hash"] != first["seeded"]["hash"]
