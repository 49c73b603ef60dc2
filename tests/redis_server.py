"""A real Redis server for tests, run from the Debian binary (package ``redis-server``).

:class:`RedisServer` starts ``redis-server`` on a free loopback port with its working folder in a fresh
temporary directory and no persistence (no RDB snapshots, no append-only file), waits until it answers
``PING``, hands out its URL (:attr:`RedisServer.url`) and stops it at the end (terminate, then kill if it does
not exit in time) and deletes the folder.

Nothing is skipped: when the binary is missing, :func:`find_redis_server` raises with the command that
installs it, so a CI machine without Redis fails instead of silently testing the in-process rooms only.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from service_process import start_listening, stop_process

__all__ = ["RedisServer", "RedisUnavailableError", "find_redis_server", "running_redis"]

START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 10


class RedisUnavailableError(RuntimeError):
    """The ``redis-server`` binary is not installed or did not start; the message says what to do."""


def find_redis_server() -> Path:
    """The ``redis-server`` binary.

    Raises:
        RedisUnavailableError: no Redis server binary on this machine.
    """
    found = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists()
                                             else None)
    if found is None:
        raise RedisUnavailableError(
            "the Redis server binary (redis-server) is missing: install the Debian package with "
            "`apt-get install redis-server` or run `scripts/bootstrap.sh --system` as root"
        )
    return Path(found)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers_ping(port: int) -> bool:
    """Whether a Redis server on ``port`` answers ``PING`` (raw protocol: the helper needs no client library)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One throw-away ``redis-server`` process on 127.0.0.1.

    Args:
        binary: the ``redis-server`` to run (default: :func:`find_redis_server`).
    """

    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary if binary is not None else find_redis_server()
        self.root = Path(tempfile.mkdtemp(prefix="ig-redis-"))
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0 of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Starts the server; returns once it answers ``PING``.

        Raises:
            RedisUnavailableError: it exited or did not answer within ``START_TIMEOUT_S`` (the log is in the message).
        """
        command = [str(self.binary), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                   "--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "yes",
                   "--logfile", str(self.root / "redis.log")]
        try:
            self._process = start_listening(command, port=self.port, name="redis-server", log_text=self.log,
                                            timeout_s=START_TIMEOUT_S, ready=_answers_ping, cwd=self.root)
        except RuntimeError as exc:
            self.stop()
            raise RedisUnavailableError(str(exc)) from None

    def stop(self) -> None:
        """Stops the server (SIGTERM, SIGKILL after ``STOP_TIMEOUT_S``) and deletes its folder. Safe to call twice."""
        try:
            process, self._process = self._process, None
            stop_process(process, timeout_s=STOP_TIMEOUT_S)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        path = self.root / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped and deleted on exit."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
