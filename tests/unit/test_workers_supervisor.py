"""``interactive-gym run --workers N --redis URL``: the options, the supervisor, and the whole command.

The supervisor runs in its own process (its signal handlers need a main thread), over tiny workers
(``supervised_apps.py``) or, once, over the demo experiment's real workers and a real Redis server.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_server import RedisServer
from test_front_handoff import wait_for

from interactive_gym.cli import UserError, main
from interactive_gym.tools.workers import Supervisor, Worker

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo" / "experiment.py"
DRIVER = Path(__file__).with_name("supervised_apps.py")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Output:
    """A process's merged output, read line by line in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True).start()

    def text(self) -> str:
        return "".join(self.lines)

    def pids(self, name: str) -> list[int]:
        """The process ids worker ``name`` reported (uvicorn's 'Started server process' lines), in order."""
        return [int(p) for p in re.findall(rf"\[{name}\] INFO: +Started server process \[(\d+)\]", self.text())]


def get(port: int, target: str) -> tuple[int, str, str | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace"), response.getheader("x-worker-pid")
    finally:
        conn.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize(("options", "message"), [
    (["--workers", "2"], "--workers 2 needs --redis redis://HOST:PORT"),
    (["--workers", "3"], "apt-get install redis-server"),
    (["--redis", "redis://127.0.0.1:6379"], "--redis is for several workers"),
    (["--workers", "1", "--redis", "redis://127.0.0.1:6379"], "pass --workers 2 or more"),
    (["--workers", "0", "--redis", "redis://x:1"], "--workers 0: give a number from 1 to 64"),
    (["--workers", "65", "--redis", "redis://x:1"], "--workers 65: give a number from 1 to 64"),
    (["--workers", "-2"], "--workers -2: give a number from 1 to 64"),
    (["--workers", "2", "--redis", "redis://x:1", "--first-worker", "999"],
     "--first-worker 999: give a number from 0 to 998"),
    (["--workers", "2", "--redis", "redis://x:1", "--first-worker", "-1"], "--first-worker -1: give a number"),
])
def test_worker_options_that_do_not_go_together(options: list[str], message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(DEMO), *options]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_worker_that_exits_at_start_up_is_named_with_its_output(tmp_path: Path) -> None:
    fine = Worker("w0", tmp_path / "w0.sock", [sys.executable, str(DRIVER.with_name("handoff_app.py")), "w0",
                                               str(tmp_path / "w0.sock")])
    failing = Worker("w1", tmp_path / "w1.sock",
                     [sys.executable, "-c", "print('experiment import failed: no module named foo'); exit(3)"])
    supervisor = Supervisor([fine, failing], "127.0.0.1", 0, "redis://x:1")
    with pytest.raises(UserError) as raised:
        asyncio.run(supervisor.run())
    assert "worker w1 exited with code 3 before it could serve" in str(raised.value)
    assert "experiment import failed: no module named foo" in str(raised.value)
    assert fine.exit_code() is not None  # the one that started is stopped too


def test_a_worker_that_never_listens_times_out_and_is_stopped(tmp_path: Path) -> None:
    silent = Worker("w0", tmp_path / "w0.sock", [sys.executable, "-c", "print('loading'); import time; "
                                                 "time.sleep(60)"])
    supervisor = Supervisor([silent], "127.0.0.1", 0, "redis://x:1", start_timeout=0.5, stop_timeout=5)
    started = time.monotonic()
    with pytest.raises(UserError, match="worker w0 did not open its handoff socket within 0.5 s"):
        asyncio.run(supervisor.run())
    assert time.monotonic() - started < 8
    assert silent.exit_code() is not None


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Output, int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(DRIVER), str(port), str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=DRIVER.parent)
    output = Output(proc)
    try:
        wait_for(lambda: "Workers: w0, w1" in output.text() or proc.poll() is not None, 30, "the workers line")
        assert proc.poll() is None, output.text()
        yield proc, output, port
    finally:
        stop(proc)


def test_supervisor_restarts_a_dead_worker_and_stops_everything_on_sigterm(
        supervised: tuple[subprocess.Popen[str], Output, int]) -> None:
    proc, output, port = supervised
    status, body, first = get(port, "/?ig_route=w1")
    assert status == 200 and body.startswith("w1 ") and first is not None
    os.kill(int(first), signal.SIGKILL)
    # Reaped by the supervisor, so its sockets are closed: a connection handed to a worker in the instant it
    # dies is lost with it (the kernel closes the fds queued to it), and that is not what this checks.
    wait_for(lambda: gone(int(first)), 10, "the killed worker to be reaped")
    assert get(port, "/?ig_route=w1")[1].startswith("w0 ")  # routed around meanwhile, no error

    def restarted() -> str | None:
        status, body, pid = get(port, "/?ig_route=w1")
        return pid if body.startswith("w1 ") and pid != first else None

    second = wait_for(restarted, 15, "w1 to be restarted and serving")
    assert "worker w1 exited with code -9; restarting it" in output.text()
    w0 = get(port, "/?ig_route=w0")[2]
    assert w0 is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, output.text()
    for pid in (int(w0), int(second)):
        wait_for(lambda pid=pid: gone(pid), 10, f"worker process {pid} to be gone")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_run_with_two_workers_serves_the_demo_on_one_port(tmp_path: Path, redis_server: RedisServer) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "interactive_gym.cli", "run", str(DEMO), "--workers", "2",
                             "--redis", redis_server.url, "--port", str(port), "--db", str(tmp_path / "d.sqlite"),
                             "--skip-preflight"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(proc)
    try:
        wait_for(lambda: "Workers: w0, w1 (2 processes behind port" in output.text() or proc.poll() is not None,
                 120, "the workers line")
        assert proc.poll() is None, output.text()
        assert f"Serving experiment 'fruit_gatherers_demo' at http://127.0.0.1:{port}/" in output.text()
        for target in ("/?ig_route=w0", "/?ig_route=w1", "/"):
            status, body, _ = get(port, target)
            assert status == 200 and "<html" in body.lower(), (target, status, body[:200])
        pids = output.pids("w0") + output.pids("w1")
        assert len(pids) == 2, output.text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, output.text()
        for pid in pids:
            wait_for(lambda pid=pid: gone(pid), 10, f"worker process {pid} to be gone")
    finally:
        stop(proc)
