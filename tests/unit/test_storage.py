"""Tests for interactive_gym.server.storage: schema, WAL, idempotent writes, transactions, reads, errors.

Tests that take ``store`` or ``new_db`` run on both engines (SQLite and a real PostgreSQL server, see
``conftest.py``); the rest are about SQLite files (WAL, pragmas, foreign files).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from db_engines import committed, execute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from interactive_gym.server.storage import (
    SCHEMA_VERSION,
    Location,
    StepRecord,
    Storage,
    StorageError,
    encode_step,
)
from interactive_gym.server.storage_connection import connect
from interactive_gym.server.value_codec import CodecError


class FakeClock:
    """Returns 1000.0, 1001.0, ... so timestamps are predictable."""

    def __init__(self) -> None:
        self._ticks = itertools.count(1000)

    def __call__(self) -> float:
        return float(next(self._ticks))


@pytest.fixture
def store(new_db: Callable[..., Location]) -> Storage:
    storage = Storage(new_db(), experiment_id="exp1", clock=FakeClock())
    yield storage
    storage.close()


def make_step(t: int, value: float = 0.0, **overrides: object) -> StepRecord:
    fields = {
        "t": t,
        "observation": np.array([value, -value], dtype=np.float32),
        "actions": {"agent_0": 2, "agent_1": "noop"},
        "rewards": {"agent_0": np.float64(value), "agent_1": 0.0},
        "terminated": {"agent_0": False, "agent_1": False},
        "truncated": {"agent_0": False, "agent_1": t > 5},
        "info": {"score": t, "pos": (1, 2)},
        "keys": {"agent_0": ["ArrowLeft", "Space"]},
        "server_ts": 50.0 + t,
        "client_ts": None,
    }
    fields.update(overrides)
    return StepRecord(**fields)  # type: ignore[arg-type]


def begin(store: Storage, *, game_id: str = "g1", episode: int = 0, source: str = "server") -> int:
    return store.begin_episode(
        scene_id="game", game_id=game_id, episode=episode, mode="server", source=source, seed=7,
        agents={"agent_0": "p1", "agent_1": "policy:greedy"},
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- opening


def test_new_database_is_wal_with_schema_and_parent_folders(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "exp.db"
    with Storage(path, experiment_id="e") as storage:
        assert path.is_file()
        assert storage.pragma("journal_mode") == "wal"
        assert storage.pragma("synchronous") == 2  # FULL
        assert storage.pragma("foreign_keys") == 1
        assert storage.schema_version == SCHEMA_VERSION == 3
    with Storage(path, synchronous="NORMAL") as storage:
        assert storage.pragma("synchronous") == 1


def test_reopening_keeps_data_and_does_not_migrate_twice(new_db: Callable[..., Location]) -> None:
    path = new_db()
    with Storage(path, experiment_id="e") as storage:
        storage.upsert_participant("p1")
    with Storage(path, experiment_id="e") as storage:
        assert [p.participant_id for p in storage.participants()] == ["p1"]
    assert committed(path, "SELECT COUNT(*) FROM schema_version") == SCHEMA_VERSION


def test_close_checkpoints_so_the_db_file_alone_holds_the_data(tmp_path: Path) -> None:
    path = tmp_path / "exp.db"
    with Storage(path, experiment_id="e") as storage:
        storage.record_event("hello")
    wal = path.with_name("exp.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_newer_schema_is_refused(new_db: Callable[..., Location]) -> None:
    path = new_db()
    Storage(path).close()
    execute(path, "INSERT INTO schema_version VALUES (99, 0)")
    with pytest.raises(StorageError, match="schema version 99, newer than"):
        Storage(path)
    with pytest.raises(StorageError, match="schema version 99, newer than"):
        Storage(path, readonly=True)


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        Storage(path)
    with pytest.raises(StorageError, match="not a usable SQLite database"):
        Storage(path, readonly=True)
    assert path.read_text().startswith("these are my notes")  # untouched


def test_readonly_open_never_creates(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="no database file"):
        Storage(tmp_path / "missing.db", readonly=True)
    assert not (tmp_path / "missing.db").exists()


def test_readonly_open_rejects_foreign_and_empty_databases(new_db: Callable[..., Location]) -> None:
    other = new_db("other")
    execute(other, "CREATE TABLE t (x INTEGER)")
    with pytest.raises(StorageError, match="not an interactive-gym one"):
        Storage(other, readonly=True)
    empty = new_db("empty")
    execute(empty, "CREATE TABLE t (x INTEGER)", "DROP TABLE t")  # exists (SQLite: a file), holds no table
    with pytest.raises(StorageError, match="not an interactive-gym one"):
        Storage(empty, readonly=True)


def test_a_foreign_database_is_never_written_into(new_db: Callable[..., Location]) -> None:
    other = new_db("theirs")
    execute(other, "CREATE TABLE notes (x INTEGER)", "INSERT INTO notes VALUES (7)")
    with pytest.raises(StorageError, match="not an interactive-gym one; choose another database path or URL"):
        Storage(other, experiment_id="e")
    assert committed(other, "SELECT COUNT(*) FROM notes") == 1
    conn = connect(other, readonly=True)
    assert not conn.has_table("schema_version")  # no table of ours was made
    conn.close()


def test_a_foreign_sqlite_database_is_never_written_into(tmp_path: Path) -> None:
    other = tmp_path / "theirs.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StorageError, match="not an interactive-gym one; choose another database path"):
        Storage(other, experiment_id="e")
    conn = sqlite3.connect(other)
    tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert tables == ["notes"] and journal == "delete"


def test_readonly_storage_refuses_writes(store: Storage) -> None:
    store.upsert_participant("p1")
    with Storage(store.location, readonly=True, experiment_id="exp1") as reader:
        assert [p.participant_id for p in reader.participants()] == ["p1"]
        with pytest.raises(StorageError, match="read-only"):
            reader.record_event("x")


def test_writes_without_experiment_id_explain_the_fix(new_db: Callable[..., Location]) -> None:
    with Storage(new_db()) as storage:
        with pytest.raises(StorageError, match="pass experiment_id="):
            storage.upsert_participant("p1")
        storage.record_event("allowed")  # events carry no experiment id


def test_bad_constructor_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="synchronous"):
        Storage(tmp_path / "e.db", synchronous="OFF")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="experiment_id"):
        Storage(tmp_path / "e.db", experiment_id="")


def test_values_never_become_file_paths(tmp_path: Path) -> None:
    store = Storage(tmp_path / "exp.db", experiment_id="exp1")
    evil = "../../etc/passwd"
    store.upsert_participant(evil, current_scene="/tmp/x")
    store.record_scene(evil, "../scene", 0, None, None, {"f": "../../y"})
    store.record_event("../../z", participant_id=evil, game_id="/abs", scene_id="..")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.db", "exp.db-shm", "exp.db-wal"]
    assert store.participants()[0].participant_id == evil
    store.close()


# ------------------------------------------------------------------------------------------ participants


def test_upsert_participant_creates_then_updates_only_given_fields(store: Storage) -> None:
    store.upsert_participant("p1", url_params={"PROLIFIC_PID": "abc", "n": 3})
    (created,) = store.participants()
    assert created.status == "active" and created.experiment_id == "exp1"
    assert created.url_params == {"PROLIFIC_PID": "abc", "n": 3}
    assert created.created_at == created.updated_at
    store.upsert_participant("p1", current_scene="survey")
    store.upsert_participant("p1", status="completed", completion_code="XYZ-1")
    (updated,) = store.participants()
    assert updated.url_params == {"PROLIFIC_PID": "abc", "n": 3}
    assert (updated.status, updated.completion_code, updated.current_scene) == (
        "completed",
        "XYZ-1",
        "survey",
    )
    assert updated.created_at == created.created_at < updated.updated_at


@pytest.mark.parametrize("status", ["", "Completed", "done!", "a b", 3])
def test_participant_status_must_be_a_lower_case_word(store: Storage, status: object) -> None:
    with pytest.raises(ValueError, match="participant status"):
        store.upsert_participant("p1", status=status)  # type: ignore[arg-type]
    assert store.participants() == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"participant_id": ""}, "participant_id must be a non-empty string"),
        ({"participant_id": 5}, "participant_id must be a non-empty string"),
        ({"participant_id": "p", "url_params": ["x"]}, "url_params must be a dict"),
        ({"participant_id": "p", "completion_code": 12}, "completion_code must be"),
    ],
)
def test_upsert_participant_rejects_bad_arguments(store: Storage, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        store.upsert_participant(**kwargs)


# ---------------------------------------------------------------------------------------------- scenes


def test_record_scene_creates_missing_participant_and_retry_replaces(store: Storage) -> None:
    first = store.record_scene("p9", "survey", 3, 10.0, 20.5, {"age": 30, "likes": ["a", "b"]}, {"rt": 1.5})
    again = store.record_scene("p9", "survey", 3, 10.0, 21.0, {"age": 31}, None)
    assert first == again
    (record,) = store.scene_records()
    assert (record.scene_id, record.scene_index, record.started_at, record.ended_at) == (
        "survey",
        3,
        10.0,
        21.0,
    )
    assert record.answers == {"age": 31} and record.meta == {}
    assert [p.participant_id for p in store.participants()] == ["p9"]
    store.record_scene("p9", "intro", 0, None, None, None)
    assert [r.scene_id for r in store.scene_records("p9")] == ["intro", "survey"]
    assert store.scene_records("nobody") == []


def test_record_scene_rejects_bad_index(store: Storage) -> None:
    with pytest.raises(ValueError, match="scene_index must be an integer >= 0"):
        store.record_scene("p1", "s", -1, None, None, {})
    with pytest.raises(ValueError, match="started_at must be a number"):
        store.record_scene("p1", "s", 0, "yesterday", None, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="answers must be a dict, got list"):
        store.record_scene("p1", "s", 0, None, None, [])  # type: ignore[arg-type]
    assert store.scene_records() == []


# -------------------------------------------------------------------------------------------- episodes


def test_begin_episode_is_idempotent_per_key(store: Storage) -> None:
    first = begin(store)
    assert begin(store) == first
    assert begin(store, source="p2") != first
    assert begin(store, episode=1) != first
    (row, *_) = store.episodes()
    assert (row.status, row.mode, row.seed, row.ended_at, row.step_count) == (
        "in_progress",
        "server",
        7,
        None,
        0,
    )
    assert row.agents == {"agent_0": "p1", "agent_1": "policy:greedy"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"mode": "cloud"}, "mode must be one of server, browser, p2p"),
        ({"episode": -1}, "episode must be an integer >= 0"),
        ({"episode": True}, "episode must be an integer"),
        ({"seed": 2**64}, "seed must be an integer <= "),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"agents": None}, "agents must be a dict"),
        ({"source": ""}, "source must be a non-empty string"),
        ({"meta": {"x": object()}}, "cannot encode"),
    ],
)
def test_begin_episode_rejects_bad_arguments(store: Storage, overrides: dict, message: str) -> None:
    kwargs = {
        "scene_id": "s", "game_id": "g", "episode": 0, "mode": "p2p", "source": "p1", "seed": None, "agents": {},
    }  # fmt: skip
    kwargs.update(overrides)
    with pytest.raises((ValueError, CodecError), match=message):
        store.begin_episode(**kwargs)
    assert store.episodes() == []


def test_numpy_integers_are_accepted_where_ints_are(store: Storage) -> None:
    episode_id = store.begin_episode(
        scene_id="s", game_id="g", episode=np.int64(2), mode="browser", source="p1", seed=np.uint32(5), agents={},
    )  # fmt: skip
    row = store.episode(episode_id)
    assert row is not None and (row.episode, row.seed) == (2, 5)
    assert type(row.seed) is int


def test_end_episode_merges_meta_and_sets_status(store: Storage) -> None:
    episode_id = store.begin_episode(
        scene_id="s", game_id="g", episode=0, mode="p2p", source="p1", seed=None, agents={},
        meta={"connection": "relay", "rtt_ms": 40},
    )  # fmt: skip
    store.end_episode(episode_id, status="partial", meta={"rtt_ms": 55, "rollbacks": 12}, ended_at=99.5)
    row = store.episode(episode_id)
    assert row is not None
    assert (row.status, row.ended_at) == ("partial", 99.5)
    assert row.meta == {"connection": "relay", "rtt_ms": 55, "rollbacks": 12}


def test_end_episode_errors(store: Storage) -> None:
    with pytest.raises(StorageError, match="no episode with id 41"):
        store.end_episode(41, status="complete")
    episode_id = begin(store)
    with pytest.raises(ValueError, match="status must be one of in_progress, complete, partial"):
        store.end_episode(episode_id, status="done")
    assert store.episode(77) is None


# ----------------------------------------------------------------------------------------------- steps


def test_steps_round_trip_exactly(store: Storage) -> None:
    episode_id = begin(store)
    steps = [make_step(t, value=t / 3) for t in range(8)]
    store.insert_steps([(episode_id, encode_step(s)) for s in steps])
    back = store.steps(episode_id)
    assert [s.t for s in back] == list(range(8))
    for original, stored in zip(steps, back, strict=True):
        assert stored.observation.dtype == np.float32
        assert stored.observation.tobytes() == original.observation.tobytes()
        assert stored.rewards == original.rewards and type(stored.rewards["agent_0"]) is np.float64
        assert stored.info == {"score": original.t, "pos": (1, 2)}
        assert (stored.actions, stored.keys, stored.terminated) == (
            original.actions,
            original.keys,
            original.terminated,
        )
        assert (stored.server_ts, stored.client_ts) == (original.server_ts, None)
    assert store.episode(episode_id).step_count == 8  # type: ignore[union-attr]


def test_resending_a_step_replaces_it(store: Storage) -> None:
    episode_id = begin(store)
    store.insert_steps([(episode_id, encode_step(make_step(0, 1.0)))])
    store.insert_steps([(episode_id, encode_step(make_step(0, 2.0, client_ts=3.25)))])
    (step,) = store.steps(episode_id)
    assert step.observation.tolist() == [2.0, -2.0] and step.client_ts == 3.25


def test_steps_for_an_unknown_episode_are_rejected(store: Storage) -> None:
    with pytest.raises(StorageError, match="(?i)foreign key"):
        store.insert_steps([(12345, encode_step(make_step(0)))])


@pytest.mark.parametrize(
    ("step", "error", "message"),
    [
        (make_step(-1), ValueError, "step.t must be an integer >= 0"),
        (make_step(0, server_ts="now"), ValueError, "step.server_ts must be a number"),
        (make_step(3, info={"f": lambda: 0}), CodecError, "step 3 info: "),
        ({"t": 0}, TypeError, "expected a StepRecord"),
    ],
)
def test_encode_step_names_the_bad_field(step: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        encode_step(step)  # type: ignore[arg-type]


# new_db makes a new database on every call, so each example starts empty although the fixture is shared.
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(-5, 5)), max_size=40))
def test_stored_steps_are_the_last_write_per_t_in_order(new_db: Callable[..., Location], writes) -> None:
    path = new_db("prop")
    with Storage(path, experiment_id="e") as storage:
        episode_id = begin(storage)
        for t, value in writes:
            storage.insert_steps([(episode_id, encode_step(make_step(t, actions=value)))])
        expected = dict(writes)
        stored = storage.steps(episode_id)
    assert [s.t for s in stored] == sorted(expected)
    assert [s.actions for s in stored] == [expected[t] for t in sorted(expected)]


def test_write_episode_is_one_idempotent_upload(store: Storage) -> None:
    upload = {
        "scene_id": "game", "game_id": "g7", "episode": 2, "mode": "p2p", "source": "p1", "seed": 3,
        "agents": {"agent_0": "p1", "agent_1": "p2"}, "env_hash": "abc123", "meta": {"connection": "direct"},
        "started_at": 5.0, "ended_at": 9.0,
    }  # fmt: skip
    steps = [make_step(t, float(t)) for t in range(5)]
    first = store.write_episode(**upload, steps=steps[:3], status="partial")
    second = store.write_episode(**upload, steps=steps, status="complete")
    third = store.write_episode(**upload, steps=steps, status="complete")
    assert first == second == third
    (row,) = store.episodes()
    assert (row.status, row.step_count, row.env_hash, row.started_at, row.ended_at) == (
        "complete",
        5,
        "abc123",
        5.0,
        9.0,
    )
    other_peer = store.write_episode(**{**upload, "source": "p2"}, steps=steps, status="complete")
    assert other_peer != first
    assert len(store.episodes(game_id="g7")) == 2 and store.episodes(game_id="zzz") == []


def test_write_episode_with_a_bad_step_writes_nothing(store: Storage) -> None:
    steps = [make_step(0), make_step(1, observation={1, 2})]  # a set cannot be encoded
    with pytest.raises(CodecError, match="step 1 observation"):
        store.write_episode(
            scene_id="s", game_id="g", episode=0, mode="browser", source="p1", seed=None, agents={},
            steps=steps, status="complete",
        )  # fmt: skip
    assert store.episodes() == []
    assert list(store.iter_steps()) == []


# --------------------------------------------------------------------------------------- transactions


def test_nested_failure_rolls_back_only_its_savepoint(store: Storage) -> None:
    with store.transaction():
        store.record_event("kept-before")
        with pytest.raises(RuntimeError), store.transaction():
            store.record_event("rolled-back")
            raise RuntimeError("boom")
        with pytest.raises(StorageError, match="no episode"):
            store.end_episode(5, status="complete")
        store.record_event("kept-after")
    assert [e.kind for e in store.events()] == ["kept-before", "kept-after"]


def test_outer_failure_rolls_back_everything(store: Storage) -> None:
    with pytest.raises(KeyError), store.transaction():
        store.upsert_participant("p1")
        store.record_event("x")
        raise KeyError("abort")
    assert store.participants() == [] and store.events() == []


def test_database_errors_surface_as_storage_errors(store: Storage) -> None:
    with pytest.raises(StorageError, match="no such table: nowhere|relation \"nowhere\" does not exist"), \
            store.transaction():
        store._conn.execute("SELECT * FROM nowhere")  # noqa: SLF001 - provoking a raw engine error
    store.record_event("still usable")  # the failed transaction was rolled back
    assert [e.kind for e in store.events()] == ["still usable"]


def test_snapshot_reads_are_consistent_while_a_writer_commits(store: Storage) -> None:
    store.record_event("one")
    with Storage(store.location, readonly=True) as reader:
        with reader.snapshot():
            assert len(reader.events()) == 1
            store.record_event("two")
            assert len(reader.events()) == 1  # same snapshot
        assert len(reader.events()) == 2


# ---------------------------------------------------------------------------------------------- events


def test_text_with_nul_characters_is_refused_on_both_engines(store: Storage) -> None:
    # PostgreSQL text cannot hold NUL; SQLite could, but then the two engines would keep different data.
    with pytest.raises(ValueError, match="participant_id must not contain NUL characters"):
        store.upsert_participant("p\x001")
    with pytest.raises(ValueError, match="kind must not contain NUL characters"):
        store.record_event("a\x00b")
    store.record_event("nul inside a value is fine", {"text": "a\x00b"})  # JSON escapes it
    assert store.events()[0].data == {"text": "a\x00b"} and store.participants() == []


def test_events_round_trip_and_filter_by_kind(store: Storage) -> None:
    first = store.record_event("disconnect", {"reason": "transport close"}, participant_id="p1", game_id="g1")
    second = store.record_event("parity", {"verdict": "agree", "frames": 900, "nan": float("nan")}, ts=12.5)
    third = store.record_event("disconnect")
    assert first < second < third
    events = store.events()
    assert [(e.kind, e.participant_id, e.game_id, e.scene_id) for e in events] == [
        ("disconnect", "p1", "g1", None),
        ("parity", None, None, None),
        ("disconnect", None, None, None),
    ]
    assert events[1].ts == 12.5 and events[1].data["frames"] == 900 and np.isnan(events[1].data["nan"])
    assert events[2].data is None
    assert [e.id for e in store.events("disconnect")] == [first, third]
    with pytest.raises(ValueError, match="kind must be a non-empty string"):
        store.record_event("")
    with pytest.raises(ValueError, match="game_id must be a non-empty string"):
        store.record_event("k", game_id=3)  # type: ignore[arg-type]


def test_an_error_caught_inside_a_transaction_never_passes_for_a_commit(store: Storage) -> None:
    # On PostgreSQL a failed statement aborts the transaction even when its error is caught, and COMMIT then
    # rolls back without an error: the storage must say so instead of returning as if the writes were kept.
    def swallow_an_error() -> None:
        with store.transaction():
            store.record_event("inside")
            with contextlib.suppress(Exception):  # an error the caller swallows: what this test is about
                store._conn.execute("SELECT * FROM nowhere")  # noqa: SLF001

    if store.engine == "postgresql":
        with pytest.raises(StorageError, match="none of it was kept"):
            swallow_an_error()
        assert store.events() == []
    else:  # SQLite ends only the failed statement, so the commit is real and keeps the event
        swallow_an_error()
        assert [e.kind for e in store.events()] == ["inside"]
    store.record_event("next")  # the connection is usable again
    assert [e.kind for e in store.events()][-1] == "next"


def test_instr_finds_text_the_same_way_on_both_engines(store: Storage) -> None:
    store.record_event("k", participant_id="p1", data={"agents": ["ann", "bob"]})
    found = committed(store.location, "SELECT instr(data, ?) FROM events", ('"bob"',))
    assert found == len('{"agents":["ann",') + 1  # 1-based position on SQLite and PostgreSQL alike
    assert committed(store.location, "SELECT instr(data, ?) FROM events", ("carol",)) == 0
