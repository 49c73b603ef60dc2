"""The dashboard's reads of the experiment database: rows added since the last push, one participant's
timeline. One read-only connection to either engine (SQLite in WAL mode or PostgreSQL: neither blocks the
writer); callers run these in a thread.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from interactive_gym.server import value_codec
from interactive_gym.server.storage_connection import Connection, Location, connect, location_of

MAX_NEW_ROWS = 500  # per table per push: a burst is caught up over the next pushes
MAX_TIMELINE_ROWS = 2000


class StudyReader:
    """A read-only connection to one experiment database, opened on first use (the file may not exist yet).

    Args:
        path: The database file or ``postgresql://`` URL.
    """

    def __init__(self, path: Location) -> None:
        self.path = location_of(path)
        self._conn: Connection | None = None
        # Calls come from worker threads (asyncio.to_thread), one connection serves them in turn.
        self._lock = threading.Lock()

    def _connection(self) -> Connection | None:
        if self._conn is None:
            if isinstance(self.path, Path) and not self.path.is_file():
                return None  # not created yet (the writer creates it at start-up)
            self._conn = connect(self.path, readonly=True, any_thread=True)
        return self._conn

    def _read(self, sql: str, params: tuple[Any, ...], json_columns: tuple[str, ...]) -> list[dict[str, Any]]:
        conn = self._connection()
        assert conn is not None  # callers checked
        try:
            return _decoded(conn.execute(sql, params), json_columns)
        except conn.errors:
            # A lost PostgreSQL connection stays lost: drop it so the next call opens a new one; the caller
            # (the dashboard's push loop or route) reports this error.
            self._conn = None
            conn.close()
            raise

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
        events = self._read(
            "SELECT id, ts, participant_id, game_id, scene_id, kind, data FROM events WHERE id > ? ORDER BY id"
            " LIMIT ?", (after_event, MAX_NEW_ROWS), ("data",))
        episodes = self._read(
            "SELECT id, game_id, mode, meta FROM episodes WHERE id > ? AND mode = 'p2p' AND ended_at IS NOT NULL"
            " ORDER BY id"
            " LIMIT ?", (after_episode, MAX_NEW_ROWS), ("meta",))
        return events, episodes

    def timeline(self, participant_id: str) -> dict[str, Any] | None:
        """One participant's record: their row, events, finished scenes and episodes; None if unknown."""
        with self._lock:
            return self._timeline(participant_id)

    def _timeline(self, participant_id: str) -> dict[str, Any] | None:
        conn = self._connection()
        if conn is None:
            return None
        rows = self._read(
            "SELECT participant_id, status, current_scene, completion_code, created_at, updated_at, url_params"
            " FROM participants WHERE participant_id = ?", (participant_id,), ("url_params",))
        if not rows:
            return None
        events = self._read(
            "SELECT id, ts, game_id, scene_id, kind, data FROM events WHERE participant_id = ? ORDER BY id LIMIT ?",
            (participant_id, MAX_TIMELINE_ROWS), ("data",))
        scenes = self._read(
            "SELECT scene_id, scene_index, started_at, ended_at, answers FROM scene_records"
            " WHERE participant_id = ? ORDER BY scene_index, id LIMIT ?", (participant_id, MAX_TIMELINE_ROWS),
            ("answers",))
        # Server-mode episodes name their humans in `agents`; uploaded ones have the participant as source.
        episodes = self._read(
            "SELECT id, scene_id, game_id, episode, mode, status, started_at, ended_at FROM episodes"
            " WHERE source = ? OR instr(agents, ?) > 0 ORDER BY id LIMIT ?",
            (participant_id, value_codec.dumps(participant_id), MAX_TIMELINE_ROWS), ())
        return {"participant": rows[0], "events": events, "scenes": scenes, "episodes": episodes}


def _decoded(cursor: Any, json_columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The cursor's rows as dicts by column name (a DB-API cursor of either engine), JSON columns decoded."""
    names = [column[0] for column in cursor.description]
    out = []
    for values in cursor:
        row = dict(zip(names, values, strict=True))
        for column in json_columns:
            row[column] = value_codec.loads(row[column])
        out.append(row)
    return out
