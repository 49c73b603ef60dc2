"""The SQLite engine: one database file, WAL journal, the pragmas that make a commit durable.

:class:`SqliteConnection` is the engine half of :mod:`~interactive_gym.server.storage_connection` for a file
path: it opens the file (read-only opens never create it), sets the journal and ``synchronous`` level, and
answers the few questions whose SQL differs between engines (which tables exist, checkpointing, pragmas).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from interactive_gym.server.storage_dialect import SQLITE, Dialect
from interactive_gym.server.storage_errors import StorageError, Synchronous

__all__ = ["BUSY_TIMEOUT_MS", "SqliteConnection"]

BUSY_TIMEOUT_MS = 10_000  # readers (export) and the writer may briefly contend for the WAL index


class SqliteConnection:
    """An autocommit-mode ``sqlite3`` connection (transactions are explicit) to one database file.

    Args:
        path: the database file.
        readonly: open an existing file for reading only; never creates it.
        any_thread: may be used from several threads, one at a time (the caller holds a lock), as the
            dashboard's reads do from ``asyncio.to_thread``. psycopg connections always may.

    Raises:
        StorageError: a read-only open of a missing file.
    """

    dialect: Dialect = SQLITE
    errors: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path, *, readonly: bool, any_thread: bool = False) -> None:
        self.description = str(path)
        if readonly:
            if not path.is_file():
                raise StorageError(f"no database file at {path}")
            self._raw = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                        check_same_thread=not any_thread)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._raw = sqlite3.connect(path, isolation_level=None, check_same_thread=not any_thread)
        self._raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Runs one statement; returns its cursor."""
        return self._raw.execute(sql, params)

    @contextlib.contextmanager
    def streamed(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Iterator[Any]:
        """A cursor that reads its rows as they are iterated (SQLite cursors always do)."""
        cursor = self._raw.execute(sql, params)
        try:
            yield cursor
        finally:
            cursor.close()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Runs one statement once per row."""
        self._raw.executemany(sql, rows)

    def begin_write(self) -> None:
        """Opens a transaction holding the database's write lock."""
        for statement in self.dialect.begin_write:
            self._raw.execute(statement)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (SQLite closes it by itself after some errors)."""
        return self._raw.in_transaction

    @property
    def transaction_failed(self) -> bool:
        """Never: an SQLite error ends only its statement (or rolls the whole transaction back by itself)."""
        return False

    def commit(self) -> None:
        """Commits the open transaction."""
        self._raw.execute("COMMIT")

    def prepare_writer(self, synchronous: Synchronous) -> None:
        """WAL journal, the ``synchronous`` level and foreign keys, for a connection that will write."""
        mode = self._raw.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise StorageError(f"{self.description}: cannot switch to the WAL journal (got {mode!r})")
        self._raw.execute(f"PRAGMA synchronous = {synchronous}")
        self._raw.execute("PRAGMA foreign_keys = ON")

    def has_table(self, name: str) -> bool:
        """Whether the database holds a table of this name."""
        found = self._raw.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return found.fetchone() is not None

    def has_any_table(self) -> bool:
        """Whether the database holds any table at all."""
        return self._raw.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone() is not None

    def pragma(self, name: str) -> Any:
        """Reads one PRAGMA value."""
        return self._raw.execute(f"PRAGMA {name}").fetchone()[0]

    def checkpoint(self) -> None:
        """Moves the WAL into the main file, so the ``.db`` file alone is complete."""
        self._raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def not_usable(self, exc: Exception) -> StorageError:
        """The error for a file that is not a database this engine can open."""
        return StorageError(f"{self.description} is not a usable SQLite database ({exc})")

    def close(self) -> None:
        """Closes the connection."""
        self._raw.close()
