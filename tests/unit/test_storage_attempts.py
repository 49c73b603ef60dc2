"""Browser-mode visits and attempts in real SQLite: seeds stored once and kept across restarts, every reload a
new attempt whose uploads never overwrite another's, repetitions of a scene distinct, and the v1 -> v2 migration."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.storage import EpisodeConflictError, Location, StepRecord, Storage, StorageError
from interactive_gym.server.storage_records import upload_decision
from interactive_gym.server.storage_schema import MIGRATIONS


def _step(t: int, done: bool = False) -> StepRecord:
    return StepRecord(t=t, observation=[t], actions={"a": 1}, rewards={"a": 0.0}, terminated={"a": done},
                      truncated={"a": False}, info={}, keys={"a": []}, server_ts=100.0 + t, client_ts=90.0 + t)


def _upload(attempt: int, episode: int = 0, steps: int = 3, status: str = "complete", scene_index: int = 1,
            **extra: Any) -> dict[str, Any]:
    return {"scene_id": "solo", "game_id": f"p1:{scene_index}:{attempt}", "episode": episode, "mode": "browser",
            "source": "p1", "seed": 7, "agents": {"a": "p1"}, "status": status, "scene_index": scene_index,
            "attempt": attempt, "steps": [_step(t, t == steps - 1) for t in range(steps)],
            "started_at": 100.0, "ended_at": 100.0 + steps, "received_at": 200.0, **extra}


@pytest.fixture
def store(new_db: Callable[..., Location]) -> Storage:
    with Storage(new_db(), experiment_id="exp") as storage:
        yield storage


def test_first_attempt_stores_the_seeds_and_later_attempts_keep_them(store: Storage) -> None:
    first = store.issue_browser_attempt("p1", 1, "solo", [11, 22], issued_at=5.0)
    second = store.issue_browser_attempt("p1", 1, "solo", [33, 44], issued_at=6.0)
    assert first.seeds == second.seeds == (11, 22)
    assert [(a.attempt, a.issued_at, a.first_episode) for a in second.attempts] == [(1, 5.0, 0), (2, 6.0, 0)]
    assert store.browser_visit("p1", 1) == second
    assert store.browser_visit("p1", 2) is None


def test_a_new_attempt_starts_at_the_first_episode_without_a_complete_upload(store: Storage) -> None:
    store.issue_browser_attempt("p1", 1, "solo", [11, 22, 33])
    store.write_episode(**_upload(1, episode=0))
    store.write_episode(**_upload(1, episode=1, status="partial"))
    visit = store.issue_browser_attempt("p1", 1, "solo", [0, 0, 0])
    assert visit.attempts[-1].first_episode == 1
    assert visit.complete_episodes == {0}


def test_seeds_and_attempts_survive_a_restart(new_db: Callable[..., Location]) -> None:
    path = new_db()
    with Storage(path, experiment_id="exp") as storage:
        storage.issue_browser_attempt("p1", 3, "solo", [5, 6])
    with Storage(path, experiment_id="exp") as storage:
        visit = storage.browser_visit("p1", 3)
        assert visit is not None and visit.seeds == (5, 6) and len(visit.attempts) == 1
        assert storage.issue_browser_attempt("p1", 3, "solo", [9, 9]).attempt(2) is not None


def test_a_reload_is_a_new_attempt_that_never_overwrites_the_first(store: Storage) -> None:
    long_partial = store.write_episode(**_upload(1, steps=8, status="partial"))
    short_complete = store.write_episode(**_upload(2, steps=3))
    assert long_partial != short_complete
    rows = {row.attempt: row for row in store.episodes()}
    assert (rows[1].status, rows[1].step_count) == ("partial", 8)
    assert (rows[2].status, rows[2].step_count) == ("complete", 3)
    assert [t for _, s in store.iter_steps(long_partial) for t in [s.t]] == list(range(8))


def test_the_same_upload_again_changes_nothing(store: Storage) -> None:
    first = store.write_episode(**_upload(1))
    again = store.write_episode(**{**_upload(1), "received_at": 999.0, "ended_at": 123.0})
    assert first == again
    (row,) = store.episodes()
    assert (row.received_at, row.ended_at, row.step_count) == (200.0, 103.0, 3)


def test_a_complete_upload_replaces_its_own_partial_but_other_data_is_refused(store: Storage) -> None:
    partial = store.write_episode(**_upload(1, steps=2, status="partial"))
    complete = store.write_episode(**_upload(1, steps=4))
    assert partial == complete
    stale = store.write_episode(**_upload(1, steps=2, status="partial"))  # an old stashed copy arriving late
    assert stale == complete
    with pytest.raises(EpisodeConflictError, match="already holds a complete upload of 4 steps"):
        store.write_episode(**_upload(1, steps=4, seed=8))
    (row,) = store.episodes()
    assert (row.status, row.step_count, row.seed) == ("complete", 4, 7)


def test_repetitions_of_a_scene_are_distinct_visits_and_rows(store: Storage) -> None:
    store.issue_browser_attempt("p1", 1, "solo", [1])
    store.issue_browser_attempt("p1", 3, "solo", [2])
    store.write_episode(**_upload(1, scene_index=1))
    store.write_episode(**_upload(1, scene_index=3))
    assert sorted((row.scene_index, row.attempt) for row in store.episodes()) == [(1, 1), (3, 1)]
    assert store.browser_visit("p1", 1).complete_episodes == {0}  # type: ignore[union-attr]
    assert store.browser_visit("p1", 3).seeds == (2,)  # type: ignore[union-attr]


def test_one_attempt_key_cannot_hold_two_rows(store: Storage) -> None:
    store.write_episode(**_upload(1))
    with pytest.raises(StorageError, match="(?i)unique"):  # either engine's words
        store.write_episode(**{**_upload(1), "game_id": "someone-else"})


def test_a_visit_index_used_by_another_scene_is_refused(store: Storage) -> None:
    store.issue_browser_attempt("p1", 1, "solo", [1])
    with pytest.raises(Exception, match="visited scene 'solo' at index 1"):
        store.issue_browser_attempt("p1", 1, "other", [1])


def test_resume_secret_hash_is_stored_and_kept(store: Storage) -> None:
    store.upsert_participant("p1", resume_secret_hash="sha256:abc")
    store.upsert_participant("p1", status="dropped")
    (row,) = store.participants()
    assert (row.resume_secret_hash, row.status) == ("sha256:abc", "dropped")


def test_a_version_1_database_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    for statement in MIGRATIONS[0][1]:
        conn.execute(statement)
    conn.execute("INSERT INTO schema_version VALUES (1, 0)")
    conn.execute("INSERT INTO participants VALUES ('old', 'exp', '{}', 'completed', 'C', 'end', 1, 2)")
    conn.execute("INSERT INTO episodes (experiment_id, scene_id, game_id, episode, mode, source, status, started_at)"
                 " VALUES ('exp', 'solo', 'old', 0, 'browser', 'old', 'complete', 1)")
    conn.commit()
    conn.close()
    with Storage(path, experiment_id="exp") as storage:
        assert storage.schema_version == 3
        (participant,) = storage.participants()
        assert (participant.participant_id, participant.resume_secret_hash) == ("old", None)
        (episode,) = storage.episodes()
        assert (episode.game_id, episode.attempt, episode.received_at) == ("old", None, None)
        storage.issue_browser_attempt("old", 0, "solo", [1])


UPLOAD_CASES = [
    # stored (status, steps, hash) | new status, steps, hash | decision
    (None, "partial", 3, "h", "insert"),
    (("complete", 5, "h"), "complete", 5, "h", "same"),
    (("partial", 5, "h"), "partial", 5, "h", "same"),
    (("partial", 3, "a"), "complete", 3, "b", "replace"),
    (("partial", 3, "a"), "complete", 9, "b", "replace"),
    (("partial", 3, "a"), "partial", 4, "b", "replace"),
    (("in_progress", 3, None), "partial", 4, "b", "replace"),
    (("partial", 3, None), "partial", 3, "b", "stale"),
    (("partial", 5, "a"), "partial", 3, "b", "stale"),
    (("complete", 5, "a"), "partial", 5, "b", "stale"),
    (("complete", 5, "a"), "complete", 5, "b", "conflict"),
    (("complete", 5, "a"), "complete", 9, "b", "conflict"),
    (("complete", 5, "a"), "partial", 6, "b", "conflict"),
    (("partial", 5, "a"), "complete", 4, "b", "conflict"),
]


@pytest.mark.parametrize(("stored", "status", "steps", "digest", "expected"), UPLOAD_CASES)
def test_upload_decision_table(stored: Any, status: str, steps: int, digest: str, expected: str) -> None:
    assert upload_decision(stored, status, steps, digest) == expected


def test_concurrent_page_loads_get_distinct_attempts_and_one_set_of_seeds(new_db: Callable[..., Location]) -> None:
    async def body() -> list[Any]:
        writer = DataWriter(new_db(), experiment_id="exp")
        await writer.start()
        visits = await asyncio.gather(*(writer.issue_browser_attempt("p1", 0, "solo", [i, i], issued_at=1.0 + i)
                                        for i in range(5)))
        await writer.close()
        return visits

    visits = asyncio.run(body())
    assert sorted(len(v.attempts) for v in visits) == [1, 2, 3, 4, 5]
    assert len({v.seeds for v in visits}) == 1
