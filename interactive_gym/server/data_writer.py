"""Asyncio facade over :class:`~interactive_gym.server.storage.Storage`: one writer thread, group commit.

Database calls block (SQLite and PostgreSQL alike), so the server never makes them on the event loop. A
:class:`DataWriter` owns one thread (:class:`~interactive_gym.server.data_writer_loop.WriterLoop`) that owns
the only write connection. Awaited calls put an operation on a queue and return once the transaction holding
it has **committed**; that is the moment the server may acknowledge data to a client. The thread takes every
operation waiting in the queue and commits them together (group commit), so one fsync serves many writers;
each operation runs in its own savepoint, so a rejected write fails alone.

Server-stepped games call :meth:`DataWriter.append_steps` every tick without awaiting. Steps are encoded at
once (a snapshot: later mutation of an observation array changes nothing) and buffered; the thread commits
the buffer at the latest ``flush_interval_s`` after the oldest buffered step arrived, and earlier whenever
another operation commits. A process killed at any moment therefore loses at most the last
``flush_interval_s`` of buffered steps and nothing that was acknowledged.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from interactive_gym.server.data_writer_loop import WriterLoop, WriterStats
from interactive_gym.server.storage import Location, Storage, StorageError, Synchronous, location_of
from interactive_gym.server.storage_connection import describe
from interactive_gym.server.storage_records import (
    BrowserVisitRow,
    EpisodeConflictError,
    EpisodeRow,
    EventRow,
    ParticipantRow,
    StepRecord,
    encode_step,
    require_text,
)

__all__ = [
    "BrowserVisitRow",
    "DataWriter",
    "EpisodeConflictError",
    "StepRecord",
    "StorageError",
    "WriterStats",
]

_T = TypeVar("_T")


class DataWriter:
    """Durable, non-blocking writes of one experiment's data.

    Args:
        db_path: the experiment database: an SQLite file (parent folders are created; the only path ever
            opened) or a ``postgresql://`` URL of an existing database.
        experiment_id: stamped on participant and episode rows.
        flush_interval_s: longest time a buffered step waits before it is committed.
        synchronous: ``"FULL"`` (default) survives power loss, ``"NORMAL"`` survives process death only
            (SQLite ``synchronous``; PostgreSQL ``synchronous_commit`` on/off). See :mod:`~interactive_gym.server.storage`.
        clock: wall clock for timestamps the caller does not give (tests pass a fake).
    """

    def __init__(
        self,
        db_path: Path | str,
        *,
        experiment_id: str,
        flush_interval_s: float = 0.25,
        synchronous: Synchronous = "FULL",
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_text(experiment_id, "experiment_id")
        if (
            not isinstance(flush_interval_s, int | float)
            or not math.isfinite(flush_interval_s)
            or flush_interval_s <= 0
        ):
            raise ValueError(
                f"flush_interval_s must be a positive number of seconds, got {flush_interval_s!r}"
            )
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        self.location: Location = location_of(db_path)
        self.experiment_id = experiment_id
        self.flush_interval_s = float(flush_interval_s)
        self._synchronous = synchronous
        self._clock = clock
        self._loop = WriterLoop(self._open_storage, describe(self.location), self.flush_interval_s)
        self._open_episodes: set[int] = set()  # touched on the event loop only
        self._thread: threading.Thread | None = None
        self._state = "new"  # new -> running -> closed

    # ------------------------------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Opens (creating or migrating) the database in the writer thread; raises if that fails."""
        if self._state != "new":
            raise RuntimeError(f"DataWriter.start() called twice (state {self._state})")
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=self._loop.main, args=(ready,), name=f"DataWriter[{self.experiment_id}]", daemon=True
        )
        self._thread.start()
        try:
            await asyncio.wrap_future(ready)
        except BaseException:
            self._state = "closed"
            raise
        self._state = "running"

    async def close(self) -> None:
        """Commits everything queued or buffered, checkpoints the WAL and stops the thread. Idempotent."""
        if self._state != "running":
            self._state = "closed"
            return
        self._state = "closed"  # refuse new work from here on
        await asyncio.wrap_future(self._loop.stop())
        assert self._thread is not None
        await asyncio.to_thread(self._thread.join)
        self._raise_step_failure()

    @property
    def stats(self) -> WriterStats:
        """The writer thread's counters (commits, operations, steps committed and lost)."""
        return self._loop.stats

    @property
    def pending_steps(self) -> int:
        """Steps buffered but not yet committed (for back-pressure and monitoring)."""
        return self._loop.pending_steps

    # --------------------------------------------------------------------------------------------- writes

    async def upsert_participant(
        self,
        participant_id: str,
        *,
        url_params: dict[str, Any] | None = None,
        status: str | None = None,
        completion_code: str | None = None,
        current_scene: str | None = None,
        resume_secret_hash: str | None = None,
    ) -> None:
        """Creates or updates a participant (``None`` leaves a field unchanged); returns after commit."""
        kwargs = _snapshot(
            url_params=url_params,
            status=status,
            completion_code=completion_code,
            current_scene=current_scene,
            resume_secret_hash=resume_secret_hash,
        )
        await self._submit(lambda s: s.upsert_participant(participant_id, **kwargs))

    async def record_scene(
        self,
        participant_id: str,
        scene_id: str,
        scene_index: int,
        started_at: float | None,
        ended_at: float | None,
        answers: dict[str, Any] | None,
        meta: dict[str, Any] | None = None,
    ) -> int:
        """Stores a finished scene (a retry replaces it); returns its row id after commit."""
        answers, meta = copy.deepcopy(answers), copy.deepcopy(meta)
        return await self._submit(
            lambda s: s.record_scene(
                participant_id, scene_id, scene_index, started_at, ended_at, answers, meta
            )
        )

    async def begin_episode(
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
    ) -> int:
        """Creates an ``in_progress`` episode for :meth:`append_steps`; returns its id after commit."""
        kwargs = _snapshot(
            scene_id=scene_id,
            game_id=game_id,
            episode=episode,
            mode=mode,
            source=source,
            seed=seed,
            agents=agents,
            env_hash=env_hash,
            meta=meta,
        )
        episode_id: int = await self._submit(lambda s: s.begin_episode(**kwargs))
        self._open_episodes.add(episode_id)
        return episode_id

    def append_steps(self, episode_id: int, steps: Sequence[StepRecord]) -> None:
        """Buffers steps of an open episode; they are committed within ``flush_interval_s``. Never blocks.

        Raises:
            ValueError: the episode was not begun by this writer or is already ended, or a step is invalid
                (nothing of the call is buffered then).
            CodecError: a step holds a value the codec cannot store.
        """
        self._require_running()
        if episode_id not in self._open_episodes:
            raise ValueError(
                f"episode {episode_id!r} is not open in this DataWriter: call begin_episode() first; "
                "end_episode() closes it"
            )
        encoded = [(episode_id, encode_step(step)) for step in steps]
        if not encoded:
            return
        self._loop.buffer(encoded)

    async def end_episode(self, episode_id: int, *, status: str, meta: dict[str, Any] | None = None) -> None:
        """Commits the episode's buffered steps, then marks it ``complete`` or ``partial`` (meta merged)."""
        self._open_episodes.discard(episode_id)
        meta = copy.deepcopy(meta)
        await self._submit(lambda s: s.end_episode(episode_id, status=status, meta=meta))
        self._raise_step_failure()

    async def write_episode(
        self,
        *,
        scene_id: str,
        game_id: str,
        episode: int,
        mode: str,
        source: str,
        seed: int | None,
        agents: dict[str, Any],
        steps: Sequence[StepRecord],
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
        """Stores an uploaded episode and its steps in one transaction; returns its id after commit.

        A retry never duplicates and the stored episode only grows (see ``Storage.write_episode``); an upload
        that would replace different data raises :class:`EpisodeConflictError` and changes nothing.

        The steps are encoded in the writer thread (keeping the event loop free for large uploads), so the
        caller must not mutate them after the call; parsed upload payloads are never mutated anyway.
        """
        kwargs = _snapshot(
            scene_id=scene_id,
            game_id=game_id,
            episode=episode,
            mode=mode,
            source=source,
            seed=seed,
            agents=agents,
            status=status,
            env_hash=env_hash,
            meta=meta,
            started_at=started_at,
            ended_at=ended_at,
            scene_index=scene_index,
            attempt=attempt,
            received_at=received_at,
            client_started_at=client_started_at,
            client_ended_at=client_ended_at,
            clock_offset=clock_offset,
        )
        step_list = list(steps)
        return await self._submit(lambda s: s.write_episode(steps=step_list, **kwargs))

    async def issue_browser_attempt(
        self, participant_id: str, scene_index: int, scene_id: str, seeds: Sequence[int], issued_at: float
    ) -> BrowserVisitRow:
        """Numbers a new attempt of a browser-scene visit (storing its seeds the first time); returns the
        visit after commit, so the seeds survive a restart before any page sees them."""
        seed_list = [int(seed) for seed in seeds]
        return await self._submit(
            lambda s: s.issue_browser_attempt(participant_id, scene_index, scene_id, seed_list, issued_at)
        )

    async def browser_visit(self, participant_id: str, scene_index: int) -> BrowserVisitRow | None:
        """Reads a stored visit through the write connection (so it sees every committed write)."""
        return await self._submit(lambda s: s.browser_visit(participant_id, scene_index))

    async def stored_participant(self, participant_id: str) -> tuple[ParticipantRow | None, list[EventRow]]:
        """A participant's row and their ``condition_assigned`` events, read through the write connection (so
        another worker's committed writes are seen): what a worker needs to take them over."""
        return await self._submit(lambda s: (s.participant(participant_id),
                                             s.events("condition_assigned", participant_id=participant_id)))

    async def close_left_episode(self, episode_id: int, meta: dict[str, Any]) -> bool:
        """Marks an ``in_progress`` episode another process left behind ``partial``; ``False`` if it had ended
        (another worker closed it first)."""
        meta = copy.deepcopy(meta)
        return await self._submit(lambda s: s.end_episode(episode_id, status="partial", meta=meta,
                                                          only_in_progress=True))

    async def scene_episodes(self, scene_id: str) -> list[EpisodeRow]:
        """The stored episodes of one scene (every game of it), read through the write connection."""
        return await self._submit(lambda s: s.episodes(scene_id=scene_id))

    async def record_event(
        self,
        kind: str,
        data: Any = None,
        *,
        participant_id: str | None = None,
        game_id: str | None = None,
        scene_id: str | None = None,
    ) -> int:
        """Appends an event row (disconnect, pause, validation error, parity verdict...); returns its id."""
        data = copy.deepcopy(data)
        return await self._submit(
            lambda s: s.record_event(
                kind, data, participant_id=participant_id, game_id=game_id, scene_id=scene_id
            )
        )

    async def flush(self) -> None:
        """Returns once every step buffered before the call is committed.

        Raises:
            StorageError: buffered steps could not be written since the last check (they are counted in
                ``stats.steps_lost`` and logged).
        """
        await self._submit(lambda s: None)
        self._raise_step_failure()

    # ---------------------------------------------------------------------------------------- event loop

    async def _submit(self, run: Callable[[Storage], _T]) -> _T:
        self._require_running()
        future: concurrent.futures.Future[_T] = self._loop.submit(run)
        # If the awaiting task is cancelled the write still happens; only the acknowledgement is lost.
        return await asyncio.wrap_future(future)

    def _require_running(self) -> None:
        if self._state != "running":
            hint = "call await start() first" if self._state == "new" else "it was closed"
            raise RuntimeError(f"DataWriter for {describe(self.location)} is not running ({hint})")

    def _raise_step_failure(self) -> None:
        failure = self._loop.take_step_failure()
        if failure is not None:
            raise failure

    def _open_storage(self) -> Storage:
        # Runs in the writer thread: the connection is used by that thread only.
        return Storage(self.location, experiment_id=self.experiment_id, synchronous=self._synchronous,
                       clock=self._clock)

def _snapshot(**kwargs: Any) -> dict[str, Any]:
    # Deep copy on the event loop: the thread encodes later, and game code may keep mutating its dicts.
    return copy.deepcopy(kwargs)


