"""``interactive-gym run`` and ``--help``: configuration mistakes are one readable message, before serving."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from interactive_gym.cli import main

ROOT = Path(__file__).resolve().parents[2]

BAD_MAPPING = '''
import sys
sys.path.insert(0, {demo!r})
import gatherers
from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
game = GymScene("g", env_creator=gatherers.make_env, render_fn=gatherers.render, width=100, height=100,
                controls={{"ArrowLeft": 9}}, policy_mapping={{"agent_0": "human", "agent_1": "random"}})
config = RemoteConfig().experiment("bad", stager=Stager([game, EndScene("end")]), db={db!r})
'''


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.py"
    path.write_text(text.format(demo=str(ROOT / "examples" / "demo"), db=str(tmp_path / "x.sqlite")))
    return path


def test_help_documents_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("run", "export", "check-env", "netsim", "replay"):
        assert command in out


def test_action_outside_space_fails_at_startup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_write(tmp_path, BAD_MAPPING))]) == 2
    err = capsys.readouterr().err
    assert "map to action 9" in err and "outside the environment's action space" in err
    assert "Traceback" not in err


def test_missing_file_and_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(tmp_path / "nope.py")]) == 2
    assert "experiment file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    assert main(["run", str(empty)]) == 2
    assert "must define a module-level `config" in capsys.readouterr().err


def test_port_in_use_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["run", str(ROOT / "examples" / "demo" / "experiment.py"), "--port", str(port),
                     "--db", str(tmp_path / "d.sqlite")])
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in capsys.readouterr().err


def test_console_script_is_installed() -> None:
    result = subprocess.run([sys.executable, "-m", "interactive_gym.cli", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "interactive-gym" in result.stdout
