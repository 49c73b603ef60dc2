"""The writer thread of :class:`~interactive_gym.server.data_writer.DataWriter`: group commit, step buffer.

:class:`WriterLoop` owns the queue the event loop puts operations on, the buffer of encoded steps and the
only write connection (opened in its thread). It takes every operation waiting in the queue and commits
them together with the buffered steps in one transaction (one fsync serves many writers); each operation runs
in its own savepoint, so a rejected write fails alone. An operation's future is settled only after its
transaction committed: that is the moment the server may acknowledge data to a client.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from interactive_gym.server.storage import Storage, StorageError
from interactive_gym.server.storage_records import EncodedStep

__all__ = ["WriterLoop", "WriterStats", "settle"]

_log = logging.getLogger(__name__)

_WAKE = "wake"  # queue item: steps were buffered, recompute the flush deadline
_MAX_BATCH = 1000  # operations per transaction; bounds how long one commit holds the write lock


@dataclasses.dataclass
class WriterStats:
    """Counters kept by the writer thread (read them from anywhere; they only grow)."""

    commits: int = 0
    operations: int = 0
    steps_committed: int = 0
    steps_lost: int = 0
    last_commit_s: float = 0.0


@dataclasses.dataclass(frozen=True)
class _Operation:
    run: Callable[[Storage], Any]
    future: concurrent.futures.Future[Any]


@dataclasses.dataclass(frozen=True)
class _Stop:
    future: concurrent.futures.Future[None]


class WriterLoop:
    """The queue, the step buffer and the thread body that drains them into one storage.

    Args:
        open_storage: opens the write connection; called once, in the writer thread.
        name: how logs name the database (a URL without its password).
        flush_interval_s: longest time a buffered step waits before it is committed.
    """

    def __init__(self, open_storage: Callable[[], Storage], name: str, flush_interval_s: float) -> None:
        self.name = name
        self.flush_interval_s = flush_interval_s
        self.stats = WriterStats()
        self._open_storage = open_storage
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the step buffer and the step-failure slot
        self._pending: list[tuple[int, EncodedStep]] = []
        self._pending_since: float | None = None  # monotonic time the oldest buffered step arrived
        self._step_failure: StorageError | None = None

    # ------------------------------------------------------------------------------- called from the loop

    def submit(self, run: Callable[[Storage], Any]) -> concurrent.futures.Future[Any]:
        """Queues ``run(storage)``; the future is settled after the transaction holding it committed."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put(_Operation(run, future))
        return future

    def stop(self) -> concurrent.futures.Future[None]:
        """Asks the thread to commit what is queued and buffered, close the storage and end."""
        stopped: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._queue.put(_Stop(stopped))
        return stopped

    def buffer(self, rows: list[tuple[int, EncodedStep]]) -> None:
        """Adds encoded steps to the buffer; they are committed within ``flush_interval_s``."""
        with self._lock:
            was_empty = not self._pending
            self._pending.extend(rows)
            if was_empty:
                self._pending_since = time.monotonic()
        if was_empty:
            self._queue.put(_WAKE)  # the thread may be sleeping with no deadline

    @property
    def pending_steps(self) -> int:
        """Steps buffered but not yet committed."""
        with self._lock:
            return len(self._pending)

    def take_step_failure(self) -> StorageError | None:
        """The error of steps that could not be written since the last call, if any (reported once)."""
        with self._lock:
            failure, self._step_failure = self._step_failure, None
        return failure

    # -------------------------------------------------------------------------------------- writer thread

    def main(self, ready: concurrent.futures.Future[None]) -> None:
        """The thread body: opens the storage (reporting the outcome on ``ready``) and serves until stopped."""
        try:
            storage = self._open_storage()
        except BaseException as exc:  # handed to start(), which re-raises it
            ready.set_exception(exc)
            return
        ready.set_result(None)
        stop: _Stop | None = None
        try:
            stop = self._serve(storage)
        except Exception as exc:  # a bug here must not leave callers awaiting forever
            _log.exception("DataWriter %s: writer thread failed", self.name)
            stop = self._reject_everything(StorageError(f"the DataWriter thread failed: {exc!r}"))
        finally:
            try:
                storage.close()
            except Exception as exc:  # reported to close()
                if stop is not None:
                    settle(stop.future, False, StorageError(f"closing {self.name} failed: {exc}"))
            if stop is not None:
                settle(stop.future, True, None)

    def _serve(self, storage: Storage) -> _Stop:
        while True:
            try:
                first = self._queue.get(timeout=self._seconds_until_steps_due())
            except queue.Empty:
                first = None  # the buffered steps are due
            items = [first]
            while len(items) < _MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            operations = [item for item in items if isinstance(item, _Operation)]
            stop = next((item for item in items if isinstance(item, _Stop)), None)
            if operations or stop is not None or self._seconds_until_steps_due() == 0.0:
                try:
                    self._commit(storage, operations)
                except Exception as exc:  # a bug, not a rejected write: fail loudly but answer everyone
                    _log.exception("DataWriter %s: writer thread failed", self.name)
                    error = StorageError(f"the DataWriter thread failed: {exc!r}")
                    for operation in operations:
                        settle(operation.future, False, error)
                    return self._reject_everything(error, stop)
            if stop is not None:
                return stop

    def _reject_everything(self, error: StorageError, stop: _Stop | None = None) -> _Stop:
        """After an internal failure: answer every queued and future operation with ``error`` until stopped."""
        with self._lock:
            self._step_failure = error
        while stop is None:
            item = self._queue.get()
            if isinstance(item, _Operation):
                settle(item.future, False, error)
            elif isinstance(item, _Stop):
                stop = item
        return stop

    def _seconds_until_steps_due(self) -> float | None:
        with self._lock:
            if self._pending_since is None:
                return None
            return max(0.0, self._pending_since + self.flush_interval_s - time.monotonic())

    def _commit(self, storage: Storage, operations: list[_Operation]) -> None:
        with self._lock:
            rows, self._pending, self._pending_since = self._pending, [], None
        outcomes: list[tuple[_Operation, bool, Any]] = []
        step_error: Exception | None = None
        started = time.perf_counter()
        try:
            with storage.transaction():
                if rows:
                    try:
                        storage.insert_steps(rows)
                    except Exception as exc:  # rows are dropped, reported via flush()
                        step_error = exc
                for operation in operations:
                    try:
                        # Its own savepoint, whatever it runs: a failure rolls back this operation only (on
                        # PostgreSQL an uncaught statement error would otherwise abort the whole batch).
                        with storage.transaction():
                            value = operation.run(storage)
                        outcomes.append((operation, True, value))
                    except Exception as exc:  # belongs to that caller only
                        outcomes.append((operation, False, exc))
        except Exception as exc:  # BEGIN or COMMIT failed (lock held too long, disk full): nothing is durable
            outcomes = [(operation, False, exc) for operation in operations]
            if rows:
                self._requeue(rows, exc)
            rows = []
        self.stats.commits += 1
        self.stats.operations += len(operations)
        self.stats.last_commit_s = time.perf_counter() - started
        if rows and step_error is None:
            self.stats.steps_committed += len(rows)
        elif rows:
            self._note_lost_steps(len(rows), step_error)
        for operation, ok, value in outcomes:
            settle(operation.future, ok, value)

    def _requeue(self, rows: list[tuple[int, EncodedStep]], error: Exception) -> None:
        # The steps themselves were fine; the commit was not. Keep them, in order, for the next commit. Nothing
        # is lost yet, so flush() raises only if its own batch fails too (then with the commit's error).
        _log.error(
            "DataWriter %s: commit failed, %d buffered steps kept for retry: %s",
            self.name,
            len(rows),
            error,
        )
        with self._lock:
            self._pending[:0] = rows
            self._pending_since = time.monotonic()

    def _note_lost_steps(self, count: int, error: Exception | None) -> None:
        self.stats.steps_lost += count
        _log.error("DataWriter %s: %d buffered steps could not be written: %s", self.name, count, error)
        with self._lock:
            self._step_failure = StorageError(f"{count} buffered steps could not be written: {error}")


def settle(future: concurrent.futures.Future[Any], ok: bool, value: Any) -> None:
    """Sets ``future``'s result (``ok``) or exception; a future its caller cancelled is left alone."""
    try:
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass  # cancelled by a caller that stopped waiting; the write itself stands
