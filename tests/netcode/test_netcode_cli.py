"""``interactive-gym check-env`` and ``interactive-gym netsim`` end to end (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interactive_gym.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def test_check_env_passes_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-env", "examples.demo.gatherers:make_env", "--frames", "200"]) == 0
    out = capsys.readouterr().out
    assert "verdict: OK" in out and "[FAIL]" not in out


def test_check_env_fails_a_nondeterministic_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-env", "tests.netcode.envs_for_tests:make_wall_clock", "--frames", "100"]) == 1
    out = capsys.readouterr().out
    assert "verdict: NOT READY" in out and "first bad frame" in out and "wall clock" in out


def test_check_env_json_and_kwargs(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["check-env", "tests.netcode.envs_for_tests:make_tag", "--kwargs", '{"players": 3}',
                 "--frames", "50", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["passed"] is True
    assert data["checks"][0]["summary"].startswith("3 agent(s)")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check-env", "no_colon"], "module:factory"),
        (["check-env", "nonexistent_module_xyz:f"], "cannot import"),
        (["check-env", "examples.demo.gatherers:nope"], "no attribute"),
        (["check-env", "examples.demo.gatherers:make_env", "--kwargs", "{bad"], "not valid JSON"),
        (["check-env", "examples.demo.gatherers:make_env", "--kwargs", '{"width": 1}'], "failed"),
        (["check-env", "examples.demo.gatherers:make_env", "--check-distance", "0"], "check-distance"),
        (["netsim", "examples.demo.gatherers:make_env", "--players", "3"], "--players must be 2"),
        (["netsim", "examples.demo.gatherers:make_env", "--loss", "2"], "loss"),
    ],
)
def test_user_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_netsim_summary_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["netsim", "examples.demo.gatherers:make_env", "--players", "2", "--frames", "600", "--latency-ms",
            "80", "--jitter-ms", "30", "--loss", "0.15", "--seed", "7"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "verdict: OK" in out and "rollbacks" in out and "80 ms one-way" in out
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and data["histories_identical"] and data["checksums_identical"]
    assert data["config"]["frames"] == 600 and len(data["peers"]) == 2
    assert all(p["rollbacks"] > 0 for p in data["peers"])


def test_netsim_reports_a_desync(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["netsim", "tests.netcode.envs_for_tests:make_wall_clock", "--frames", "300", "--latency-ms", "40"])
    out = capsys.readouterr().out
    assert code == 1 and "verdict: DESYNC" in out
