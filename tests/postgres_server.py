"""A real PostgreSQL server for tests, run from the Debian binaries (package ``postgresql``).

:class:`PostgresServer` runs ``initdb`` into a fresh temporary folder, starts ``postgres`` with ``pg_ctl`` on a
free port with its unix socket in that folder (trust authentication, reachable only from this machine), hands
out one new database per test (:meth:`PostgresServer.new_database`) and stops and deletes everything at the
end. ``initdb`` refuses to run as root, so under root the commands run as the ``postgres`` user (created if it
is missing) through ``runuser``.

Nothing is skipped: when the binaries are missing, :func:`find_bindir` raises with the command that installs
them, so a CI machine without PostgreSQL fails instead of silently testing SQLite only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PostgresServer", "find_bindir", "running_server"]

SERVER_USER = "postgres"  # the Debian package's user; under root every server command runs as this user
START_TIMEOUT_S = 60


class PostgresUnavailableError(RuntimeError):
    """The PostgreSQL binaries are not installed or the server did not start; the message says what to do."""


def find_bindir() -> Path:
    """The folder holding ``initdb``/``pg_ctl``/``postgres``: the newest ``/usr/lib/postgresql/<v>/bin``.

    Raises:
        PostgresUnavailableError: no PostgreSQL server binaries on this machine.
    """
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: _version(p.parent.parent))
    if candidates:
        return candidates[-1].parent
    initdb = shutil.which("initdb")
    if initdb is not None:
        return Path(initdb).resolve().parent
    raise PostgresUnavailableError(
        "the PostgreSQL server binaries (initdb, pg_ctl) are missing: install the Debian package with "
        "`apt-get install postgresql` or run `scripts/bootstrap.sh --system` as root"
    )


def _version(folder: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in folder.name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One throw-away PostgreSQL cluster in a temporary folder.

    Args:
        bindir: where ``initdb``, ``pg_ctl`` and ``postgres`` are (default: :func:`find_bindir`).
    """

    def __init__(self, bindir: Path | None = None) -> None:
        self.bindir = bindir if bindir is not None else find_bindir()
        self.root = Path(tempfile.mkdtemp(prefix="ig-postgres-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self._names = itertools.count(1)
        self._started = False
        self._tests_database = False

    @property
    def admin_url(self) -> str:
        """URL of the maintenance database ``postgres`` (over the unix socket)."""
        return self.url("postgres")

    def url(self, database: str) -> str:
        """The ``postgresql://`` URL of one database of this server (unix socket, user ``postgres``)."""
        return f"postgresql://{SERVER_USER}@/{database}?host={self.socket_dir}&port={self.port}"

    def start(self) -> None:
        """Creates the cluster (first time only) and starts the server; returns once it accepts connections."""
        if not (self.data / "PG_VERSION").exists():
            self.socket_dir.mkdir(exist_ok=True)
            if self._as_root:
                _ensure_user(SERVER_USER)
                owner = pwd.getpwnam(SERVER_USER)
                for path in (self.root, self.socket_dir):
                    os.chown(path, owner.pw_uid, owner.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", SERVER_USER, "-A", "trust", "-E", "UTF8",
                      "--no-locale", "--no-sync")
        options = f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' -p {self.port}"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-o", options,
                  "-w", "-t", str(START_TIMEOUT_S), "start")
        self._started = True

    def crash(self) -> None:
        """Stops the server the way a crash would (immediate shutdown: no checkpoint, WAL replay on restart)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        self._started = False

    def stop(self) -> None:
        """Stops the server (fast shutdown) and deletes its folder. Safe to call twice."""
        try:
            if self._started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
                self._started = False
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def new_database(self, prefix: str = "test") -> str:
        """Creates an empty database and returns its URL (about a second: prefer :meth:`new_schema` in tests)."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def new_schema(self, prefix: str = "test") -> str:
        """Creates an empty schema in the shared database ``tests`` and returns a URL whose connections use it.

        As good as a fresh database for the storage (it sees only the tables of its ``search_path``) and a
        hundred times quicker to make, so every test, and every example of a property test, gets its own.
        """
        import psycopg

        if not self._tests_database:
            self.new_database_named("tests")
            self._tests_database = True
        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(self.url("tests"), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{name}"')
        return f"{self.url('tests')}&options=-csearch_path%3D{name}"

    def new_database_named(self, name: str) -> str:
        """Creates the database ``name`` and returns its URL."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        """The server's log so far (for failure messages)."""
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=self.root)
        if done.returncode != 0:
            raise PostgresUnavailableError(
                f"{program} failed (exit {done.returncode}): {done.stderr.strip() or done.stdout.strip()}\n"
                f"{self.log()}"
            )


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, stopped and deleted on exit."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
