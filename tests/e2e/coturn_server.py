"""A real coturn TURN server on loopback for browser tests (long-term credentials or TURN REST ``use-auth-secret``).

Writes a config file into a temporary folder, starts ``turnserver -c <file>`` on a free listening port (UDP and TCP)
with a relay port range chosen away from coturn's defaults, waits until it accepts TCP connections, and stops it by
PID. ``allow-loopback-peers`` is required on a loopback-only machine (otherwise coturn answers 403 Forbidden IP).
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from pathlib import Path

from service_process import start_listening, stop_process

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
REALM = "interactive-gym.test"


def _free_port() -> int:
    # The listening port must be free for both TCP and UDP.
    for _ in range(50):
        with socket.socket() as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free TCP+UDP port on 127.0.0.1")


class CoturnServer:
    """One coturn process.

    Args:
        workdir: folder for the config, log, pid file and user database.
        users: ``{username: password}`` for long-term credentials (``lt-cred-mech``).
        auth_secret: shared secret for TURN REST API credentials (``use-auth-secret``).
    """

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None, auth_secret: str | None = None) -> None:
        if (users is None) == (auth_secret is None):
            raise ValueError("give either users (long-term credentials) or auth_secret (REST API), not both")
        self.workdir = Path(workdir)
        self.users = users or {}
        self.auth_secret = auth_secret
        self.port = _free_port()
        # A 200-port relay range at a random offset keeps parallel test runs apart and away from 49152-65535 defaults.
        self.min_port = random.randrange(20000, 29800)
        self.max_port = self.min_port + 199
        self.log_path = self.workdir / "turn.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def config_text(self) -> str:
        """The coturn configuration this server runs with."""
        lines = [
            "listening-ip=127.0.0.1",
            "relay-ip=127.0.0.1",
            f"listening-port={self.port}",
            f"min-port={self.min_port}",
            f"max-port={self.max_port}",
            f"realm={REALM}",
            "fingerprint",
            "allow-loopback-peers",
            "no-multicast-peers",
            "no-cli",
            "no-tls",
            "no-dtls",
            f"pidfile={self.workdir / 'turn.pid'}",
            f"userdb={self.workdir / 'turndb.sqlite'}",
            f"log-file={self.log_path}",
            "simple-log",
            "verbose",
        ]
        if self.auth_secret is not None:
            lines += ["use-auth-secret", f"static-auth-secret={self.auth_secret}"]
        else:
            lines += ["lt-cred-mech", *(f"user={name}:{password}" for name, password in self.users.items())]
        return "\n".join(lines) + "\n"

    def url(self, transport: str = "udp") -> str:
        """``turn:`` URL for browsers."""
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def start(self, timeout_s: float = 10.0) -> CoturnServer:
        """Starts coturn and returns once it accepts TCP connections on its listening port."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "turn.conf"
        conf.write_text(self.config_text())
        self._proc = start_listening([TURNSERVER, "-c", conf], port=self.port, name="turnserver",
                                     log_text=self.log_text, timeout_s=timeout_s, capture_stderr=False)
        return self

    def stop(self) -> None:
        """Stops the process this object started (by its PID only)."""
        stop_process(self._proc)

    def log_text(self) -> str:
        """coturn's log so far (coturn may add a date suffix to the file name)."""
        files = sorted(self.workdir.glob("turn*.log"))
        return "\n".join(f.read_text(errors="replace") for f in files)

    def __enter__(self) -> CoturnServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
