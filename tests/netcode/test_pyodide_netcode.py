"""The same netcode in Pyodide (Node) and CPython: identical histories, checksums and counters."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pyodide_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_pyodide_in_node_matches_cpython() -> None:
    node = shutil.which("node")
    assert node is not None, "node is required for this test (see scripts/bootstrap.sh)"
    completed = subprocess.run(
        [node, str(ROOT / "tests/netcode/pyodide_netsim.mjs"), str(ROOT)],
        capture_output=True, text=True, timeout=240, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    in_pyodide = json.loads(completed.stdout.strip().splitlines()[-1])
    in_cpython = pyodide_scenario.run()
    assert "emscripten" in in_pyodide["runtime"]
    assert in_pyodide["ok"] and in_cpython["ok"]
    for key in ("history_digests", "history_lengths", "final_checksums", "peers", "network"):
        assert in_pyodide[key] == in_cpython[key], key
    # The two peers agree with each other too, and the game really exercised rollback.
    assert len(set(in_cpython["history_digests"])) == 1
    assert len(set(in_cpython["final_checksums"])) == 1
    assert all(p["rollbacks"] > 0 for p in in_cpython["peers"])
