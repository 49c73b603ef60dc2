"""Real nginx on loopback running the project's own site file (``deploy/nginx/interactive-gym.conf``).

The deployed file is used as it is, with only the machine-specific values swapped for the test's (ports,
certificate paths, log paths, the upstream port); every swap must find its text in the file, so a change to
the template that the test no longer matches fails loudly instead of testing something else. The site is
wrapped in a minimal main config (``daemon off;``, every path under a temporary prefix) in place of Debian's
``/etc/nginx/nginx.conf``, started with ``nginx -c <conf> -p <prefix>`` and stopped by PID.

Also makes the self-signed certificate (``openssl req``) that nginx and coturn serve in the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from service_process import start_listening, stop_process

ROOT = Path(__file__).resolve().parents[2]
SITE_TEMPLATE = ROOT / "deploy" / "nginx" / "interactive-gym.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed_certificate(folder: Path, common_name: str = "localhost") -> tuple[Path, Path]:
    """Writes ``cert.pem`` and ``key.pem`` (RSA 2048, valid two days, ``CN=common_name``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={common_name}", "-addext", f"subjectAltName=DNS:{common_name},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def swap(text: str, old: str, new: str, count: int = 1) -> str:
    """Replaces ``old`` by ``new``, which must occur exactly ``count`` times (the template and test agree)."""
    found = text.count(old)
    if found != count:
        raise AssertionError(f"expected {count} x {old!r} in the deployed template, found {found}")
    return text.replace(old, new)


class NginxServer:
    """One nginx serving the deployed site on 127.0.0.1 with TLS, in front of ``upstream_port``.

    Args:
        workdir: the prefix: config, logs, temp folders and pid file.
        upstream_port: where ``interactive-gym run`` listens (the template's 127.0.0.1:8000).
        cert: certificate file (PEM), in place of certbot's ``fullchain.pem``.
        key: its private key, in place of ``privkey.pem``.
        proxy_bind: source address of nginx's connections to the upstream (a loopback alias such as
            127.0.0.2), so the server can tell nginx's address from the participant's.
    """

    def __init__(self, workdir: Path, *, upstream_port: int, cert: Path, key: Path,
                 proxy_bind: str | None = None) -> None:
        self.workdir = Path(workdir)
        self.upstream_port = upstream_port
        self.cert, self.key = cert, key
        self.proxy_bind = proxy_bind
        self.https_port = free_port()
        self.http_port = free_port()
        self.url = f"https://127.0.0.1:{self.https_port}"
        self.access_log = self.workdir / "access.log"
        self.error_log = self.workdir / "error.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def site_text(self) -> str:
        """The deployed site file with this machine's values."""
        text = SITE_TEMPLATE.read_text()
        text = swap(text, "    listen [::]:80;\n", "")  # the sandbox may have no IPv6
        text = swap(text, "    listen [::]:443 ssl http2;\n", "")
        text = swap(text, "listen 80;", f"listen 127.0.0.1:{self.http_port};")
        text = swap(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{self.https_port} ssl http2;")
        text = swap(text, "server_name study.example.org;", "server_name localhost 127.0.0.1;", count=2)
        text = swap(text, "/etc/letsencrypt/live/study.example.org/fullchain.pem", str(self.cert))
        text = swap(text, "/etc/letsencrypt/live/study.example.org/privkey.pem", str(self.key))
        text = swap(text, "server 127.0.0.1:8000;", f"server 127.0.0.1:{self.upstream_port};")
        text = swap(text, "root /var/www/html;", f"root {self.workdir / 'webroot'};")
        text = swap(text, "/var/log/nginx/interactive-gym.access.log", str(self.access_log))
        text = swap(text, "/var/log/nginx/interactive-gym.error.log", str(self.error_log))
        if self.proxy_bind is not None:
            text = swap(text, "    proxy_http_version 1.1;\n",
                        f"    proxy_http_version 1.1;\n    proxy_bind {self.proxy_bind};\n")
        return text

    def main_config_text(self) -> str:
        """A minimal stand-in for Debian's nginx.conf: foreground, every path under the prefix."""
        prefix = self.workdir
        temp = "\n".join(f"    {kind}_temp_path {prefix / 'temp' / kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # As root the workers would run as nobody, who cannot enter pytest's private temp folders (nginx
        # buffers large responses such as Pyodide's wasm there); Debian's www-data has /var/lib/nginx instead.
        user = "user root root;\n" if os.geteuid() == 0 else ""
        return (f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
                f"error_log {self.error_log} info;\nevents {{ worker_connections 512; }}\n"
                f"http {{\n    default_type application/octet-stream;\n{temp}\n"
                f"    access_log {prefix / 'default-access.log'};\n    include {prefix / 'site.conf'};\n}}\n")

    def start(self, timeout_s: float = 10.0) -> NginxServer:
        """Starts nginx and returns once its HTTPS port accepts connections."""
        for folder in ("temp", "webroot"):
            (self.workdir / folder).mkdir(parents=True, exist_ok=True)
        (self.workdir / "site.conf").write_text(self.site_text())
        conf = self.workdir / "nginx.conf"
        conf.write_text(self.main_config_text())
        self._proc = start_listening([NGINX, "-c", conf, "-p", self.workdir], port=self.https_port, name="nginx",
                                     log_text=self.error_text, timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        """Stops the nginx this object started (its master process, by PID; the workers follow)."""
        stop_process(self._proc, timeout_s=10)

    def access_text(self) -> str:
        return self.access_log.read_text(errors="replace") if self.access_log.exists() else ""

    def error_text(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
