"""The per-step ``controllers`` column (steps an AI played after a partner dropped out): stored, migrated, exported."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from interactive_gym.export import export_csv
from interactive_gym.server.storage import Location, StepRecord, Storage, encode_step
from interactive_gym.server.storage_schema import MIGRATIONS


def step(t: int, controllers: dict[str, str] | None = None) -> StepRecord:
    return StepRecord(t, {"a": t}, {"agent_0": 1, "agent_1": 2}, {"agent_0": 0.0, "agent_1": 0.0},
                      {"agent_0": False, "agent_1": False}, {"agent_0": False, "agent_1": False}, {},
                      {"agent_0": ["ArrowUp"], "agent_1": []}, 100.0 + t, None, controllers)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


TAKEN = {"agent_1": "ai-takeover:greedy_policy"}


def store_game(storage: Storage) -> int:
    storage.upsert_participant("p0")
    storage.upsert_participant("p1")
    return storage.write_episode(scene_id="s", game_id="g", episode=0, mode="server", source="server", seed=1,
                                 agents={"agent_0": "p0", "agent_1": "p1"}, status="partial",
                                 steps=[step(0), step(1), step(2, TAKEN), step(3, TAKEN)], started_at=1.0,
                                 ended_at=2.0)


def test_controllers_round_trip_and_are_none_where_not_set(new_db: Callable[..., Location]) -> None:
    with Storage(new_db("x"), experiment_id="e") as storage:
        episode_id = store_game(storage)
        assert [s.controllers for s in storage.steps(episode_id)] == [None, None, TAKEN, TAKEN]


@pytest.mark.parametrize("bad", [["agent_1"], {"agent_1": 3}, {1: "ai-takeover:x"}])
def test_bad_controllers_are_refused_naming_the_step(bad: object) -> None:
    with pytest.raises(ValueError, match="step 4 controllers must be a dict of agent id -> controller text"):
        encode_step(step(4, bad))  # type: ignore[arg-type]


def test_an_empty_controllers_dict_is_stored_as_none() -> None:
    assert encode_step(step(0, {})).controllers is None


def test_a_version_2_database_gains_the_column_and_keeps_its_steps(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
    for version, statements in MIGRATIONS[:2]:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    conn.execute("INSERT INTO episodes (experiment_id, scene_id, game_id, episode, mode, source, status, started_at)"
                 " VALUES ('e', 's', 'g', 0, 'server', 'server', 'complete', 1)")
    conn.execute("INSERT INTO steps VALUES (1, 0, '{}', '{}', '{}', '{}', '{}', 'null', '{}', 1.0, NULL)")
    conn.commit()
    conn.close()
    with Storage(path, experiment_id="e") as storage:
        assert storage.schema_version == 3
        (old,) = storage.steps(1)
        assert (old.t, old.controllers) == (0, None)


def test_export_says_ai_takeover_for_the_taken_frames_only(new_db: Callable[..., Location], tmp_path: Path) -> None:
    path = new_db("x")
    with Storage(path, experiment_id="e") as storage:
        store_game(storage)
    export_csv(path, tmp_path / "out")
    agent_rows = read_csv(tmp_path / "out" / "agent_steps.csv")
    assert [(r["t"], r["agent"], r["participant_id"], r["controller"]) for r in agent_rows] == [
        ("0", "agent_0", "p0", "p0"), ("0", "agent_1", "p1", "p1"),
        ("1", "agent_0", "p0", "p0"), ("1", "agent_1", "p1", "p1"),
        ("2", "agent_0", "p0", "p0"), ("2", "agent_1", "", "ai-takeover:greedy_policy"),
        ("3", "agent_0", "p0", "p0"), ("3", "agent_1", "", "ai-takeover:greedy_policy"),
    ]  # fmt: skip
    steps = read_csv(tmp_path / "out" / "steps.csv")
    assert [s["controller.agent_1"] for s in steps] == ["", "", "ai-takeover:greedy_policy",
                                                        "ai-takeover:greedy_policy"]
    assert "controller.agent_0" not in steps[0]


def test_export_without_takeovers_has_no_controller_columns_in_steps(new_db: Callable[..., Location], tmp_path: Path) -> None:
    path = new_db("x")
    with Storage(path, experiment_id="e") as storage:
        storage.write_episode(scene_id="s", game_id="g", episode=0, mode="server", source="server", seed=1,
                              agents={"agent_0": "p0", "agent_1": "p1"}, status="complete", steps=[step(0)],
                              started_at=1.0, ended_at=2.0)
    export_csv(path, tmp_path / "out")
    (row,) = read_csv(tmp_path / "out" / "steps.csv")
    assert not [c for c in row if c.startswith("controller")]
