"""The server under test of ``workers_capacity.py``: the real ``interactive-gym run`` CLI and its CPU.

:func:`start_cli` starts ``python -m interactive_gym.cli run workers_capacity_experiment.py`` (one process, or
with ``--workers N --redis URL`` a supervisor running the front with N worker processes under it).
:class:`TreeCpu` adds up the CPU of that process and of every process under it, and :func:`redis_cpu_s` asks
a Redis server for its own CPU time, since in the multi-process path Redis is a cost of the server too.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import IO

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EXPERIMENT = HERE / "workers_capacity_experiment.py"


def start_cli(port: int, db: Path, workers: int, redis_url: str | None, env: str, fps: int, max_steps: int,
              log: IO[bytes]) -> subprocess.Popen[bytes]:
    """Starts the CLI serving the benchmark experiment on ``port`` with its data in ``db``.

    The preflight is skipped: it plays the game's first frames, which says nothing about capacity and costs
    seconds per start.
    """
    cmd = [sys.executable, "-m", "interactive_gym.cli", "run", str(EXPERIMENT), "--port", str(port),
           "--db", str(db), "--log-level", "warning", "--skip-preflight"]
    if workers > 1:
        assert redis_url, "several workers need a Redis server"
        cmd += ["--workers", str(workers), "--redis", redis_url]
    env_vars = {**os.environ, "IG_BENCH_ENV": env, "IG_BENCH_FPS": str(fps), "IG_BENCH_MAX_STEPS": str(max_steps),
                "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env_vars)


def _cpu_s(proc: psutil.Process) -> float | None:
    try:
        times = proc.cpu_times()
    except psutil.Error:
        return None
    return times.user + times.system


class TreeCpu:
    """CPU of a process and every process under it (the front and each worker), from a starting moment.

    A process that appears later (a restarted worker) counts from zero; one that exits keeps what it used
    until it was last seen.

    Args:
        root: The CLI's process.
    """

    def __init__(self, root: psutil.Process) -> None:
        self.root = root
        self.procs: dict[int, psutil.Process] = {}
        self.baseline: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._discover(baseline=True)

    def _discover(self, baseline: bool = False) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            for proc in (self.root, *self.root.children(recursive=True)):
                if proc.pid not in self.procs:
                    self.procs[proc.pid] = proc
                    used = _cpu_s(proc) if baseline else 0.0
                    self.baseline[proc.pid] = self.last[proc.pid] = used or 0.0
                    with contextlib.suppress(psutil.Error):
                        proc.cpu_percent(None)  # starts its percent counter
        return list(self.procs.values())

    def sample(self) -> tuple[float, float]:
        """CPU (% of one core, summed over the tree) since the last sample, and the tree's RSS in MiB."""
        percent = rss = 0.0
        for proc in self._discover():
            with contextlib.suppress(psutil.Error):
                percent += proc.cpu_percent(None)
                rss += proc.memory_info().rss
                used = _cpu_s(proc)
                if used is not None:
                    self.last[proc.pid] = used
        return percent, rss / 2**20

    def seconds(self) -> float:
        """CPU seconds (user + system) the tree used since this object was made."""
        self.sample()
        return sum(self.last[pid] - self.baseline[pid] for pid in self.procs)

    @property
    def count(self) -> int:
        """Processes seen in the tree."""
        return len(self.procs)


def redis_cpu_s(port: int) -> float | None:
    """The Redis server's own CPU seconds (``INFO cpu``: user + system), or ``None`` if it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"INFO cpu\r\n")
            data = b""
            while True:  # a bulk string reply: "$<length>\r\n<text>\r\n"
                chunk = conn.recv(4096)
                if not chunk:
                    return None
                data += chunk
                head, found, body = data.partition(b"\r\n")
                if found and head.startswith(b"$") and len(body) >= int(head[1:]):
                    break
    except (OSError, ValueError):
        return None
    text = body.decode(errors="replace")
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return float(fields["used_cpu_user"]) + float(fields["used_cpu_sys"])
    except (KeyError, ValueError):
        return None
