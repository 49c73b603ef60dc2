"""``check-env --pyodide``: the same game in Pyodide (Node) and CPython, compared frame by frame.

Pyodide's str hashes are 32-bit, so even under the same PYTHONHASHSEED a set of strings iterates in another
order than in CPython: the set-iterating env must fail here, and the sorted one pass. (Two Pyodide starts.)
"""

from __future__ import annotations

import shutil

import pytest
from test_env_checks import _first_coin_frame

from interactive_gym.tools.check_env import process_checks

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node (see scripts/bootstrap.sh)")


def _pyodide_result(target: str):  # type: ignore[no-untyped-def]
    results = process_checks(f"tests.netcode.envs_for_tests:{target}", None, 300, 0, pyodide=True,
                             in_process_ok=True)
    assert [r.name.split(" (")[0] for r in results] == ["other hash seeds", "Pyodide"]
    return results[1]


def test_set_iteration_differs_between_pyodide_and_cpython_at_the_first_coin() -> None:
    result = _pyodide_result("make_set_order")
    assert not result.passed
    frame = _first_coin_frame(300)
    assert result.summary == f"CPython (PYTHONHASHSEED=0) and Pyodide (PYTHONHASHSEED=0) diverged at frame {frame}"
    assert any(line.strip().startswith("state[0]['colour']: ") for line in result.details)
    assert any("32-bit in Pyodide" in line for line in result.details)


def test_sorted_set_env_is_identical_in_pyodide_and_cpython() -> None:
    result = _pyodide_result("make_sorted_set_order")
    assert result.passed, (result.summary, result.details)
    assert result.summary == "identical at every frame (301 states)"
