"""Trust but verify: the server replays every uploaded in-browser episode and stores a verdict beside it.

In browser and p2p mode the page steps the environment, so the page also decides rewards and when an
episode is over; an edited page can upload a one-step "terminated" episode or inflate its rewards. The
upload is validated for shape (``upload_validation.py``) and stored either way (nothing is lost, the
participant is never blocked); this module then re-runs the recorded actions in CPython from the
server-chosen seed (``interactive_gym/replay.py``) and records an ``events`` row of kind
``replay_verdict`` saying whether every observation, reward, termination and truncation matched, and if
not, the first difference. A mismatch is also logged as a warning.

Replays run in a separate process (:class:`~interactive_gym.replay_worker.HashSeededPool`): started with
the browser's ``PYTHONHASHSEED``, and off the event loop's core (a replay is CPU-bound Python; a thread
would hold the GIL and delay game ticks). Work is bounded: at most ``max_pending`` replays are queued or
running; an upload arriving when that many are is recorded as not verified (``status: "busy"``) at once,
never queued without limit and never waited for.

Verdict event (``data``)::

    {"episode": <episode_key>, "mode": "browser", "submitted_at": unix seconds, "status": "match" | "mismatch" | "busy" | "error",
     "verified": bool, "match": bool | None, "steps": 450, "replayed": 450, "total_mismatches": 0,
     "first_mismatch": {"t", "what", "agent", "recorded", "replayed"} | None,
     "error": str | None, "wait_s": float, "replay_s": float | None, "hash_seed": "0" | None}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from interactive_gym.replay_worker import EnvSource, HashSeededPool, JobResult, ReplayJob, run_job

log = logging.getLogger("interactive_gym.verifier")

VERDICT_EVENT = "replay_verdict"
REPLAY_FIELDS = ("t", "observation", "actions", "rewards", "terminated", "truncated")
MODES = ("browser", "p2p")


@dataclass
class VerifierStats:
    """Counters since start (they only grow)."""

    submitted: int = 0
    matched: int = 0
    mismatched: int = 0
    busy: int = 0
    errors: int = 0


class EpisodeVerifier:
    """Replays uploaded episodes in a worker process and records a verdict per episode.

    Call :meth:`submit` on the event loop after the upload is stored (and acknowledged); call
    :meth:`close` at shutdown *before* closing the writer, so pending verdicts are still written.

    Args:
        writer: The experiment's ``DataWriter`` (only ``record_event`` is used).
        max_pending: Most replays queued or running at once; more uploads are recorded as ``busy``.
        workers: Replay processes (one keeps one core for the event loop on a small machine).
        pool_factory: Builds the pool (tests pass a smaller or a failing one).
        close_timeout_s: How long :meth:`close` waits for running replays before giving them up.
    """

    def __init__(
        self,
        writer: Any,
        *,
        max_pending: int = 4,
        workers: int = 1,
        pool_factory: Callable[[int], Any] = HashSeededPool,
        close_timeout_s: float = 30.0,
    ) -> None:
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be a positive integer, got {max_pending!r}")
        self.writer = writer
        self.max_pending = max_pending
        self.workers = workers
        self.stats = VerifierStats()
        self._pool_factory = pool_factory
        self._close_timeout_s = close_timeout_s
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._pending = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def pending(self) -> int:
        """Replays queued or running now."""
        return self._pending

    def submit(self, scene: Any, participant_id: str, episode_key: Mapping[str, Any], upload: Any, *,
               mode: str = "browser") -> None:
        """Schedules the replay of a stored upload; returns at once, the verdict is recorded later.

        Args:
            scene: The upload's ``GymScene`` (the server's own env factory, kwargs and step limit).
            participant_id: Who uploaded it (from the server's session).
            episode_key: Identifies the stored episode row, e.g. ``{"scene_id", "game_id", "episode",
                "source"}``; stored in the verdict as given (``game_id`` also goes in the event's column).
            upload: The validated ``EpisodeUpload`` (``seed`` and ``steps`` are used).
            mode: ``"browser"`` or ``"p2p"`` (p2p peers seed Python's global ``random`` at each reset).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        key = dict(episode_key)
        where = {"participant_id": participant_id, "scene_id": upload.scene_id,
                 "game_id": key.get("game_id") if isinstance(key.get("game_id"), str) else None}
        # A retry of an upload overwrites the stored episode, so each upload gets its own verdict; the
        # latest submitted_at is the one that describes what is stored.
        base = {"episode": key, "mode": mode, "submitted_at": time.time()}
        if self._closed:
            log.warning("episode %s of %s not verified: the verifier is closed", key, participant_id)
            return
        self.stats.submitted += 1
        if self._pending >= self.max_pending:
            self.stats.busy += 1
            log.warning("episode %s of %s not verified: busy (%d replays pending)", key, participant_id,
                        self._pending)
            self._spawn(self._record({**base, **_unverified("busy", "not verified: busy")}, where))
            return
        try:
            job = _job_for(scene, upload, mode)
        except Exception as exc:  # noqa: BLE001 - a scene we cannot name is reported, never raised to the upload
            self.stats.errors += 1
            self._spawn(self._record({**base, **_unverified("error", f"{type(exc).__name__}: {exc}")}, where))
            return
        self._pending += 1
        self._spawn(self._verify(job, base, where, time.monotonic()))

    async def close(self) -> None:
        """Waits (up to ``close_timeout_s``) for pending verdicts, then stops the worker. Idempotent."""
        self._closed = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=self._close_timeout_s)
            for task in late:
                task.cancel()
            if late:
                log.warning("%d replays were still running at shutdown: not verified", len(late))
                await asyncio.wait(late)
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, False)

    # -- internals ------------------------------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _get_pool(self) -> Any:
        async with self._pool_lock:
            if self._pool is None:
                # Starting a worker process forks and execs: done in a thread, off the event loop.
                self._pool = await asyncio.to_thread(self._pool_factory, self.workers)
            return self._pool

    async def _verify(self, job: ReplayJob, base: dict[str, Any], where: dict[str, Any], queued_at: float) -> None:
        try:
            pool = await self._get_pool()
            result: JobResult = await asyncio.wrap_future(pool.submit(run_job, job))
            data = {**base, **_verdict_data(result), "wait_s": round(time.monotonic() - queued_at, 6)}
        except asyncio.CancelledError:
            data = {**base, **_unverified("error", "not verified: the server shut down first")}
        except Exception as exc:  # noqa: BLE001 - a crashed worker is a missing verdict, not a server error
            log.exception("replay of episode %s failed", base["episode"])
            data = {**base, **_unverified("error", f"{type(exc).__name__}: {exc}")}
        finally:
            self._pending -= 1
        self._count(data)
        if data["status"] == "mismatch":
            log.warning("participant %s scene %s episode %s: the upload does not replay: %s (%d mismatches)",
                        where["participant_id"], where["scene_id"], base["episode"], data["first_mismatch"],
                        data["total_mismatches"])
        await self._record(data, where)

    def _count(self, data: Mapping[str, Any]) -> None:
        status = data["status"]
        if status == "match":
            self.stats.matched += 1
        elif status == "mismatch":
            self.stats.mismatched += 1
        else:
            self.stats.errors += 1

    async def _record(self, data: dict[str, Any], where: dict[str, Any]) -> None:
        try:
            await self.writer.record_event(VERDICT_EVENT, data, **where)
        except Exception:  # noqa: BLE001 - the verdict is lost, the episode is not; say so
            log.exception("could not store the replay verdict %s", data)


def _job_for(scene: Any, upload: Any, mode: str) -> ReplayJob:
    from interactive_gym.browser.refs import function_ref

    # The server's own scene decides the environment: nothing from the page but actions and outcomes.
    source = EnvSource(factory=function_ref(scene.env_creator, "env_creator"), env_kwargs=dict(scene.env_kwargs),
                       max_steps=scene.max_steps)
    steps = [{f: row.get(f) for f in REPLAY_FIELDS} for row in upload.steps]
    return ReplayJob(source=source, seed=int(upload.seed), steps=steps, seed_global_random=mode == "p2p")


def _unverified(status: str, error: str) -> dict[str, Any]:
    return {"status": status, "verified": False, "match": None, "steps": None, "replayed": None,
            "total_mismatches": None, "first_mismatch": None, "error": error, "wait_s": None,
            "replay_s": None, "hash_seed": None}


def _verdict_data(result: JobResult) -> dict[str, Any]:
    if result.verdict is None:
        data = _unverified("error", result.error or "the environment could not be built")
        data.update(replay_s=round(result.replay_s, 6), hash_seed=result.hash_seed)
        return data
    verdict = result.verdict.to_dict()
    return {"status": "match" if verdict["match"] else "mismatch", "verified": True, "match": verdict["match"],
            "steps": verdict["steps"], "replayed": verdict["replayed"],
            "total_mismatches": verdict["total_mismatches"], "first_mismatch": verdict["first_mismatch"],
            "error": None, "replay_s": round(result.replay_s, 6), "hash_seed": result.hash_seed}
