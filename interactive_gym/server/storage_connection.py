"""Opening an experiment database safely, on either engine: schema creation, migration and version checks.

Kept apart from :mod:`~interactive_gym.server.storage` (which holds the row-level SQL) because it answers a
different question: *is this a database we may use, and is it ready?* A location is a file path (SQLite,
:mod:`~interactive_gym.server.storage_sqlite`) or a ``postgresql://`` URL
(:mod:`~interactive_gym.server.storage_postgres`); everything here is the same for both. Every failure is a
:class:`StorageError` that says what is wrong with which database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from interactive_gym.server.storage_errors import StorageError, Synchronous
from interactive_gym.server.storage_postgres import PostgresConnection, is_postgres_url, redact
from interactive_gym.server.storage_schema import MIGRATIONS, SCHEMA_VERSION
from interactive_gym.server.storage_sqlite import BUSY_TIMEOUT_MS, SqliteConnection

__all__ = ["BUSY_TIMEOUT_MS", "Connection", "Location", "StorageError", "Synchronous", "connect", "describe",
           "location_of", "open_database"]

Location = Path | str  # a database file, or a postgresql:// URL


# Either engine's connection: the same methods (execute, executemany, begin_write, in_transaction, ...).
Connection = SqliteConnection | PostgresConnection


def location_of(value: Path | str) -> Location:
    """A database location from user input: a ``postgresql://`` URL as it is, anything else as a file path.

    Raises:
        StorageError: a URL that was already turned into a path (``postgresql:/host/db``: one slash lost), or a
            URL of another kind, so the mistake is named instead of creating an odd file.
    """
    if is_postgres_url(value):
        return str(value)
    text = str(value)
    scheme = text.partition(":")[0].lower()
    if scheme in ("postgresql", "postgres"):
        raise StorageError(f"{text!r} looks like a PostgreSQL URL that lost a slash; pass it as a string, "
                           "postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    if "://" in text:
        raise StorageError(f"{redact(text)} is neither a file path nor a postgresql:// URL; give the SQLite file "
                           "(data/study.sqlite) or postgresql://USER:PASSWORD@HOST:PORT/DATABASE")
    return Path(value)


def describe(location: Location) -> str:
    """How messages name a location (a URL without its password)."""
    return redact(location) if isinstance(location, str) else str(location)


def connect(location: Location, *, readonly: bool, synchronous: Synchronous = "FULL", any_thread: bool = False
            ) -> Connection:
    """A raw connection to ``location``'s engine, with no schema checks (the dashboard, tools and tests that
    read rows themselves). Statements use SQLite's SQL; ``any_thread`` allows use from several threads in turn.
    """
    location = location_of(location)
    if isinstance(location, str):
        return PostgresConnection(location, readonly=readonly, synchronous=synchronous)
    return SqliteConnection(location, readonly=readonly, any_thread=any_thread)


def open_database(
    location: Location, *, readonly: bool, synchronous: Synchronous, clock: Callable[[], float]
) -> Connection:
    """Returns a connection (transactions explicit) to a ready experiment database.

    Writable: creates the database if needed (SQLite: the file and its parent folders; PostgreSQL: the tables
    in an existing database), sets up durability and applies pending migrations. Read-only: never creates or
    changes anything; refuses a database whose schema is older or newer than this code's.
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
    conn = connect(location, readonly=readonly, synchronous=synchronous)
    try:
        if readonly:
            _check_version(conn)
        else:
            _refuse_foreign(conn)  # before switching journals: a foreign file is left exactly as it was
            conn.prepare_writer(synchronous)
            _migrate(conn, clock)
    except StorageError:
        conn.close()
        raise
    except conn.errors as exc:
        conn.close()
        raise conn.not_usable(exc) from None
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate(conn: Connection, clock: Callable[[], float]) -> None:
    conn.begin_write()  # two workers starting at once: the second waits, then finds the schema current
    try:
        _refuse_foreign(conn)
        conn.execute(conn.dialect.ddl(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        ))
        current = _version(conn)
        _refuse_newer(current, conn)
        for version, statements in MIGRATIONS:
            if version > current:
                for statement in statements:
                    conn.execute(conn.dialect.ddl(statement))
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, clock()))
        conn.commit()
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _refuse_foreign(conn: Connection) -> None:
    if not conn.has_table("schema_version") and conn.has_any_table():
        raise StorageError(
            f"{conn.description} is a {_engine(conn)} database but not an interactive-gym one; "
            "choose another database path or URL"
        )


def _check_version(conn: Connection) -> None:
    if not conn.has_table("schema_version"):
        raise StorageError(f"{conn.description} is a {_engine(conn)} database but not an interactive-gym one")
    current = _version(conn)
    _refuse_newer(current, conn)
    if current < SCHEMA_VERSION:
        raise StorageError(
            f"{conn.description} has schema version {current}; open it once for writing to upgrade it"
        )


def _refuse_newer(current: int, conn: Connection) -> None:
    if current > SCHEMA_VERSION:
        raise StorageError(
            f"{conn.description} has schema version {current}, newer than this interactive-gym supports "
            f"({SCHEMA_VERSION}); upgrade interactive-gym"
        )


def _version(conn: Connection) -> int:
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def _engine(conn: Connection) -> str:
    return "PostgreSQL" if conn.dialect.name == "postgresql" else "SQLite"
