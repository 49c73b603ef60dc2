"""``interactive-gym backup DB OUT``: a consistent, checked copy of a database a real DataWriter is writing.

The writer runs its own event loop in a background thread and keeps committing steps while the backup is
taken, as the server does; the copy must hold every row committed before the backup began, open on its own
(one file, no WAL), and pass ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.cli import UserError, main
from interactive_gym.server.data_writer import DataWriter, StepRecord
from interactive_gym.tools.backup import backup_database

STEPS_BEFORE_BACKUP = 300  # committed before the backup begins: all must be in the copy


def step(t: int) -> StepRecord:
    return StepRecord(t, [t, t * 2], {"a": t % 4}, {"a": 0.5}, False, False, {"n": t}, {"a": ["ArrowUp"]}, 100.0 + t)


def rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


STEP_ROWS = "SELECT episode_id, t, observation, actions, rewards, info, keys, server_ts FROM steps ORDER BY t"


class WritingServer:
    """A DataWriter in its own event loop and thread, appending and committing one batch of steps after another.

    ``committed`` is how many steps (t = 0 .. committed-1) the writer has acknowledged as committed so far.
    ``pause`` stops the appending but keeps the writer (and so its WAL) open until ``__exit__``.
    """

    def __init__(self, db: Path) -> None:
        self.db = db
        self.committed = 0
        self.enough = threading.Event()  # STEPS_BEFORE_BACKUP committed
        self.stop = threading.Event()
        self.pause = threading.Event()
        self.paused = threading.Event()  # set once no more steps will be appended
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> WritingServer:
        self._thread.start()
        assert self.enough.wait(timeout=60), f"the writer committed only {self.committed} steps: {self.error!r}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the writer thread did not stop"
        if self.error is not None:
            raise self.error

    def _main(self) -> None:
        try:
            asyncio.run(self._write())
        except BaseException as exc:  # reported by __exit__ / __enter__
            self.error = exc
            self.enough.set()

    async def _write(self) -> None:
        writer = DataWriter(self.db, experiment_id="exp", flush_interval_s=0.01)
        await writer.start()
        try:
            episode = await writer.begin_episode(scene_id="s", game_id="g", episode=0, mode="server",
                                                 source="server", seed=1, agents={"a": "p1"})
            t = 0
            while not self.stop.is_set():
                if self.pause.is_set():
                    self.paused.set()
                    await asyncio.sleep(0.01)
                    continue
                writer.append_steps(episode, [step(t + i) for i in range(10)])
                t += 10
                await writer.flush()  # returns once committed: these steps are now acknowledged
                self.committed = t
                if t >= STEPS_BEFORE_BACKUP:
                    self.enough.set()
        finally:
            await writer.close()


def test_backup_while_the_writer_commits_holds_every_row_committed_before_it(tmp_path: Path) -> None:
    db, out = tmp_path / "study.sqlite", tmp_path / "backups" / "study-copy.sqlite"
    with WritingServer(db) as server:
        committed_before = server.committed
        report = backup_database(db, out)
        committed_after = server.committed
        # The copy is taken while the server writes: its -wal holds commits the main file does not have yet.
        assert Path(f"{db}-wal").stat().st_size > 0
    assert committed_after > committed_before  # the writer was not paused by the backup

    copied = rows(out, STEP_ROWS)
    source = rows(db, STEP_ROWS)
    assert len(copied) >= committed_before
    assert copied == source[:len(copied)]  # the same rows, byte for byte: a prefix of what the writer wrote
    assert [r[1] for r in copied] == list(range(len(copied)))  # one snapshot: no step missing in the middle
    assert len(copied) % 10 == 0  # whole transactions only (each flush committed ten steps)

    assert rows(out, "PRAGMA integrity_check") == [("ok",)]
    assert rows(out, "PRAGMA journal_mode") == [("delete",)]  # a single self-contained file
    assert sorted(p.name for p in out.parent.iterdir()) == ["study-copy.sqlite"]  # no -wal, no partial left
    assert report.rows["steps"] == len(copied)
    assert report.rows["episodes"] == 1 and report.rows["schema_version"] >= 1
    assert set(report.rows) == {name for (name,) in rows(
        out, "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}


def test_copying_the_sqlite_file_alone_misses_rows_in_the_wal(tmp_path: Path) -> None:
    """Why the README says not to ``cp`` the database while the server runs."""
    db = tmp_path / "study.sqlite"
    with WritingServer(db) as server:
        server.pause.set()
        assert server.paused.wait(timeout=10)
        committed = server.committed
        shutil.copy(db, tmp_path / "plain.sqlite")
        backup_database(db, tmp_path / "backup.sqlite")
    try:
        plain = len(rows(tmp_path / "plain.sqlite", "SELECT t FROM steps"))
    except sqlite3.OperationalError:  # not even the tables: they are still in the WAL too
        plain = 0
    assert plain < committed
    assert len(rows(tmp_path / "backup.sqlite", "SELECT t FROM steps")) >= committed


def test_the_command_prints_what_it_copied(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, out = tmp_path / "study.sqlite", tmp_path / "copy.sqlite"
    with WritingServer(db):
        pass
    total = len(rows(db, "SELECT t FROM steps"))
    assert main(["backup", str(db), str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"Backed up {db} to {out}" in printed and "integrity_check ok" in printed
    steps_line = next(line for line in printed.splitlines() if line.split()[:1] == ["steps"])
    assert steps_line.split()[1].replace(",", "") == str(total)
    assert main(["export", str(out), "--out", str(tmp_path / "csv")]) == 0  # the copy is a usable database
    assert (tmp_path / "csv" / "steps.csv").read_text().count("\n") == total + 1


def test_an_existing_out_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, out = tmp_path / "study.sqlite", tmp_path / "copy.sqlite"
    with WritingServer(db):
        pass
    out.write_text("an older backup")
    assert main(["backup", str(db), str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert out.read_text() == "an older backup"
    out.unlink()
    Path(f"{out}-journal").write_text("left by an older database of that name")
    with pytest.raises(UserError, match="copy.sqlite-journal exists"):
        backup_database(db, out)
    assert not out.exists()
    with pytest.raises(UserError, match="the database itself"):
        backup_database(db, db)


def test_a_missing_or_foreign_source_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "copy.sqlite"
    with pytest.raises(UserError, match="no database file at"):
        backup_database(tmp_path / "nope.sqlite", out)
    assert not (tmp_path / "nope.sqlite").exists()  # never created
    notes = tmp_path / "notes.sqlite"
    notes.write_text("not a database, just text " * 100)
    with pytest.raises(UserError, match="not an SQLite database"):
        backup_database(notes, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.sqlite"]  # no copy, no partial file
