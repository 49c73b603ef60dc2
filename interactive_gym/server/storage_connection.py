"""Opening an experiment database safely: WAL journal, pragmas, schema creation and migration checks.

Kept apart from :mod:`~interactive_gym.server.storage` (which holds the row-level SQL) because it answers a
different question: *is this file a database we may use, and is it ready?* Every failure is a
:class:`StorageError` that says what is wrong with which file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from interactive_gym.server.storage_schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Synchronous", "StorageError", "open_database"]

Synchronous = Literal["FULL", "NORMAL"]
BUSY_TIMEOUT_MS = 10_000  # readers (export) and the writer may briefly contend for the WAL index


class StorageError(Exception):
    """The database cannot be opened, is of the wrong kind or version, or a write was rejected."""


def open_database(
    path: Path, *, readonly: bool, synchronous: Synchronous, clock: Callable[[], float]
) -> sqlite3.Connection:
    """Returns an autocommit-mode connection (transactions are explicit) to a ready experiment database.

    Writable: creates the file and its parent folders if needed, switches to WAL, sets ``synchronous`` and
    foreign keys, and applies pending migrations. Read-only: never creates or changes anything; refuses a
    database whose schema is older or newer than this code's.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
    if readonly:
        if not path.is_file():
            raise StorageError(f"no database file at {path}")
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if readonly:
            _check_version(conn, path)
        else:
            _refuse_foreign(conn, path)  # before switching journals: a foreign file is left exactly as it was
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StorageError(f"{path}: cannot switch to the WAL journal (got {mode!r})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            _migrate(conn, path, clock)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StorageError(f"{path} is not a usable SQLite database ({exc})") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path, clock: Callable[[], float]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        _refuse_foreign(conn, path)
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        current = _version(conn)
        _refuse_newer(current, path)
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, clock()))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _refuse_foreign(conn: sqlite3.Connection, path: Path) -> None:
    if not _has_table(conn, "schema_version") and _has_any_table(conn):
        raise StorageError(
            f"{path} is an SQLite database but not an interactive-gym one; choose another database path"
        )


def _check_version(conn: sqlite3.Connection, path: Path) -> None:
    if not _has_table(conn, "schema_version"):
        raise StorageError(f"{path} is an SQLite database but not an interactive-gym one")
    current = _version(conn)
    _refuse_newer(current, path)
    if current < SCHEMA_VERSION:
        raise StorageError(f"{path} has schema version {current}; open it once for writing to upgrade it")


def _refuse_newer(current: int, path: Path) -> None:
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"{path} has schema version {current}, newer than this interactive-gym supports ({SCHEMA_VERSION}); "
            "upgrade interactive-gym"
        )


def _version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        is not None
    )


def _has_any_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone() is not None
