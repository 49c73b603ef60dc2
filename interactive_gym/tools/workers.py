"""``interactive-gym run --workers N``: N worker processes behind one port, kept running.

The parent (run.py) has checked the experiment once already (preflight, port, database). Here it starts the
workers (worker.py), each with its handoff socket in a fresh temporary folder, waits until every one accepts
on it, and then runs the front (front.py) on the experiment's port. A worker that exits is restarted under
its name after a backoff while the front routes its connections to the others; SIGINT/SIGTERM stops the
front, then the workers.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from interactive_gym.cli import UserError
from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.server.cluster.front import Front
from interactive_gym.tools.run import db_location

log = logging.getLogger("interactive_gym.cluster.workers")

START_TIMEOUT_S = 120.0  # loading an experiment (env, policies) can take a while
STOP_TIMEOUT_S = 15.0  # uvicorn's graceful shutdown, then SIGKILL
BACKOFF_S, MAX_BACKOFF_S = 1.0, 30.0  # restart delays, doubling while a worker keeps exiting soon after a start
TAIL_LINES = 20
POLL_S = 0.1
MAX_OPEN_FILES = 65536


class Worker:
    """One worker process (restartable): its name, handoff socket, command line and last lines of output."""

    def __init__(self, name: str, handoff: Path, argv: Sequence[str]) -> None:
        self.name, self.handoff, self.argv = name, handoff, list(argv)
        self.proc: subprocess.Popen[str] | None = None
        self._echoing: threading.Thread | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.started_at = 0.0
        self.backoff = BACKOFF_S

    def start(self) -> None:
        """Starts the process; its output goes to this process's stderr, each line prefixed with the name."""
        self.tail.clear()
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace", env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.started_at = time.monotonic()
        self._echoing = threading.Thread(target=self._echo, args=(self.proc,), name=f"{self.name}-output",
                                         daemon=True)
        self._echoing.start()

    def _echo(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.tail.append(line.rstrip("\n"))
            sys.stderr.write(f"[{self.name}] {line}")
            sys.stderr.flush()

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def listening(self) -> bool:
        """Whether the handoff socket accepts (the worker is ready for the front)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.handoff))
            except OSError:
                return False
        return True

    def failure(self, what: str) -> str:
        """A start-up failure's message: ``what`` happened, and the worker's last lines of output."""
        if self._echoing is not None and self.exit_code() is not None:
            self._echoing.join(2.0)  # the output of a process that exited is read to its end first
        lines = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        return f"worker {self.name} {what}; its last output:\n{lines}"


def worker_argv(args: argparse.Namespace, config: RemoteConfig, proxies: str, name: str, handoff: Path) -> list[str]:
    """The command line of worker ``name``: the parent's options, the settings the parent resolved."""
    argv = [sys.executable, "-m", "interactive_gym.tools.worker", str(Path(args.experiment).resolve()),
            "--worker", name, "--handoff", str(handoff), "--redis", args.redis, "--log-level", args.log_level,
            "--forwarded-allow-ips", proxies, "--host", config.host, "--port", str(config.port)]
    if args.db:
        argv += ["--db", str(db_location(args.db))]
    return argv


class Supervisor:
    """Starts the workers, runs the front, restarts workers that exit, stops everything on a signal.

    Args:
        workers: The workers, in routing order. host, port: Where the front listens.
        redis_url: Named in the start-up line. start_timeout: Longest a worker may take to accept on its socket.
    """

    def __init__(self, workers: Sequence[Worker], host: str, port: int, redis_url: str, *,
                 start_timeout: float = START_TIMEOUT_S, stop_timeout: float = STOP_TIMEOUT_S) -> None:
        self.workers, self.host, self.port, self.redis_url = list(workers), host, port, redis_url
        self.start_timeout, self.stop_timeout = start_timeout, stop_timeout
        self.stopping = asyncio.Event()
        self._restarts: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Serves until SIGINT/SIGTERM. Raises UserError if a worker does not start (all are stopped then)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        front: Front | None = None
        try:
            for worker in self.workers:
                worker.start()
            await asyncio.gather(*(self._ready(worker) for worker in self.workers))
            if self.stopping.is_set():
                return
            front = Front(self.host, self.port, {w.name: w.handoff for w in self.workers})
            try:
                await front.start()
            except OSError as exc:
                raise UserError(f"cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
            print(f"Workers: {', '.join(w.name for w in self.workers)} ({len(self.workers)} processes behind "
                  f"port {self.port}, sharing {self.redis_url})", flush=True)
            await self._watch()
        finally:
            if front is not None:
                await front.close()
            for task in self._restarts:
                task.cancel()
            await self._stop_workers()

    async def _ready(self, worker: Worker) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not worker.listening():
            code = worker.exit_code()
            if code is not None:
                raise UserError(worker.failure(f"exited with code {code} before it could serve"))
            if time.monotonic() > deadline:
                raise UserError(worker.failure(f"did not open its handoff socket within {self.start_timeout:g} s"))
            if self.stopping.is_set():
                return
            await asyncio.sleep(POLL_S)

    async def _watch(self) -> None:
        """Until a signal: restarts each worker that exits, after a backoff (the front routes elsewhere)."""
        restarting: set[str] = set()
        while not self.stopping.is_set():
            for worker in self.workers:
                code = worker.exit_code()
                if code is not None and worker.name not in restarting:
                    restarting.add(worker.name)
                    task = asyncio.get_running_loop().create_task(self._restart(worker, code, restarting))
                    self._restarts.add(task)
                    task.add_done_callback(self._restarts.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), POLL_S)

    async def _restart(self, worker: Worker, code: int, restarting: set[str]) -> None:
        if time.monotonic() - worker.started_at > MAX_BACKOFF_S:
            worker.backoff = BACKOFF_S  # it ran a good while: a fresh failure, not a crash loop
        log.error("worker %s exited with code %s; restarting it in %g s", worker.name, code, worker.backoff)
        await asyncio.sleep(worker.backoff)
        worker.backoff = min(worker.backoff * 2, MAX_BACKOFF_S)
        if not self.stopping.is_set():
            worker.start()
        restarting.discard(worker.name)

    async def _stop_workers(self) -> None:
        """Terminates the workers (uvicorn's graceful shutdown), then kills those still running."""
        running = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in running:
            proc.terminate()
        deadline = time.monotonic() + self.stop_timeout
        while any(proc.poll() is None for proc in running) and time.monotonic() < deadline:
            await asyncio.sleep(POLL_S)
        for proc in running:
            if proc.poll() is None:
                log.error("worker process %d did not stop within %g s: killed", proc.pid, self.stop_timeout)
                proc.kill()
                proc.wait()


def raise_open_files_limit() -> None:
    """Lifts the soft limit on open files to the hard one (capped): the front holds up to ``MAX_PENDING``
    connections at once and each worker one per participant, beyond the usual soft limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = MAX_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, MAX_OPEN_FILES)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def serve_workers(args: argparse.Namespace, config: RemoteConfig, proxies: str) -> int:
    """Runs ``args.workers`` workers of the checked ``config`` behind its host:port until a signal."""
    raise_open_files_limit()  # before the workers start: they inherit it
    with tempfile.TemporaryDirectory(prefix="interactive-gym-handoff-") as folder:
        names = [f"w{args.first_worker + i}" for i in range(args.workers)]
        workers = [Worker(name, Path(folder) / f"{name}.sock",
                          worker_argv(args, config, proxies, name, Path(folder) / f"{name}.sock"))
                   for name in names]
        asyncio.run(Supervisor(workers, config.host, config.port, args.redis).run())
    return 0
