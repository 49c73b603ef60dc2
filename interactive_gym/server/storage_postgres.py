"""The PostgreSQL engine: a ``postgresql://`` URL, for workers on several machines sharing one database.

:class:`PostgresConnection` offers the same small interface as
:class:`~interactive_gym.server.storage_sqlite.SqliteConnection`, so the storage code runs unchanged: it turns
each statement into psycopg's placeholder style (:mod:`~interactive_gym.server.storage_dialect`), opens write
transactions under the database's advisory write lock, and reconnects at the start of a transaction when the
server closed the connection (a restart), so a long-running writer recovers without losing its buffer.

Durability is the same rule as on SQLite: with ``synchronous="FULL"`` (``synchronous_commit = on``) a commit
returns once the server has flushed it to its disk, so a row acknowledged to a participant survives a crash of
this process, of the database server, or of either machine.

Requires psycopg 3 (``pip install 'interactive-gym[postgres]'``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from interactive_gym.server.storage_dialect import POSTGRES, Dialect
from interactive_gym.server.storage_errors import StorageError, Synchronous

__all__ = ["PostgresConnection", "is_postgres_url", "redact"]

_log = logging.getLogger(__name__)

URL_SCHEMES = ("postgresql", "postgres")
CONNECT_TIMEOUT_S = 10
LOCK_TIMEOUT_MS = 10_000  # as SQLite's busy timeout: a writer waits this long for another's commit
STREAM_BATCH_ROWS = 500  # rows a streamed read fetches per round trip
URL_FORM = "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"


def is_postgres_url(location: object) -> bool:
    """Whether ``location`` is a PostgreSQL URL (a ``str`` starting ``postgresql://`` or ``postgres://``)."""
    return isinstance(location, str) and location.partition("://")[0].lower() in URL_SCHEMES and "://" in location


def redact(url: str) -> str:
    """The URL without its password (for messages and logs)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if parts.password is not None:
            netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
        query = urlencode([(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="/")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<a PostgreSQL URL that cannot be parsed>"


class PostgresConnection:
    """An autocommit-mode psycopg connection (transactions are explicit) to one PostgreSQL database.

    Args:
        url: ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` (libpq URL; ``?host=/socket/dir`` works too).
        readonly: every transaction is read-only (export, replay).
        synchronous: ``"FULL"`` -> ``synchronous_commit = on``; ``"NORMAL"`` -> ``off``.

    Raises:
        StorageError: psycopg is not installed, the URL is malformed, or the server cannot be reached or refuses
            the login; the message says what to change.
    """

    dialect: Dialect = POSTGRES

    def __init__(self, url: str, *, readonly: bool, synchronous: Synchronous = "FULL") -> None:
        try:
            import psycopg
        except ImportError:
            raise StorageError(
                "a PostgreSQL database needs psycopg 3: pip install 'interactive-gym[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        self.url = url
        self.description = redact(url)
        self._readonly = readonly
        self._synchronous = synchronous
        self._cursors = 0  # names server-side cursors apart
        self._queries: dict[str, str] = {}  # SQLite-style statement -> psycopg style (a few dozen statements)
        self._raw = self._connect()

    def _connect(self) -> Any:
        psycopg = self._psycopg
        try:
            psycopg.conninfo.conninfo_to_dict(self.url)
        except psycopg.ProgrammingError as exc:
            raise StorageError(f"{self.description} is not a valid PostgreSQL URL ({str(exc).strip()}); write it as {URL_FORM}"
                               ) from None
        try:
            raw = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StorageError(
                f"cannot connect to PostgreSQL at {self.description}: {reason}. Check that the server is running "
                f"and that the host, port, user, password and database in the URL ({URL_FORM}) are right; "
                "the database must exist (createdb DATABASE)"
            ) from None
        try:
            raw.execute("SET synchronous_commit = " + ("on" if self._synchronous == "FULL" else "off"))
            raw.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
            if self._readonly:
                raw.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            elif raw.execute("SHOW fsync").fetchone()[0] != "on":
                _log.warning("PostgreSQL at %s runs with fsync=off: committed data can be lost in a crash",
                             self.description)
        except BaseException:
            raw.close()
            raise
        return raw

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        """Runs one statement (SQLite placeholder style); returns its cursor."""
        return self._raw.execute(self._query(sql), params)

    @contextlib.contextmanager
    def streamed(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Iterator[Any]:
        """A cursor that fetches its rows in batches as they are iterated (a server-side cursor).

        A plain psycopg cursor loads the whole result into memory first, which an export of every step of a
        study cannot afford. Server-side cursors live in a transaction, so outside one (no snapshot) this
        falls back to a plain cursor.
        """
        if not self.in_transaction:
            with self._raw.execute(self._query(sql), params) as cursor:
                yield cursor
            return
        self._cursors += 1
        with self._raw.cursor(name=f"ig_stream_{self._cursors}") as cursor:
            cursor.itersize = STREAM_BATCH_ROWS
            cursor.execute(self._query(sql), params)
            yield cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Runs one statement once per row (pipelined by psycopg)."""
        with self._raw.cursor() as cursor:
            cursor.executemany(self._query(sql), list(rows))

    def begin_write(self) -> None:
        """Opens a transaction holding the database's write lock; reconnects first if the server hung up."""
        if self._raw.broken or self._raw.closed:
            _log.warning("PostgreSQL at %s: connection lost, reconnecting", self.description)
            self._raw.close()
            self._raw = self._connect()
        for statement in self.dialect.begin_write:
            self._raw.execute(statement)

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open (also when it failed and awaits its rollback)."""
        status = self._raw.info.transaction_status
        states = self._psycopg.pq.TransactionStatus
        return bool(status in (states.INTRANS, states.INERROR, states.ACTIVE))  # UNKNOWN: the connection is gone

    @property
    def transaction_failed(self) -> bool:
        """Whether a failed statement aborted the open transaction (only a rollback can follow)."""
        return bool(self._raw.info.transaction_status == self._psycopg.pq.TransactionStatus.INERROR)

    def commit(self) -> None:
        """Commits the open transaction; raises if the server rolled it back instead.

        PostgreSQL answers COMMIT of an aborted transaction with ROLLBACK and no error, so the answer is checked:
        an acknowledgement must never rest on a commit that did not happen.
        """
        cursor = self._raw.execute("COMMIT")
        if cursor.statusmessage != "COMMIT":
            raise self._psycopg.errors.InFailedSqlTransaction(
                f"the server answered {cursor.statusmessage!r} to COMMIT: the transaction was rolled back")

    def prepare_writer(self, synchronous: Synchronous) -> None:
        """Nothing more to do: ``synchronous_commit`` was set when connecting."""

    def has_table(self, name: str) -> bool:
        """Whether the current schema holds a table of this name."""
        found = self._raw.execute(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() AND tablename = %s", (name,))
        return found.fetchone() is not None

    def has_any_table(self) -> bool:
        """Whether the current schema holds any table at all."""
        found = self._raw.execute("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema()")
        return found.fetchone() is not None

    def pragma(self, name: str) -> Any:
        """PRAGMAs are SQLite's; reading one from PostgreSQL is a mistake of the caller."""
        raise StorageError(f"PRAGMA {name} is an SQLite setting; {self.description} is a PostgreSQL database")

    def checkpoint(self) -> None:
        """Nothing to do: the server manages its own write-ahead log."""

    def not_usable(self, exc: Exception) -> StorageError:
        """The error for a database this code cannot use."""
        return StorageError(f"{self.description} is not usable ({exc})")

    def close(self) -> None:
        """Closes the connection."""
        self._raw.close()

    def _query(self, sql: str) -> str:
        query = self._queries.get(sql)
        if query is None:
            query = self._queries[sql] = self.dialect.query(sql)
        return query
