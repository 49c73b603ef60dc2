"""SQL for browser-mode scene visits and their attempts (called by :class:`~interactive_gym.server.storage.Storage`
inside its transactions; never on its own).

A *visit* is a participant's pass through a browser-mode scene: ``(participant_id, scene_index)``, where
``scene_index`` is the scene's place in that participant's sequence, so each repetition of a scene is its own
visit. Its seeds are chosen once and stored here before any page sees them. Every page load of the visit is an
*attempt*, numbered 1, 2, ... by the server when it sends the scene's config.
"""

from __future__ import annotations

import json

from interactive_gym.server.storage_connection import Connection
from interactive_gym.server.storage_errors import StorageError
from interactive_gym.server.storage_records import AttemptRow, BrowserVisitRow

__all__ = ["issue_attempt", "read_visit"]


def issue_attempt(
    conn: Connection,
    participant_id: str,
    scene_index: int,
    scene_id: str,
    seeds: list[int],
    issued_at: float,
) -> BrowserVisitRow:
    """Creates the visit if new (storing ``seeds``), numbers the next attempt and returns the visit after it."""
    conn.execute(
        "INSERT INTO browser_visits (participant_id, scene_index, scene_id, seeds, attempts, created_at)"
        " VALUES (?, ?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
        (participant_id, scene_index, scene_id, json.dumps(seeds), issued_at),
    )
    stored_scene, stored_seeds = conn.execute(
        "SELECT scene_id, seeds FROM browser_visits WHERE participant_id = ? AND scene_index = ?",
        (participant_id, scene_index),
    ).fetchone()
    if stored_scene != scene_id:
        raise StorageError(
            f"participant {participant_id!r} visited scene {stored_scene!r} at index {scene_index}, not {scene_id!r}"
        )
    if len(json.loads(stored_seeds)) != len(seeds):
        raise StorageError(
            f"scene {scene_id!r} now has {len(seeds)} episodes but participant {participant_id!r}'s visit was "
            f"started with {len(json.loads(stored_seeds))}"
        )
    (attempt,) = conn.execute(
        "UPDATE browser_visits SET attempts = attempts + 1 WHERE participant_id = ? AND scene_index = ?"
        " RETURNING attempts",
        (participant_id, scene_index),
    ).fetchone()
    complete = _complete_episodes(conn, participant_id, scene_index)
    first = next((e for e in range(len(seeds)) if e not in complete), len(seeds))
    conn.execute(
        "INSERT INTO browser_attempts (participant_id, scene_index, attempt, issued_at, first_episode)"
        " VALUES (?, ?, ?, ?, ?)",
        (participant_id, scene_index, attempt, issued_at, first),
    )
    visit = read_visit(conn, participant_id, scene_index)
    assert visit is not None
    return visit


def read_visit(conn: Connection, participant_id: str, scene_index: int) -> BrowserVisitRow | None:
    """The visit with its attempts (in order) and complete episodes, or ``None``."""
    found = conn.execute(
        "SELECT scene_id, seeds FROM browser_visits WHERE participant_id = ? AND scene_index = ?",
        (participant_id, scene_index),
    ).fetchone()
    if found is None:
        return None
    attempts = tuple(
        AttemptRow(attempt=a, issued_at=t, first_episode=f)
        for a, t, f in conn.execute(
            "SELECT attempt, issued_at, first_episode FROM browser_attempts"
            " WHERE participant_id = ? AND scene_index = ? ORDER BY attempt",
            (participant_id, scene_index),
        )
    )
    return BrowserVisitRow(
        participant_id=participant_id,
        scene_index=scene_index,
        scene_id=found[0],
        seeds=tuple(int(s) for s in json.loads(found[1])),
        attempts=attempts,
        complete_episodes=_complete_episodes(conn, participant_id, scene_index),
    )


def _complete_episodes(conn: Connection, participant_id: str, scene_index: int) -> frozenset[int]:
    return frozenset(
        row[0]
        for row in conn.execute(
            "SELECT DISTINCT episode FROM episodes WHERE source = ? AND scene_index = ? AND attempt IS NOT NULL"
            " AND status = 'complete'",
            (participant_id, scene_index),
        )
    )
