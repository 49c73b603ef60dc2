"""Which storage engine the end-to-end suite runs on, and how its tests read the data back on either.

``INTERACTIVE_GYM_TEST_DB=sqlite`` (the default) keeps every experiment in the SQLite file its test names.
``INTERACTIVE_GYM_TEST_DB=postgresql`` runs the same suite on PostgreSQL: one real server (the Debian binaries,
``tests/postgres_server.py``) is started on first use and stopped when the test process exits, and each
SQLite path a test names is stored instead in a PostgreSQL schema of its own. The same path always maps to
the same schema, so a test that restarts its server on "the same file" finds its data again.

:func:`harness.build_app <experiment_harness.build_app>` applies the mapping to the experiment's config;
tests read rows back with :func:`connect` or :func:`open_storage`, which take the path the test chose and
read whichever engine holds it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_TESTS = str(Path(__file__).resolve().parents[1])  # tests/: the PostgreSQL server helper
if _TESTS not in sys.path:
    sys.path.append(_TESTS)  # after tests/e2e, whose conftest a script importing these helpers also imports

from postgres_server import PostgresServer  # noqa: E402

from interactive_gym.server.storage import Location, Storage  # noqa: E402
from interactive_gym.server.storage_connection import connect as engine_connect  # noqa: E402

ENV = "INTERACTIVE_GYM_TEST_DB"
ENGINES = ("sqlite", "postgresql")


def engine() -> str:
    """The engine named by ``INTERACTIVE_GYM_TEST_DB`` (default ``sqlite``); anything else is an error."""
    value = os.environ.get(ENV, "sqlite").strip().lower() or "sqlite"
    if value not in ENGINES:
        raise RuntimeError(f"{ENV}={value!r}: choose one of {', '.join(ENGINES)}")
    return value


class _PostgresDatabases:
    """One server per test process, started on first use; one schema per path a test names."""

    def __init__(self) -> None:
        self._server: PostgresServer | None = None
        self._urls: dict[str, str] = {}

    def url_for(self, path: Path) -> str:
        key = str(Path(path).resolve())
        if key not in self._urls:
            self._urls[key] = self._started().new_schema("e2e")
        return self._urls[key]

    def _started(self) -> PostgresServer:
        if self._server is None:
            server = PostgresServer()
            server.start()
            atexit.register(server.stop)
            self._server = server
        return self._server


_POSTGRES = _PostgresDatabases()  # the test process's one server (a test helper, not server state)


def location_for(db: Path | str) -> Location:
    """Where the data of the experiment a test stores at ``db`` really lives on the engine under test."""
    if isinstance(db, str) and "://" in db:
        return db
    return _POSTGRES.url_for(Path(db)) if engine() == "postgresql" else Path(db)


@contextlib.contextmanager
def connect(db: Path | str) -> Iterator[Any]:
    """A read-only connection to the test's database (``execute(sql, params)`` with SQLite placeholders)."""
    conn = engine_connect(location_for(db), readonly=True)
    try:
        yield conn
    finally:
        conn.close()


def open_storage(db: Path | str) -> Storage:
    """``Storage(db, readonly=True)`` on the engine under test."""
    return Storage(location_for(db), readonly=True)
