"""The dashboard's reads of the experiment database: rows added since the last push, one participant's
timeline. Read-only SQLite connections (WAL: they never block the writer); callers run these in a thread.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from interactive_gym.server import value_codec
from interactive_gym.server.storage_connection import BUSY_TIMEOUT_MS

MAX_NEW_ROWS = 500  # per table per push: a burst is caught up over the next pushes
MAX_TIMELINE_ROWS = 2000


class StudyReader:
    """A read-only connection to one experiment database, opened on first use (the file may not exist yet).

    Args:
        path: The database file.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        # Calls come from worker threads (asyncio.to_thread), one connection serves them in turn.
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection | None:
        if self._conn is None:
            if not isinstance(self.path, Path):
                return None  # a postgresql:// URL: the stored timeline is read from SQLite files only, for now
            if not self.path.is_file():
                return None  # not created yet (the writer creates it at start-up)
            self._conn = sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._conn.row_factory = sqlite3.Row
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def new_rows(self, after_event: int, after_episode: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Events and p2p episodes with ids above the given ones (at most :data:`MAX_NEW_ROWS` each), id order."""
        with self._lock:
            return self._new_rows(after_event, after_episode)

    def _new_rows(self, after_event: int, after_episode: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        conn = self._connection()
        if conn is None:
            return [], []
        events = _decoded(conn.execute(
            "SELECT id, ts, participant_id, game_id, scene_id, kind, data FROM events WHERE id > ? ORDER BY id"
            " LIMIT ?", (after_event, MAX_NEW_ROWS)), ("data",))
        episodes = _decoded(conn.execute(
            "SELECT id, game_id, mode, meta FROM episodes WHERE id > ? AND mode = 'p2p' AND ended_at IS NOT NULL"
            " ORDER BY id"
            " LIMIT ?", (after_episode, MAX_NEW_ROWS)), ("meta",))
        return events, episodes

    def timeline(self, participant_id: str) -> dict[str, Any] | None:
        """One participant's record: their row, events, finished scenes and episodes; None if unknown."""
        with self._lock:
            return self._timeline(participant_id)

    def _timeline(self, participant_id: str) -> dict[str, Any] | None:
        conn = self._connection()
        if conn is None:
            return None
        rows = _decoded(conn.execute(
            "SELECT participant_id, status, current_scene, completion_code, created_at, updated_at, url_params"
            " FROM participants WHERE participant_id = ?", (participant_id,)), ("url_params",))
        if not rows:
            return None
        events = _decoded(conn.execute(
            "SELECT id, ts, game_id, scene_id, kind, data FROM events WHERE participant_id = ? ORDER BY id LIMIT ?",
            (participant_id, MAX_TIMELINE_ROWS)), ("data",))
        scenes = _decoded(conn.execute(
            "SELECT scene_id, scene_index, started_at, ended_at, answers FROM scene_records"
            " WHERE participant_id = ? ORDER BY scene_index, id LIMIT ?", (participant_id, MAX_TIMELINE_ROWS)),
            ("answers",))
        # Server-mode episodes name their humans in `agents`; uploaded ones have the participant as source.
        episodes = _decoded(conn.execute(
            "SELECT id, scene_id, game_id, episode, mode, status, started_at, ended_at FROM episodes"
            " WHERE source = ? OR instr(agents, ?) > 0 ORDER BY id LIMIT ?",
            (participant_id, value_codec.dumps(participant_id), MAX_TIMELINE_ROWS)), ())
        return {"participant": rows[0], "events": events, "scenes": scenes, "episodes": episodes}


def _decoded(cursor: sqlite3.Cursor, json_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for record in cursor:
        row = dict(record)
        for column in json_columns:
            row[column] = value_codec.loads(row[column])
        out.append(row)
    return out
