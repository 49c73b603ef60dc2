"""Crash safety: SIGKILL a process mid-stream; every acknowledged row must be in the database afterwards.

The child (storage_helpers/crash_writer.py) writes through a real DataWriter and prints a line after each
acknowledgement. The parent kills it with SIGKILL (no cleanup, no close(), no checkpoint) after some number of
acknowledgements, then opens the database and checks every acknowledged row is there and intact. The tests
taking ``new_db`` run on SQLite and on PostgreSQL; on PostgreSQL the database server itself is also crashed.
"""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from db_engines import committed
from postgres_server import PostgresServer

from interactive_gym.server.storage import Location, Storage

HELPER = Path(__file__).parent / "storage_helpers" / "crash_writer.py"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 60.0  # generous: only a broken writer or a stuck child takes this long


class Child:
    """The child process plus a thread that forwards its stdout lines into a queue (so reads can time out)."""

    def __init__(self, db_path: Location, mode: str, synchronous: str, flush_interval_s: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-u", str(HELPER), str(db_path), mode, synchronous, str(flush_interval_s)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._forward, daemon=True)
        self._reader.start()

    def _forward(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.endswith("\n"):  # a line cut short by the kill was never completely printed
                self.lines.put(line[:-1])
        self.lines.put(None)

    def next_line(self) -> str:
        try:
            line = self.lines.get(timeout=DEADLINE_S)
        except queue.Empty:
            self.kill()
            pytest.fail(f"child printed nothing for {DEADLINE_S} s")
        if line is None:
            stderr = self.process.stderr.read() if self.process.stderr else ""
            pytest.fail(f"child exited early (code {self.process.wait()}):\n{stderr}")
        return line

    def kill(self) -> list[str]:
        """SIGKILLs the child and returns every line it printed that was not read yet."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=DEADLINE_S)
        self._reader.join(timeout=DEADLINE_S)
        rest = []
        while (line := self.lines.get_nowait()) is not None:
            rest.append(line)
        if self.process.stderr:
            self.process.stderr.close()
        return rest


def open_after_crash(db_path: Location) -> Storage:
    if isinstance(db_path, Path):  # PostgreSQL checks its own pages while it replays its log at restart
        conn = sqlite3.connect(db_path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()
    return Storage(db_path, experiment_id="crash")


@pytest.mark.parametrize(
    ("synchronous", "kill_after"),
    [("FULL", 40), ("NORMAL", 150), ("FULL", 400)],
)
def test_every_acknowledged_write_survives_sigkill(new_db: Callable[..., Location], synchronous: str,
                                                   kill_after: int) -> None:
    db_path = new_db("crash")
    child = Child(db_path, "acks", synchronous, flush_interval_s=0.05)
    assert child.next_line() == "READY"
    acknowledged = [child.next_line() for _ in range(kill_after)]
    acknowledged += child.kill()
    assert child.process.returncode == -signal.SIGKILL

    kinds = {line.split()[0] for line in acknowledged}
    assert kinds == {"EVENT", "PARTICIPANT", "STEPS", "UPLOAD"} or kill_after < 100, kinds
    check_acknowledged(db_path, acknowledged)


def test_every_acknowledged_write_survives_a_crash_of_the_postgres_server() -> None:
    server = PostgresServer()  # its own server: this test crashes it
    try:
        server.start()
        url = server.new_schema("crash")
        child = Child(url, "acks", "FULL", flush_interval_s=0.05)
        assert child.next_line() == "READY"
        acknowledged = [child.next_line() for _ in range(300)]
        server.crash()  # mid-stream: commits in flight fail, so they are never acknowledged
        acknowledged += child.kill()
        server.start()  # replays the server's write-ahead log
        assert len({line.split()[0] for line in acknowledged}) == 4
        check_acknowledged(url, acknowledged)
    finally:
        server.stop()


def check_acknowledged(db_path: Location, acknowledged: list[str]) -> None:
    """Every row the child printed as acknowledged is stored intact; no upload is half written."""
    with open_after_crash(db_path) as storage:
        events = {event.id: event for event in storage.events()}
        participants = {p.participant_id for p in storage.participants()}
        episodes = {episode.id: episode for episode in storage.episodes()}
        for line in acknowledged:
            kind, *fields = line.split()
            if kind == "EVENT":
                event_id, i = int(fields[0]), int(fields[1])
                assert events[event_id].data == {"i": i}, line
            elif kind == "PARTICIPANT":
                assert fields[0] in participants, line
            elif kind == "STEPS":
                episode_id, t_end = int(fields[0]), int(fields[1])
                stored = [step.t for step in storage.steps(episode_id)]
                assert stored[:t_end] == list(range(t_end)), line
            elif kind == "UPLOAD":
                episode_id, n = int(fields[0]), int(fields[1])
                assert episodes[episode_id].status == "complete" and episodes[episode_id].step_count == n, (
                    line
                )
            else:
                pytest.fail(f"unexpected line from child: {line}")
        # Uploads are single transactions: acknowledged or not, no episode is ever half written.
        for episode in episodes.values():
            if episode.mode == "browser":
                assert episode.step_count == 20 + episode.episode % 7, episode


def test_buffered_steps_are_committed_by_the_timer_and_survive_sigkill(new_db: Callable[..., Location]) -> None:
    db_path = new_db("buffered")
    flush_interval_s = 0.1
    child = Child(db_path, "buffered", "FULL", flush_interval_s)
    assert child.next_line() == "READY"
    appended_at: dict[int, float] = {}
    seen_committed = 0
    started = time.monotonic()
    # The child never awaits a flush: only the writer's timer can make these rows visible.
    while seen_committed < 100:
        assert time.monotonic() - started < DEADLINE_S, "buffered steps were never committed"
        _, _, t, at = child.next_line().split()
        appended_at[int(t)] = float(at)
        if int(t) % 20 == 0:
            seen_committed = committed_steps(db_path)
    killed_at = time.monotonic()
    for line in child.kill():
        _, _, t, at = line.split()
        appended_at[int(t)] = float(at)

    with open_after_crash(db_path) as storage:
        (episode,) = storage.episodes()
        stored = [step.t for step in storage.steps(episode.id)]
    assert len(stored) >= seen_committed
    assert stored == list(range(len(stored)))  # commits are whole batches, in order: a prefix survives
    lost = [t for t in appended_at if t >= len(stored)]
    if lost:
        oldest_lost_age = killed_at - appended_at[min(lost)]
        # Contract: a step older than flush_interval_s at the kill was committed. Generous sanity bound only.
        assert oldest_lost_age < flush_interval_s + 2.0, oldest_lost_age


def committed_steps(db_path: Location) -> int:
    return int(committed(db_path, "SELECT COUNT(*) FROM steps"))
