"""Replays run in a separate Python process started with the browser's hash seed.

Two reasons for a process rather than a thread or the caller's interpreter:

* ``PYTHONHASHSEED`` only takes effect when an interpreter starts. Every peer's Pyodide runs with
  :data:`~interactive_gym.envs.determinism.PYTHON_HASH_SEED`, so an environment that iterates a ``set`` of
  strings walks it in the same order in every browser; a replay must walk it in that order too, or it
  reports a mismatch the browser never had.
* Environments are CPU-bound Python. A thread would hold the GIL for most of a replay (a 450-step demo
  episode costs tens of milliseconds) and delay the server's game ticks; a process runs on another core.

:class:`HashSeededPool` is a ``ProcessPoolExecutor`` (``spawn`` start method: a fresh interpreter, never a
fork of a server with threads) whose workers are started with that hash seed. :class:`ReplayJob` is what
crosses to the worker: plain data only (an environment named by reference, or by experiment file and
scene), because the worker imports the environment itself. :func:`run_job` is what the worker runs.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.envs.determinism import PYTHON_HASH_SEED
from interactive_gym.replay import ReplayVerdict, replay_episode

# os.environ belongs to the whole process: the lock keeps two pools that start workers at the same moment
# from restoring each other's value. It guards a process-global resource; it holds no state of its own.
_ENVIRON_LOCK = threading.Lock()


class EnvSourceError(ValueError):
    """The environment of a replay job cannot be found or built; the message says what to pass."""


@dataclass(frozen=True)
class EnvSource:
    """Where a replay gets its environment: by reference, or from a scene of an experiment file.

    Attributes:
        factory: ``"module:function"`` of the env factory (browser and p2p episodes record it).
        env_kwargs: Its keyword arguments.
        max_steps: The scene's step limit (``None``: the recording's length decides).
        experiment: An experiment file to import first (its folder goes on ``sys.path``).
        scene_id: Take factory, kwargs and limit from this ``GymScene`` of ``experiment`` instead (server
            mode records no factory; its scene may even use a lambda).
    """

    factory: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    max_steps: int | None = None
    experiment: str | None = None
    scene_id: str | None = None


@dataclass(frozen=True)
class ReplayJob:
    """One episode to replay: environment, seed and the recorded rows (see :func:`replay_episode`)."""

    source: EnvSource
    seed: int
    steps: list[dict[str, Any]]
    seed_global_random: bool = False


@dataclass(frozen=True)
class JobResult:
    """What the worker sends back.

    Attributes:
        verdict: The replay's verdict, or ``None`` if the environment could not be built.
        error: Why not (an :class:`EnvSourceError` message).
        replay_s: Seconds the worker spent (import, build, replay).
        hash_seed: ``PYTHONHASHSEED`` of the worker's interpreter.
    """

    verdict: ReplayVerdict | None
    error: str | None
    replay_s: float
    hash_seed: str | None


def resolve_env(source: EnvSource) -> tuple[Callable[..., Any], dict[str, Any], int | None]:
    """The env factory, kwargs and step limit of ``source``.

    Raises:
        EnvSourceError: if the experiment, scene or factory cannot be loaded.
    """
    from interactive_gym.browser.refs import RefError, resolve_ref
    from interactive_gym.experiment_loader import (
        ExperimentFileError,
        import_experiment_module,
        load_experiment,
    )
    from interactive_gym.scenes.gym_scene import GymScene

    try:
        if source.scene_id is not None:
            if source.experiment is None:
                raise EnvSourceError(f"scene {source.scene_id!r} needs its experiment file (pass --experiment)")
            config = load_experiment(source.experiment)
            scene = config.stager.scene(source.scene_id) if config.stager is not None else None
            if not isinstance(scene, GymScene):
                raise EnvSourceError(f"{source.experiment} has no game scene {source.scene_id!r}")
            return scene.env_creator, dict(scene.env_kwargs), scene.max_steps
        if source.factory is None:
            raise EnvSourceError("no environment factory recorded; pass the experiment file")
        if source.experiment is not None:
            import_experiment_module(source.experiment)
        return resolve_ref(source.factory), dict(source.env_kwargs), source.max_steps
    except (ExperimentFileError, RefError) as exc:
        raise EnvSourceError(str(exc)) from None


def run_job(job: ReplayJob) -> JobResult:
    """Replays ``job`` (in a worker of :class:`HashSeededPool`, or inline in tests)."""
    started = time.perf_counter()
    try:
        factory, kwargs, max_steps = resolve_env(job.source)
    except EnvSourceError as exc:
        return JobResult(None, str(exc), time.perf_counter() - started, os.environ.get("PYTHONHASHSEED"))
    verdict = replay_episode(factory, kwargs, job.seed, job.steps, max_steps,
                             seed_global_random=job.seed_global_random)
    return JobResult(verdict, None, time.perf_counter() - started, os.environ.get("PYTHONHASHSEED"))


def worker_hash(text: str) -> tuple[str | None, int]:
    """``(PYTHONHASHSEED, hash(text))`` as seen inside a worker: proof of the worker's hash seed."""
    return os.environ.get("PYTHONHASHSEED"), hash(text)


@contextmanager
def _hash_seed_environ(seed: str) -> Iterator[None]:
    # multiprocessing gives a spawned child the parent's environment and has no per-child override, so the
    # variable is set for the moment the child is started and restored at once.
    with _ENVIRON_LOCK:
        before = os.environ.get("PYTHONHASHSEED")
        os.environ["PYTHONHASHSEED"] = seed
        try:
            yield
        finally:
            if before is None:
                del os.environ["PYTHONHASHSEED"]
            else:
                os.environ["PYTHONHASHSEED"] = before


class HashSeededPool:
    """A process pool whose worker interpreters run with ``PYTHONHASHSEED`` = ``hash_seed``.

    Every worker is started in the constructor (one probe task per worker, submitted while the variable is
    set): a ``ProcessPoolExecutor`` starts a worker only when a task finds none idle, and never again once
    it has ``workers`` of them, so no later start can miss the variable. A worker that dies breaks the
    executor; the next :meth:`submit` starts a fresh one the same way.

    Args:
        workers: Worker processes.
        hash_seed: The hash seed (default: the browser's).
    """

    def __init__(self, workers: int = 1, hash_seed: str = PYTHON_HASH_SEED) -> None:
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self.workers = workers
        self.hash_seed = hash_seed
        self._lock = threading.Lock()
        self._executor = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        executor = concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))
        with _hash_seed_environ(self.hash_seed):
            for _ in range(self.workers):
                executor.submit(worker_hash, "")
        return executor

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Runs ``fn(*args)`` in a worker; ``fn`` and ``args`` must be picklable (module-level, plain data)."""
        with self._lock:
            try:
                return self._executor.submit(fn, *args)
            except concurrent.futures.process.BrokenProcessPool:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
                return self._executor.submit(fn, *args)

    def shutdown(self, wait: bool = True) -> None:
        """Stops the workers (after their current task if ``wait``); queued tasks are cancelled."""
        with self._lock:
            self._executor.shutdown(wait=wait, cancel_futures=True)

    def __enter__(self) -> HashSeededPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.shutdown()
