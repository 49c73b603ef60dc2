"""The write half of :class:`~interactive_gym.server.storage.Storage`: one method per kind of row, each one transaction.

The SQL is written once, in SQLite's dialect; :mod:`~interactive_gym.server.storage_dialect` turns it into
PostgreSQL's where they differ (placeholders). Every method validates its arguments before any SQL runs, so a
bad value raises ``ValueError``/``TypeError`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from interactive_gym.server import storage_episodes, storage_visits, value_codec
from interactive_gym.server.storage_errors import StorageError
from interactive_gym.server.storage_postgres import PostgresConnection
from interactive_gym.server.storage_records import (
    EPISODE_STATUSES,
    BrowserVisitRow,
    EncodedStep,
    StepRecord,
    encode_step,
    optional_float,
    require_choice,
    require_dict,
    require_int,
    require_status_word,
    require_text,
)
from interactive_gym.server.storage_sqlite import SqliteConnection

__all__ = ["StorageWrites"]


class StorageWrites:
    """The write methods of an open database (``_conn``, ``transaction`` and the clock come from the subclass)."""

    _conn: SqliteConnection | PostgresConnection
    _clock: Callable[[], float]
    experiment_id: str | None

    def transaction(self) -> AbstractContextManager[None]:  # pragma: no cover - provided by Storage
        raise NotImplementedError

    def upsert_participant(
        self,
        participant_id: str,
        *,
        url_params: dict[str, Any] | None = None,
        status: str | None = None,
        completion_code: str | None = None,
        current_scene: str | None = None,
        resume_secret_hash: str | None = None,
    ) -> None:
        """Creates or updates a participant. ``None`` arguments leave the stored value unchanged.

        ``resume_secret_hash`` is a hash of the secret that lets a participant's page resume (never the secret).
        """
        require_text(participant_id, "participant_id")
        if status is not None:
            require_status_word(status)
        params = {
            "pid": participant_id,
            "exp": self._experiment(),
            "url": None if url_params is None else value_codec.dumps(require_dict(url_params, "url_params")),
            "status": status,
            "code": None if completion_code is None else require_text(completion_code, "completion_code"),
            "scene": None if current_scene is None else require_text(current_scene, "current_scene"),
            "secret": None
            if resume_secret_hash is None
            else require_text(resume_secret_hash, "resume_secret_hash"),
            "now": self._clock(),
        }
        with self.transaction():
            self._conn.execute(
                "INSERT INTO participants (participant_id, experiment_id, url_params, status, completion_code,"
                " current_scene, resume_secret_hash, created_at, updated_at)"
                " VALUES (:pid, :exp, COALESCE(:url, '{}'), COALESCE(:status, 'active'), :code, :scene, :secret,"
                " :now, :now)"
                " ON CONFLICT (participant_id) DO UPDATE SET"
                # Columns named with their table: PostgreSQL would read a bare name as ambiguous (it could be
                # the excluded row's).
                " url_params = COALESCE(:url, participants.url_params),"
                " status = COALESCE(:status, participants.status),"
                " completion_code = COALESCE(:code, participants.completion_code),"
                " current_scene = COALESCE(:scene, participants.current_scene),"
                " resume_secret_hash = COALESCE(:secret, participants.resume_secret_hash), updated_at = :now",
                params,
            )

    def record_scene(
        self,
        participant_id: str,
        scene_id: str,
        scene_index: int,
        started_at: float | None,
        ended_at: float | None,
        answers: dict[str, Any] | None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Stores one finished scene; a retry of the same (participant, scene, index) replaces it. Returns row id.

        An unknown participant is created (status ``active``) rather than losing the record.
        """
        require_text(participant_id, "participant_id")
        require_text(scene_id, "scene_id")
        params = (
            participant_id,
            scene_id,
            require_int(scene_index, "scene_index", minimum=0),
            optional_float(started_at, "started_at"),
            optional_float(ended_at, "ended_at"),
            value_codec.dumps(require_dict({} if answers is None else answers, "answers")),
            value_codec.dumps(require_dict({} if meta is None else meta, "meta")),
        )
        with self.transaction():
            self._ensure_participant(participant_id)
            return int(
                self._conn.execute(
                    "INSERT INTO scene_records (participant_id, scene_id, scene_index, started_at, ended_at,"
                    " answers, meta) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (participant_id, scene_id, scene_index) DO UPDATE SET"
                    " started_at = excluded.started_at, ended_at = excluded.ended_at,"
                    " answers = excluded.answers, meta = excluded.meta RETURNING id",
                    params,
                ).fetchone()[0]
            )

    def begin_episode(
        self,
        *,
        scene_id: str,
        game_id: str,
        episode: int,
        mode: str,
        source: str,
        seed: int | None,
        agents: dict[str, Any],
        env_hash: str | None = None,
        meta: dict[str, Any] | None = None,
        started_at: float | None = None,
    ) -> int:
        """Creates an ``in_progress`` episode and returns its id; the same key again returns the same id."""
        row = storage_episodes.episode_params(self._experiment(), scene_id, game_id, episode, mode, source, seed,
                                              agents, env_hash, meta)
        row.update(status="in_progress", started_at=self._now(started_at, "started_at"), ended_at=None)
        with self.transaction():
            self._conn.execute(storage_episodes.INSERT_EPISODE + " ON CONFLICT DO NOTHING", row)
            return storage_episodes.episode_id(self._conn, row)

    def end_episode(
        self,
        episode_id: int,
        *,
        status: str,
        meta: dict[str, Any] | None = None,
        ended_at: float | None = None,
        only_in_progress: bool = False,
    ) -> bool:
        """Marks an episode ``complete`` or ``partial``; ``meta`` keys are merged over the stored ones.

        With ``only_in_progress``, an episode that has ended already is left as it is: of two processes that
        close the same episode at once, exactly one gets ``True``.
        """
        episode_id = require_int(episode_id, "episode_id", minimum=1)
        require_choice(status, "status", EPISODE_STATUSES)
        meta = require_dict({} if meta is None else meta, "meta")
        ended = self._now(ended_at, "ended_at")
        condition = " AND status = 'in_progress'" if only_in_progress else ""
        with self.transaction():
            found = self._conn.execute("SELECT meta FROM episodes WHERE id = ?", (episode_id,)).fetchone()
            if found is None:
                raise StorageError(f"no episode with id {episode_id}")
            merged = {**value_codec.loads(found[0]), **meta}
            updated = self._conn.execute(
                "UPDATE episodes SET status = ?, ended_at = ?, meta = ? WHERE id = ?" + condition,
                (status, ended, value_codec.dumps(merged), episode_id),
            )
            return bool(updated.rowcount)

    def write_episode(
        self,
        *,
        scene_id: str,
        game_id: str,
        episode: int,
        mode: str,
        source: str,
        seed: int | None,
        agents: dict[str, Any],
        steps: Sequence[StepRecord | EncodedStep],
        status: str,
        env_hash: str | None = None,
        meta: dict[str, Any] | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        scene_index: int | None = None,
        attempt: int | None = None,
        received_at: float | None = None,
        client_started_at: float | None = None,
        client_ended_at: float | None = None,
        clock_offset: float | None = None,
    ) -> int:
        """Stores a whole uploaded episode in one transaction and returns its id.

        The key is (game, scene, episode, source); a browser upload also names its visit (``scene_index``)
        and ``attempt``, and no two rows share (source, scene_index, attempt, episode). What is stored under a
        key only grows (:func:`~interactive_gym.server.storage_records.upload_decision`): the same data again
        changes nothing; a complete or longer upload replaces a partial one; an older, shorter partial copy is
        ignored; different data is refused with :class:`EpisodeConflictError` and the stored episode is kept.

        ``started_at``/``ended_at`` are when the episode was played (server clock); ``received_at`` when the
        upload arrived; ``client_*`` and ``clock_offset`` the page's own readings and its offset estimate.
        """
        row = storage_episodes.episode_params(self._experiment(), scene_id, game_id, episode, mode, source, seed,
                                              agents, env_hash, meta)
        require_choice(status, "status", EPISODE_STATUSES)
        now = self._clock()
        row.update(
            status=status,
            started_at=now if started_at is None else optional_float(started_at, "started_at"),
            ended_at=now if ended_at is None else optional_float(ended_at, "ended_at"),
            scene_index=None if scene_index is None else require_int(scene_index, "scene_index", minimum=0),
            attempt=None if attempt is None else require_int(attempt, "attempt", minimum=1),
            received_at=optional_float(received_at, "received_at"),
            client_started_at=optional_float(client_started_at, "client_started_at"),
            client_ended_at=optional_float(client_ended_at, "client_ended_at"),
            clock_offset=optional_float(clock_offset, "clock_offset"),
        )
        if (row["scene_index"] is None) != (row["attempt"] is None):
            raise ValueError("scene_index and attempt go together: give both or neither")
        encoded = [s if isinstance(s, EncodedStep) else encode_step(s) for s in steps]
        with self.transaction():
            episode_id, inserted = storage_episodes.store_upload(self._conn, row, encoded)
            if inserted:
                self.insert_steps([(episode_id, step) for step in encoded])
        return episode_id

    def issue_browser_attempt(
        self,
        participant_id: str,
        scene_index: int,
        scene_id: str,
        seeds: Sequence[int],
        issued_at: float | None = None,
    ) -> BrowserVisitRow:
        """Numbers a new attempt (page load) of a browser-mode scene visit and returns the visit.

        The first attempt stores ``seeds``; later ones keep the stored seeds (the argument is then unused). The
        attempt's ``first_episode`` is the first episode with no complete upload yet. One transaction: once this
        returns, the seeds and the attempt survive a restart.
        """
        require_text(participant_id, "participant_id")
        require_text(scene_id, "scene_id")
        index = require_int(scene_index, "scene_index", minimum=0)
        seed_list = [require_int(seed, "seed", minimum=0, maximum=2**63 - 1) for seed in seeds]
        when = self._now(issued_at, "issued_at")
        with self.transaction():
            self._ensure_participant(participant_id)
            return storage_visits.issue_attempt(self._conn, participant_id, index, scene_id, seed_list, when)

    def browser_visit(self, participant_id: str, scene_index: int) -> BrowserVisitRow | None:
        """The stored visit (seeds, attempts, complete episodes), or ``None`` if no attempt was ever issued."""
        return storage_visits.read_visit(self._conn, participant_id, scene_index)

    def insert_steps(self, rows: Sequence[tuple[int, EncodedStep]]) -> None:
        """Inserts ``(episode_id, step)`` rows; a step already stored at the same ``t`` is replaced."""
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO steps (episode_id, t, observation, actions, rewards, terminated, truncated, info,"
                " keys, server_ts, client_ts, controllers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (episode_id, t) DO UPDATE SET observation = excluded.observation,"
                " actions = excluded.actions, rewards = excluded.rewards, terminated = excluded.terminated,"
                " truncated = excluded.truncated, info = excluded.info, keys = excluded.keys,"
                " server_ts = excluded.server_ts, client_ts = excluded.client_ts,"
                " controllers = excluded.controllers",
                [(episode_id, *step) for episode_id, step in rows],
            )

    def record_event(
        self,
        kind: str,
        data: Any = None,
        *,
        participant_id: str | None = None,
        game_id: str | None = None,
        scene_id: str | None = None,
        ts: float | None = None,
    ) -> int:
        """Appends one event (disconnect, pause, validation error, parity verdict...). Returns its id."""
        require_text(kind, "kind")
        for value, name in ((participant_id, "participant_id"), (game_id, "game_id"), (scene_id, "scene_id")):
            if value is not None:
                require_text(value, name)
        params = (self._now(ts, "ts"), participant_id, game_id, scene_id, kind, value_codec.dumps(data))
        with self.transaction():
            return int(
                self._conn.execute(
                    "INSERT INTO events (ts, participant_id, game_id, scene_id, kind, data)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    params,
                ).fetchone()[0]
            )

    def _ensure_participant(self, participant_id: str) -> None:
        now = self._clock()
        self._conn.execute(
            "INSERT INTO participants (participant_id, experiment_id, created_at, updated_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (participant_id, self._experiment(), now, now),
        )

    def _experiment(self) -> str:
        if self.experiment_id is None:
            raise StorageError(
                "this Storage was opened without experiment_id; pass experiment_id= to write rows"
            )
        return self.experiment_id

    def _now(self, value: float | None, name: str) -> float:
        return self._clock() if value is None else float(optional_float(value, name))  # type: ignore[arg-type]

