"""Reading an experiment database back: stored rows decoded into the record types of ``storage_records``.

:class:`StorageReads` is the read half of :class:`~interactive_gym.server.storage.Storage` (which adds the
connection, transactions and writes); export, replay, the dashboard and the tests read through it. Values stored
as ``value_codec`` JSON come back exactly (numpy arrays, non-finite floats).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from interactive_gym.server import value_codec
from interactive_gym.server.storage_connection import Connection
from interactive_gym.server.storage_records import (
    EpisodeRow,
    EventRow,
    ParticipantRow,
    SceneRecordRow,
    StepRecord,
)

STEP_JSON_COLUMNS = ("observation", "actions", "rewards", "terminated", "truncated", "info", "keys")


_PARTICIPANT_COLUMNS = ("participant_id, experiment_id, url_params, status, completion_code, current_scene, created_at,"
                        " updated_at, resume_secret_hash")


class StorageReads:
    """The read queries of an open database (``_conn``, set by the subclass that opens it)."""

    _conn: Connection

    def participants(self) -> list[ParticipantRow]:
        """All participants, oldest first."""
        sql = f"SELECT {_PARTICIPANT_COLUMNS} FROM participants ORDER BY created_at, participant_id"
        return [ParticipantRow(**row) for row in self._decoded_rows(sql, (), ("url_params",))]

    def participant(self, participant_id: str) -> ParticipantRow | None:
        """One participant by id, or ``None``."""
        sql = f"SELECT {_PARTICIPANT_COLUMNS} FROM participants" + _where(participant_id=participant_id)
        rows = self._decoded_rows(sql, {"participant_id": participant_id}, ("url_params",))
        return next((ParticipantRow(**row) for row in rows), None)

    def scene_records(self, participant_id: str | None = None) -> list[SceneRecordRow]:
        """Finished scenes (of one participant, or all), in participant and scene order."""
        sql = (
            "SELECT id, participant_id, scene_id, scene_index, started_at, ended_at, answers, meta"
            " FROM scene_records" + _where(participant_id=participant_id)
            + " ORDER BY participant_id, scene_index, id"
        )
        rows = self._decoded_rows(sql, {"participant_id": participant_id}, ("answers", "meta"))
        return [SceneRecordRow(**row) for row in rows]

    def episodes(self, *, game_id: str | None = None, episode_id: int | None = None,
                 scene_id: str | None = None) -> list[EpisodeRow]:
        """Episodes in id order, optionally only one game's, one id's or one scene's, with their step counts."""
        sql = (
            "SELECT id, experiment_id, scene_id, game_id, episode, mode, source, seed, agents, status, started_at,"
            " ended_at, env_hash, meta, (SELECT COUNT(*) FROM steps WHERE episode_id = episodes.id) AS step_count,"
            " scene_index, attempt, received_at, client_started_at, client_ended_at, clock_offset, content_hash"
            " FROM episodes" + _where(game_id=game_id, id=episode_id, scene_id=scene_id) + " ORDER BY id"
        )
        rows = self._decoded_rows(sql, {"game_id": game_id, "id": episode_id, "scene_id": scene_id},
                                  ("agents", "meta"))
        return [EpisodeRow(**row) for row in rows]

    def episode(self, episode_id: int) -> EpisodeRow | None:
        """One episode by id, or ``None``."""
        found = self.episodes(episode_id=episode_id)
        return found[0] if found else None

    def steps(self, episode_id: int) -> list[StepRecord]:
        """All stored steps of one episode, in ``t`` order, with values decoded."""
        return [step for _, step in self.iter_steps(episode_id)]

    def iter_steps(self, episode_id: int | None = None) -> Iterator[tuple[int, StepRecord]]:
        """Yields ``(episode_id, step)`` in (episode, t) order, for one episode or all; streams, low memory."""
        sql = (
            "SELECT episode_id, t, observation, actions, rewards, terminated, truncated, info, keys, server_ts,"
            " client_ts, controllers FROM steps" + _where(episode_id=episode_id) + " ORDER BY episode_id, t"
        )
        for row in self._decoded_rows(sql, {"episode_id": episode_id}, STEP_JSON_COLUMNS):
            controllers = row.pop("controllers")
            yield row.pop("episode_id"), StepRecord(
                **row, controllers=None if controllers is None else value_codec.loads(controllers))

    def events(self, kind: str | None = None, participant_id: str | None = None) -> list[EventRow]:
        """Events (of one kind and/or one participant, or all) in the order they were recorded."""
        sql = ("SELECT id, ts, participant_id, game_id, scene_id, kind, data FROM events"
               + _where(kind=kind, participant_id=participant_id) + " ORDER BY id")
        rows = self._decoded_rows(sql, {"kind": kind, "participant_id": participant_id}, ("data",))
        return [EventRow(**row) for row in rows]

    def _decoded_rows(
        self, sql: str, params: Sequence[Any] | dict[str, Any], json_columns: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        with self._conn.streamed(sql, params) as cursor:
            names = [column[0] for column in cursor.description]
            for values in cursor:
                row = dict(zip(names, values, strict=True))
                for column in json_columns:
                    row[column] = value_codec.loads(row[column])
                yield row


def _where(**filters: object) -> str:
    """``WHERE column = :column AND ...`` for the filters that are not ``None`` (``""`` if none is set).

    Built per call instead of ``:x IS NULL OR column = :x``, which PostgreSQL refuses (it cannot type a bare
    NULL parameter) and which keeps SQLite from using an index.
    """
    terms = [f"{column} = :{column}" for column, value in filters.items() if value is not None]
    return " WHERE " + " AND ".join(terms) if terms else ""
