"""Tests for interactive_gym.server.data_writer: acknowledged = committed, buffering, group commit, errors.

Tests that take ``new_db`` run on both engines (SQLite and a real PostgreSQL server, see ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from db_engines import column, committed, execute

from interactive_gym.server.data_writer import DataWriter, StepRecord, StorageError
from interactive_gym.server.storage import Location, Storage
from interactive_gym.server.value_codec import CodecError

LONG = 600.0  # a flush interval that never elapses during a test: only explicit triggers commit steps


def run(test: Callable[[], Awaitable[Any]]) -> Any:
    """Runs one async test body with a hard upper bound, so a bug shows as a failure, not a hang."""
    return asyncio.run(asyncio.wait_for(test(), timeout=60))


def step(t: int, obs: Any = None) -> StepRecord:
    observation = np.full(3, t, dtype=np.int16) if obs is None else obs
    return StepRecord(t, observation, {"a": t % 4}, {"a": 1.0}, False, False, {}, {"a": []}, 100.0 + t)


async def started(path: Location, **kwargs: Any) -> DataWriter:
    writer = DataWriter(path, experiment_id="exp", **kwargs)
    await writer.start()
    return writer


async def begin(writer: DataWriter, episode: int = 0) -> int:
    return await writer.begin_episode(
        scene_id="s", game_id="g", episode=episode, mode="server", source="server", seed=1, agents={"a": "p1"}
    )


class Gate:
    """Holds the writer thread inside an operation until released, so later calls queue up together."""

    def __init__(self, writer: DataWriter) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.task = asyncio.ensure_future(writer._submit(self._hold))  # noqa: SLF001 - test-only hook

    def _hold(self, storage: Storage) -> None:
        self.entered.set()
        assert self.release.wait(30)

    async def wait_entered(self) -> None:
        assert await asyncio.to_thread(self.entered.wait, 30)

    async def open(self) -> None:
        self.release.set()
        await self.task


# A trigger that refuses every step row, in each engine's own trigger language.
REFUSE_STEPS = {
    "sqlite": ("CREATE TRIGGER refuse BEFORE INSERT ON steps BEGIN SELECT RAISE(ABORT, 'disk says no'); END",),
    "postgresql": (
        "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'disk says no'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse BEFORE INSERT ON steps FOR EACH ROW EXECUTE FUNCTION refuse()",
    ),
}


# ------------------------------------------------------------------------------------- acknowledgement


def test_awaited_writes_are_committed_when_they_return(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        await writer.upsert_participant("p1", url_params={"src": "prolific"})
        assert committed(path, "SELECT COUNT(*) FROM participants") == 1
        scene_row = await writer.record_scene("p1", "consent", 0, 1.0, 2.0, {"agree": True})
        assert committed(path, "SELECT answers FROM scene_records") == '{"agree":true}'
        episode_id = await begin(writer)
        assert committed(path, f"SELECT status FROM episodes WHERE id = {episode_id}") == "in_progress"
        event_id = await writer.record_event("pause", {"s": 1.5}, participant_id="p1")
        assert committed(path, f"SELECT kind FROM events WHERE id = {event_id}") == "pause"
        assert scene_row == 1
        await writer.close()

    run(body)


def test_buffered_steps_wait_for_a_trigger_then_commit(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        episode_id = await begin(writer)
        writer.append_steps(episode_id, [step(0), step(1)])
        assert writer.pending_steps == 2
        assert committed(path, "SELECT COUNT(*) FROM steps") == 0  # buffered, not yet durable
        await writer.flush()
        assert committed(path, "SELECT COUNT(*) FROM steps") == 2 and writer.pending_steps == 0
        writer.append_steps(episode_id, [step(2)])
        await writer.record_event("tick")  # any other commit carries buffered steps along
        assert committed(path, "SELECT COUNT(*) FROM steps") == 3
        writer.append_steps(episode_id, [step(3)])
        await writer.end_episode(episode_id, status="complete", meta={"ticks": 4})
        assert committed(path, "SELECT COUNT(*) FROM steps") == 4
        assert committed(path, "SELECT status FROM episodes") == "complete"
        assert writer.stats.steps_committed == 4 and writer.stats.steps_lost == 0
        await writer.close()

    run(body)


def test_buffered_steps_commit_on_their_own_within_the_interval(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> float:
        writer = await started(path, flush_interval_s=0.05)
        episode_id = await begin(writer)
        appended = time.monotonic()
        writer.append_steps(episode_id, [step(t) for t in range(10)])
        while committed(path, "SELECT COUNT(*) FROM steps") < 10:
            assert time.monotonic() - appended < 20, "buffered steps were never committed"
            await asyncio.sleep(0.01)
        latency = time.monotonic() - appended
        await writer.close()
        return latency

    assert run(body) >= 0.0


def test_close_commits_the_buffer_and_stops(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        episode_id = await begin(writer)
        writer.append_steps(episode_id, [step(t) for t in range(5)])
        await writer.close()
        await writer.close()  # idempotent
        assert committed(path, "SELECT COUNT(*) FROM steps") == 5
        with pytest.raises(RuntimeError, match="not running .it was closed"):
            await writer.record_event("late")
        with pytest.raises(RuntimeError, match="not running"):
            writer.append_steps(episode_id, [step(9)])

    run(body)


def test_appended_steps_are_snapshots(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        episode_id = await begin(writer)
        observation = np.zeros(4, dtype=np.float32)
        writer.append_steps(episode_id, [step(0, observation)])
        observation[:] = 7.0  # an env reusing its buffer must not rewrite history
        await writer.close()
        with Storage(path, readonly=True) as reader:
            assert reader.steps(episode_id)[0].observation.tolist() == [0.0, 0.0, 0.0, 0.0]

    run(body)


# --------------------------------------------------------------------------------------- group commit


def test_queued_operations_share_one_commit(new_db: Callable[..., Location]) -> None:
    async def body() -> None:
        writer = await started(new_db())
        gate = Gate(writer)
        await gate.wait_entered()
        commits_before = writer.stats.commits
        pending = [asyncio.ensure_future(writer.record_event("e", {"i": i})) for i in range(300)]
        await asyncio.sleep(0.05)
        assert not any(task.done() for task in pending)  # nothing acknowledged before its commit
        await gate.open()
        ids = await asyncio.gather(*pending)
        assert sorted(ids) == list(range(1, 301))
        assert writer.stats.commits - commits_before <= 2  # the gate's batch, then all 300 together
        await writer.close()

    run(body)


def test_a_rejected_operation_fails_alone(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path)
        gate = Gate(writer)
        await gate.wait_entered()
        good_before = asyncio.ensure_future(writer.record_event("before"))
        bad = asyncio.ensure_future(writer.end_episode(999, status="complete"))
        invalid = asyncio.ensure_future(writer.record_scene("p1", "s", -3, None, None, {}))
        good_after = asyncio.ensure_future(writer.record_event("after"))
        await gate.open()
        assert await good_before == 1 and await good_after == 2
        with pytest.raises(StorageError, match="no episode with id 999"):
            await bad
        with pytest.raises(ValueError, match="scene_index must be an integer >= 0"):
            await invalid
        await writer.close()
        assert column(path, "SELECT kind FROM events ORDER BY id") == ["before", "after"]

    run(body)


def test_a_raw_database_error_in_one_operation_never_takes_the_others_down(new_db: Callable[..., Location]) -> None:
    # On PostgreSQL an error outside a savepoint aborts the whole transaction, and COMMIT then quietly rolls
    # back: the writes grouped with it must still be committed before they are acknowledged.
    path = new_db()

    def broken_read(storage: Storage) -> None:
        storage._conn.execute("SELECT * FROM nowhere")  # noqa: SLF001 - an error no Storage method guards

    async def body() -> None:
        writer = await started(path)
        gate = Gate(writer)
        await gate.wait_entered()
        before = asyncio.ensure_future(writer.record_event("before"))
        bad = asyncio.ensure_future(writer._submit(broken_read))  # noqa: SLF001 - test-only hook
        after = asyncio.ensure_future(writer.record_event("after"))
        await gate.open()
        assert (await before, await after) == (1, 2)
        with pytest.raises(StorageError, match="nowhere"):
            await bad
        assert column(path, "SELECT kind FROM events ORDER BY id") == ["before", "after"]  # acknowledged: stored
        await writer.close()

    run(body)


def test_a_cancelled_caller_does_not_cancel_the_write(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path)
        gate = Gate(writer)
        await gate.wait_entered()
        task = asyncio.ensure_future(writer.record_event("orphan"))
        await asyncio.sleep(0)
        task.cancel()
        await gate.open()
        await writer.flush()
        await writer.close()
        assert committed(path, "SELECT kind FROM events") == "orphan"

    run(body)


# ------------------------------------------------------------------------------------------ episodes


def test_append_requires_an_open_episode_and_valid_steps(new_db: Callable[..., Location]) -> None:
    async def body() -> None:
        writer = await started(new_db(), flush_interval_s=LONG)
        with pytest.raises(ValueError, match="episode 5 is not open"):
            writer.append_steps(5, [step(0)])
        episode_id = await begin(writer)
        with pytest.raises(CodecError, match="step 1 info"):
            writer.append_steps(episode_id, [step(0), StepRecord(1, 0, 0, 0, 0, 0, {"x": object()}, {}, 1.0)])
        with pytest.raises(ValueError, match="step.t must be"):
            writer.append_steps(episode_id, [StepRecord(-1, 0, 0, 0, 0, 0, {}, {}, 1.0)])
        assert writer.pending_steps == 0  # all-or-nothing per call
        writer.append_steps(episode_id, [])
        await writer.end_episode(episode_id, status="partial")
        with pytest.raises(ValueError, match="end_episode\\(\\) closes it"):
            writer.append_steps(episode_id, [step(1)])
        await writer.close()

    run(body)


def test_write_episode_upload_and_retry(new_db: Callable[..., Location]) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path)
        upload = {
            "scene_id": "s", "game_id": "g", "episode": 0, "mode": "browser", "source": "p1", "seed": 11,
            "agents": {"human": "p1"}, "status": "complete", "meta": {"fps": 30},
        }  # fmt: skip
        steps = [step(t) for t in range(50)]
        first, retry = await asyncio.gather(
            writer.write_episode(**upload, steps=steps), writer.write_episode(**upload, steps=steps)
        )
        assert first == retry
        await writer.close()
        assert committed(path, "SELECT COUNT(*) FROM steps") == 50
        assert committed(path, "SELECT COUNT(*) FROM episodes") == 1

    run(body)


# --------------------------------------------------------------------------------------------- errors


def test_lost_buffered_steps_are_reported_on_flush(new_db: Callable[..., Location], engine: str) -> None:
    path = new_db()

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        episode_id = await begin(writer)
        execute(path, *REFUSE_STEPS[engine])
        writer.append_steps(episode_id, [step(0), step(1)])
        with pytest.raises(StorageError, match="2 buffered steps could not be written: disk says no"):
            await writer.flush()
        await writer.flush()  # reported once
        assert writer.stats.steps_lost == 2
        await writer.record_event("still works")
        await writer.close()
        assert committed(path, "SELECT COUNT(*) FROM events") == 1

    run(body)


def test_a_failed_commit_keeps_buffered_steps_for_the_retry(new_db: Callable[..., Location], monkeypatch) -> None:
    path = new_db()
    original = Storage.transaction
    fail_next_commit = threading.Event()

    @contextlib.contextmanager
    def flaky_transaction(self: Storage) -> Iterator[None]:
        if fail_next_commit.is_set() and not self._conn.in_transaction:  # noqa: SLF001 - outermost only
            fail_next_commit.clear()
            raise StorageError("database is locked")
        with original(self):
            yield

    monkeypatch.setattr(Storage, "transaction", flaky_transaction)

    async def body() -> None:
        writer = await started(path, flush_interval_s=LONG)
        episode_id = await begin(writer)
        writer.append_steps(episode_id, [step(0), step(1), step(2)])
        fail_next_commit.set()
        with pytest.raises(StorageError, match="database is locked"):
            await writer.record_event("unlucky")
        assert writer.pending_steps == 3 and committed(path, "SELECT COUNT(*) FROM steps") == 0
        await writer.flush()  # the retry succeeds: nothing was lost, nothing to report
        assert column(path, "SELECT t FROM steps ORDER BY t") == [0, 1, 2]
        assert committed(path, "SELECT COUNT(*) FROM events") == 0
        assert writer.stats.steps_lost == 0 and writer.stats.steps_committed == 3
        await writer.close()

    run(body)


def test_an_internal_failure_answers_callers_instead_of_hanging(new_db: Callable[..., Location], monkeypatch) -> None:
    async def body() -> None:
        writer = await started(new_db())

        def broken_commit(storage: Storage, operations: list) -> None:
            raise RuntimeError("bug in the writer")

        monkeypatch.setattr(writer._loop, "_commit", broken_commit)  # noqa: SLF001
        with pytest.raises(StorageError, match="DataWriter thread failed"):
            await writer.record_event("x")
        with pytest.raises(StorageError, match="DataWriter thread failed"):
            await writer.upsert_participant("p1")
        with pytest.raises(StorageError, match="DataWriter thread failed"):
            await writer.close()

    run(body)


def test_start_reports_an_unusable_database(tmp_path: Path) -> None:
    path = tmp_path / "exp.db"
    path.write_bytes(b"\x00garbage" * 512)

    async def body() -> None:
        writer = DataWriter(path, experiment_id="exp")
        with pytest.raises(StorageError, match="not a usable SQLite database"):
            await writer.start()
        with pytest.raises(RuntimeError, match="called twice"):
            await writer.start()
        await writer.close()  # harmless

    run(body)


def test_lifecycle_misuse_is_explained(new_db: Callable[..., Location]) -> None:
    async def body() -> None:
        writer = DataWriter(new_db(), experiment_id="exp")
        with pytest.raises(RuntimeError, match="call await start\\(\\) first"):
            await writer.record_event("x")
        await writer.start()
        with pytest.raises(RuntimeError, match="called twice"):
            await writer.start()
        await writer.close()

    run(body)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"experiment_id": ""}, "experiment_id must be a non-empty string"),
        ({"experiment_id": "e", "flush_interval_s": 0}, "flush_interval_s must be a positive number"),
        (
            {"experiment_id": "e", "flush_interval_s": float("inf")},
            "flush_interval_s must be a positive number",
        ),
        ({"experiment_id": "e", "synchronous": "OFF"}, "synchronous must be"),
    ],
)
def test_constructor_validates_settings(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DataWriter(tmp_path / "exp.db", **kwargs)
    assert not (tmp_path / "exp.db").exists()
