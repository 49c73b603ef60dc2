"""Reading a test database directly, on either engine (the tests' own view, apart from the code under test)."""

from __future__ import annotations

from typing import Any

from interactive_gym.server.storage import Location
from interactive_gym.server.storage_connection import connect


def committed(location: Location, sql: str, params: tuple[Any, ...] = ()) -> Any:
    """The first column of the first row of ``sql`` (SQLite placeholders), read on a new connection.

    A separate connection sees only committed data, which is what these tests check.
    """
    conn = connect(location, readonly=True)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def execute(location: Location, *statements: str) -> None:
    """Runs statements in one transaction on a new connection (tests that sabotage or age a database)."""
    conn = connect(location, readonly=False)
    try:
        conn.execute("BEGIN")
        for statement in statements:
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


def column(location: Location, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The first column of every row of ``sql``, read on a new connection."""
    conn = connect(location, readonly=True)
    try:
        return [row[0] for row in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()
