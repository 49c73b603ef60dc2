"""Real coturn on loopback running the project's own ``deploy/coturn/turnserver.conf``, with TURN over TLS.

As in ``nginx_server.py``, the deployed file is used as it is with only the machine-specific values swapped
(ports, the external address, the secret, the certificate, the relay range, the log), each swap required to
find its line; the loopback-only settings (``listening-ip``/``relay-ip`` 127.0.0.1, ``allow-loopback-peers``,
which a public server must not have) are appended. Browsers reach it as ``turns:localhost:<port>?transport=tcp``.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from coturn_server import TURNSERVER, _free_port
from nginx_server import ROOT, free_port, swap
from service_process import start_listening, stop_process

TURN_TEMPLATE = ROOT / "deploy" / "coturn" / "turnserver.conf"


class TurnsServer:
    """One coturn with ``use-auth-secret`` and a TLS listener, from the deployed template.

    Args:
        workdir: config, log, pid file and user database.
        secret: the ``static-auth-secret`` (the server's ``TURN_SECRET``).
        cert: certificate (PEM) for the TLS listener.
        key: its private key.
    """

    def __init__(self, workdir: Path, *, secret: str, cert: Path, key: Path) -> None:
        self.workdir = Path(workdir)
        self.secret = secret
        self.cert, self.key = cert, key
        self.port = _free_port()  # plain TURN, UDP and TCP
        self.tls_port = free_port()
        self.min_port = random.randrange(30000, 39800)  # apart from coturn_server.py's 20000-29999
        self.max_port = self.min_port + 199
        self.log_path = self.workdir / "turns.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self) -> str:
        """The ``turns:`` URL browsers use (TLS over TCP; the certificate's name is localhost)."""
        return f"turns:localhost:{self.tls_port}?transport=tcp"

    def config_text(self) -> str:
        text = TURN_TEMPLATE.read_text()
        text = swap(text, "\nlistening-port=3478\n", f"\nlistening-port={self.port}\n")
        text = swap(text, "\ntls-listening-port=5349\n", f"\ntls-listening-port={self.tls_port}\n")
        text = swap(text, "\nexternal-ip=203.0.113.10\n", "\nexternal-ip=127.0.0.1\n")
        text = swap(text, "\nstatic-auth-secret=CHANGE-ME-same-as-TURN_SECRET\n", f"\nstatic-auth-secret={self.secret}\n")
        text = swap(text, "\ncert=/etc/coturn/tls/fullchain.pem\n", f"\ncert={self.cert}\n")
        text = swap(text, "\npkey=/etc/coturn/tls/privkey.pem\n", f"\npkey={self.key}\n")
        text = swap(text, "\nmin-port=49160\n", f"\nmin-port={self.min_port}\n")
        text = swap(text, "\nmax-port=49300\n", f"\nmax-port={self.max_port}\n")
        text = swap(text, "\nsyslog\n", f"\nlog-file={self.log_path}\nsimple-log\nverbose\n")
        loopback_only = ["listening-ip=127.0.0.1", "relay-ip=127.0.0.1", "allow-loopback-peers",
                         f"pidfile={self.workdir / 'turn.pid'}", f"userdb={self.workdir / 'turndb.sqlite'}"]
        return text + "\n# loopback test machine only\n" + "\n".join(loopback_only) + "\n"

    def start(self, timeout_s: float = 10.0) -> TurnsServer:
        """Starts coturn; returns once its TLS port accepts connections."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "turnserver.conf"
        conf.write_text(self.config_text())
        self._proc = start_listening([TURNSERVER, "-c", conf], port=self.tls_port, name="turnserver",
                                     log_text=self.log_text, timeout_s=timeout_s, capture_stderr=False)
        return self

    def stop(self) -> None:
        """Stops the process this object started (by its PID only)."""
        stop_process(self._proc)

    def log_text(self) -> str:
        """coturn's log so far (coturn may add a date suffix to the file name)."""
        return "\n".join(f.read_text(errors="replace") for f in sorted(self.workdir.glob("turns*.log")))

    def __enter__(self) -> TurnsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
