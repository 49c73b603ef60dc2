"""Durable experiment store: one database per experiment, SQLite (a file) or PostgreSQL (a URL).

Opening and migrations are in :mod:`~interactive_gym.server.storage_connection` (the engines in
:mod:`~interactive_gym.server.storage_sqlite` and :mod:`~interactive_gym.server.storage_postgres`, their SQL
differences in :mod:`~interactive_gym.server.storage_dialect`), the DDL in
:mod:`~interactive_gym.server.storage_schema`, the row types and step encoding in
:mod:`~interactive_gym.server.storage_records` (all re-exported here), the writes in
:mod:`~interactive_gym.server.storage_writes`, the reads in :mod:`~interactive_gym.server.storage_reads`, the
episode rows and the upload rule in :mod:`~interactive_gym.server.storage_episodes`, the browser visits in
:mod:`~interactive_gym.server.storage_visits`. This module holds the connection and the transactions.

:class:`Storage` is synchronous and owns one connection, so it must be used from one thread (the
:class:`~interactive_gym.server.data_writer.DataWriter` thread on the server; the caller's thread in export,
replay and tests). Each public write method is one transaction; inside :meth:`Storage.transaction` calls nest
as savepoints, which lets the writer thread group many writes into one commit while a failing write rolls
back only itself. An outermost transaction holds the database's write lock (SQLite ``BEGIN IMMEDIATE``; a
PostgreSQL advisory lock), so writers, even on several machines, apply the storage's rules one at a time.

Durability: a commit returns once it is durable. On SQLite the journal is WAL and ``synchronous`` defaults
to ``FULL`` (every commit is fsynced before it returns), so an acknowledged row survives process death *and*
an operating-system crash or power loss; since the writer groups every write waiting in its queue into one
commit, the fsync costs little. ``NORMAL`` is still safe against process death, but the last commits can roll
back after a power loss. On PostgreSQL ``FULL`` is ``synchronous_commit = on`` (the server flushed the commit
to its disk) and ``NORMAL`` is ``off``.

Values (observations, actions, infos, answers, meta) are stored as JSON text written by
:mod:`~interactive_gym.server.value_codec`, so numpy arrays and non-finite floats come back exactly. The only
file path (or server) this module ever opens is the one it was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from interactive_gym.server.storage_connection import (
    Location,
    StorageError,
    Synchronous,
    describe,
    location_of,
    open_database,
)
from interactive_gym.server.storage_reads import StorageReads
from interactive_gym.server.storage_records import (
    EPISODE_MODES,
    EPISODE_STATUSES,
    AttemptRow,
    BrowserVisitRow,
    EncodedStep,
    EpisodeConflictError,
    EpisodeRow,
    EventRow,
    ParticipantRow,
    SceneRecordRow,
    StepRecord,
    encode_step,
    require_text,
)
from interactive_gym.server.storage_schema import SCHEMA_VERSION
from interactive_gym.server.storage_writes import StorageWrites

__all__ = [
    "EPISODE_MODES",
    "EPISODE_STATUSES",
    "SCHEMA_VERSION",
    "Location",
    "Synchronous",
    "AttemptRow",
    "BrowserVisitRow",
    "EncodedStep",
    "EpisodeConflictError",
    "EpisodeRow",
    "EventRow",
    "ParticipantRow",
    "SceneRecordRow",
    "StepRecord",
    "Storage",
    "StorageError",
    "encode_step",
    "location_of",
]


class Storage(StorageWrites, StorageReads):
    """One open experiment database. Use as a context manager or call :meth:`close`.

    Args:
        location: the SQLite database file (writable storages create it and its parent folders), or a
            ``postgresql://USER:PASSWORD@HOST:PORT/DATABASE`` URL of an existing PostgreSQL database (its
            tables are created on first use).
        experiment_id: stamped on participant and episode rows; required for those writes.
        readonly: open an existing database for reading only (export, replay); never creates or migrates.
        synchronous: ``"FULL"`` (default, power-loss safe) or ``"NORMAL"`` (process-death safe); see module doc.
        clock: wall-clock source for timestamps not given explicitly (tests pass a fake).
    """

    def __init__(
        self,
        location: Path | str,
        *,
        experiment_id: str | None = None,
        readonly: bool = False,
        synchronous: Synchronous = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if experiment_id is not None:
            require_text(experiment_id, "experiment_id")
        self.location: Location = location_of(location)
        self.experiment_id = experiment_id
        self.readonly = readonly
        self._clock = clock
        self._depth = 0  # transaction nesting: 0 = none, 1 = BEGIN, >1 = savepoints
        self._conn = open_database(self.location, readonly=readonly, synchronous=synchronous, clock=clock)

    @property
    def engine(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self._conn.dialect.name

    def __str__(self) -> str:
        return describe(self.location)

    # ------------------------------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Closes; on SQLite first checkpoints the WAL into the main file (so the .db file alone is complete)."""
        if self._conn is None:
            return
        try:
            if not self.readonly:
                self._conn.checkpoint()
        finally:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        return int(self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def pragma(self, name: str) -> Any:
        """Reads one SQLite PRAGMA value (``journal_mode``, ``synchronous``, ``integrity_check``...)."""
        if not name.replace("_", "").isalpha():
            raise ValueError(f"not a pragma name: {name!r}")
        return self._conn.pragma(name)

    # --------------------------------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit. Outermost: ``BEGIN`` under the write lock..``COMMIT``; nested: a savepoint.

        Database errors inside are rolled back and re-raised as :class:`StorageError`.
        """
        if self.readonly:
            raise StorageError(f"{self} was opened read-only")
        savepoint = f"sp{self._depth}" if self._depth else None
        try:
            if savepoint:
                self._conn.execute(f"SAVEPOINT {savepoint}")
            else:
                self._conn.begin_write()
        except self._conn.errors as exc:
            if not savepoint and self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(f"cannot begin a transaction on {self}: {exc}") from exc
        self._depth += 1
        try:
            yield
        except BaseException as exc:
            self._depth -= 1
            self._roll_back(savepoint)
            if isinstance(exc, self._conn.errors):
                raise StorageError(str(exc)) from exc
            raise
        self._depth -= 1
        if self._conn.transaction_failed:
            # PostgreSQL: a statement failed in here and its error was caught, which aborts the transaction; a
            # COMMIT would then quietly roll back. Undo this unit only and say so, never report success.
            self._roll_back(savepoint)
            raise StorageError("a statement failed inside the transaction, so none of it was kept")
        if savepoint:
            self._conn.execute(f"RELEASE {savepoint}")
            return
        try:
            self._conn.commit()
        except self._conn.errors as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise StorageError(f"commit failed: {exc}") from exc

    def _roll_back(self, savepoint: str | None) -> None:
        # SQLite itself rolls the whole transaction back on some errors (disk full, I/O): then there is
        # nothing left to undo, and trying would only hide the original error.
        if not self._conn.in_transaction:
            return
        if savepoint:
            self._conn.execute(f"ROLLBACK TO {savepoint}")
            self._conn.execute(f"RELEASE {savepoint}")
        else:
            self._conn.execute("ROLLBACK")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A consistent read view across several queries while a writer keeps committing."""
        self._conn.execute(self._conn.dialect.begin_snapshot)
        try:
            yield
        finally:
            self._conn.execute("COMMIT")
