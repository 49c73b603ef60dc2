"""``interactive-gym backup DB OUT``: a consistent copy of an experiment database, safe while the server runs.

The server keeps its database in WAL mode: committed rows live in ``DB-wal`` until SQLite checkpoints them
into ``DB``, so copying ``DB`` alone (``cp``, ``rsync``) while the server runs misses them, and copying the
two files at different moments can give a torn database. This command uses SQLite's online backup API
instead: it reads one snapshot (every transaction committed before the copy started, none half) through an
ordinary read transaction, which in WAL mode never blocks the server's writer.

The copy is written next to ``OUT`` under a temporary name, switched to a single self-contained file
(rollback journal, no ``-wal``), checked with ``PRAGMA integrity_check``, and only then linked to ``OUT``;
an existing ``OUT`` is never overwritten. What was copied (rows per table) is printed.

A PostgreSQL database is refused with the command that backs it up (``pg_dump``): PostgreSQL's own tools
already take a consistent snapshot while the server writes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from interactive_gym.cli import UserError
from interactive_gym.server.storage_postgres import is_postgres_url, redact

BUSY_TIMEOUT_MS = 10_000  # the writer may hold the WAL index for a moment while it commits
# Files SQLite would read beside OUT when opening it: a leftover from an older database of that name could be
# replayed into the copy (a "hot" journal is rolled back into whatever file now has its name).
SIDE_FILES = ("-journal", "-wal", "-shm")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="copy an experiment database safely, even while the server runs",
        description="Copy the SQLite database DB into the new file OUT with SQLite's online backup API: one "
                    "consistent snapshot of everything committed when the copy starts (including what is still "
                    "in DB-wal), taken without pausing the server. OUT must not exist. The copy is checked "
                    "with PRAGMA integrity_check and its row counts are printed.",
    )
    parser.add_argument("db", metavar="DB", help="the experiment's .sqlite file (e.g. data/my_study.sqlite)")
    parser.add_argument("out", metavar="OUT", help="the new file to write (never overwritten)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class BackupReport:
    """What a backup copied.

    Attributes:
        source: The database that was read.
        out: The new file.
        size_bytes: Size of ``out``.
        rows: Rows per table in the copy, by table name.
    """

    source: Path
    out: Path
    size_bytes: int
    rows: dict[str, int]

    def summary(self) -> str:
        """A few lines for the terminal: where from, where to, how big, the rows of every table."""
        width = max((len(name) for name in self.rows), default=0)
        lines = [f"Backed up {self.source} to {self.out} ({self.size_bytes / 1e6:.1f} MB, integrity_check ok)"]
        lines += [f"  {name:<{width}}  {count:>10,} rows" for name, count in self.rows.items()]
        return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    refuse_url(args.db)
    print(backup_database(Path(args.db), Path(args.out)).summary(), flush=True)
    return 0


def refuse_url(db: str) -> None:
    """Raises :class:`UserError` for a PostgreSQL URL (or one with a slash lost on the way), naming pg_dump."""
    if is_postgres_url(db) or db.partition(":")[0].lower() in ("postgresql", "postgres"):
        raise UserError(f"{redact(db)} is a PostgreSQL database: this command copies SQLite files only; back it up "
                        "with PostgreSQL's own tool instead: pg_dump -Fc DATABASE > FILE (restore: pg_restore -d "
                        "DATABASE FILE)")


def backup_database(source: Path, out: Path) -> BackupReport:
    """Copies ``source`` into the new file ``out`` with the online backup API and checks the copy.

    Raises:
        UserError: ``source`` is missing or not an SQLite database, ``out`` (or a journal of that name)
            exists, or the copy fails its integrity check. ``out`` is left absent in every failure.
    """
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise UserError(f"no database file at {source}")
    if out.resolve() == source.resolve():
        raise UserError("OUT is the database itself: give the backup a new file name")
    _refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    _remove_with_side_files(partial)  # a crashed earlier run of this process id
    try:
        with _open_source(source) as src, contextlib.closing(sqlite3.connect(partial, isolation_level=None)) as dst:
            try:
                # pages=-1: the whole database in one step, so one read transaction = one snapshot. In steps, any
                # commit by the server between two steps would restart the copy (and could starve it).
                src.backup(dst, pages=-1)
            except sqlite3.DatabaseError as exc:
                raise UserError(f"{source} could not be read as an SQLite database ({exc})") from None
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file, no -wal beside it
            _check_integrity(dst, source)
            rows = _row_counts(dst)
        _link_new(partial, out)
    finally:
        _remove_with_side_files(partial)
    return BackupReport(source=source, out=out, size_bytes=out.stat().st_size, rows=rows)


def _refuse_existing(out: Path) -> None:
    if out.exists():
        raise UserError(f"{out} already exists: a backup never overwrites a file, give it a new name")
    for suffix in SIDE_FILES:
        side = out.with_name(out.name + suffix)
        if side.exists():
            raise UserError(f"{side} exists (left by an older database named {out.name}): SQLite would apply it "
                            "to the new copy; remove it or choose another name")


@contextlib.contextmanager
def _open_source(source: Path) -> Iterator[sqlite3.Connection]:
    """Opens ``source`` without creating it (``mode=rw`` needs the file) or writing to it (``query_only``)."""
    uri = source.resolve().as_uri()
    try:
        # Read-write mode so SQLite can read a WAL whose -shm is missing (a crashed server); never writes.
        conn = sqlite3.connect(uri + "?mode=rw", uri=True, isolation_level=None)
    except sqlite3.OperationalError:
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, isolation_level=None)  # a file we may only read
    try:
        conn.execute("PRAGMA query_only = ON")
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA schema_version").fetchone()  # "file is not a database" shows here
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise UserError(f"{source} is not an SQLite database ({exc})") from None
    try:
        yield conn
    finally:
        conn.close()


def _check_integrity(conn: sqlite3.Connection, source: Path) -> None:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        shown = "; ".join(problems[:5])
        raise UserError(f"the copy of {source} fails PRAGMA integrity_check ({shown}); the database itself may be "
                        f"damaged: check it with  sqlite3 {source} 'PRAGMA integrity_check'  and keep its files")


def _row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    names = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    quoted = {name: '"' + name.replace('"', '""') + '"' for name in names}
    return {name: int(conn.execute(f"SELECT count(*) FROM {quoted[name]}").fetchone()[0])  # noqa: S608
            for name in names}


def _link_new(partial: Path, out: Path) -> None:
    """Gives the finished copy its name; a hard link fails if ``out`` appeared meanwhile (never overwrites)."""
    try:
        os.link(partial, out)
    except FileExistsError:
        raise UserError(f"{out} appeared while the backup ran: it was left as it is, give the backup a new name"
                        ) from None
    directory = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the new name survives a power cut too
    finally:
        os.close(directory)


def _remove_with_side_files(path: Path) -> None:
    for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
        candidate.unlink(missing_ok=True)
