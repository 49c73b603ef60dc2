"""Starting and stopping the service processes tests run (coturn, nginx, redis-server): one way for all of them.

A test helper starts its server with :func:`start_listening`, which returns once the server accepts TCP
connections on its port (or raises with the server's own words, from its log or stderr, when it exited or never
listened), and stops it with :func:`stop_process` (SIGTERM, then SIGKILL if it does not go). Only the process the
helper started is signalled, by its PID; nothing else on the machine is touched.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


def accepts_connections(port: int, timeout_s: float = 0.2) -> bool:
    """Whether something on 127.0.0.1 accepts a TCP connection on ``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def start_listening(command: Sequence[str | Path], *, port: int, name: str, log_text: Callable[[], str],
                    timeout_s: float = 10.0, ready: Callable[[int], bool] = accepts_connections,
                    cwd: Path | None = None, capture_stderr: bool = True) -> subprocess.Popen[bytes]:
    """Starts ``command`` and returns its process once ``ready(port)`` (by default: it accepts connections).

    Args:
        command: The server and its arguments.
        port: The port it listens on once ready.
        name: How failure messages name it ("nginx", "turnserver").
        log_text: Its log so far, quoted (the tail) when it fails to start.
        timeout_s: How long it may take.
        ready: The readiness check (e.g. Redis answering ``PING``).
        cwd: Its working directory.
        capture_stderr: Keep its stderr for the failure message; only for servers that log to a file once
            started (nobody reads the pipe afterwards, so a chatty server would block on a full one).

    Raises:
        RuntimeError: It exited (with its stderr and log) or was not ready within ``timeout_s`` (it is stopped).
    """
    stderr = subprocess.PIPE if capture_stderr else subprocess.DEVNULL
    process = subprocess.Popen([str(part) for part in command], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True, cwd=cwd)
    deadline = time.monotonic() + timeout_s
    while not ready(port):
        if process.poll() is not None:
            # Only an exited process's stderr can be read to the end without blocking.
            said = process.stderr.read().decode(errors="replace").strip() if process.stderr else ""
            raise RuntimeError(f"{name} exited with {process.returncode}: {said}\n{log_text()[-2000:]}")
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(f"{name} was not ready on 127.0.0.1:{port} within {timeout_s} s\n{log_text()[-2000:]}")
        time.sleep(0.05)
    return process


def stop_process(process: subprocess.Popen[bytes] | None, timeout_s: float = 5.0) -> None:
    """Stops a process a helper started: SIGTERM, SIGKILL after ``timeout_s``. Safe to call twice, or with None."""
    if process is None:
        return
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
    if process.stderr is not None:
        process.stderr.close()
