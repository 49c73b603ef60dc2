"""Tests for interactive_gym.export and the ``interactive-gym export`` command: values round-trip via CSV."""

from __future__ import annotations

import csv
import json
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from interactive_gym.cli import main
from interactive_gym.export import default_out_dir, export_csv, flatten, to_plain
from interactive_gym.server.storage import Location, StepRecord, Storage, encode_step

FILES = ["participants.csv", "scenes.csv", "episodes.csv", "steps.csv", "agent_steps.csv", "events.csv"]
IMAGE = np.arange(32 * 32 * 3, dtype=np.uint8).reshape(32, 32, 3)  # large enough for the codec's base64 path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def server_step(t: int) -> StepRecord:
    return StepRecord(
        t=t,
        observation={
            "agent_0": np.array([t / 3, -1.5], dtype=np.float32),
            "agent_1": np.array([t], dtype=np.int64),
        },
        actions={"agent_0": t % 4, "agent_1": "noop"},
        rewards={"agent_0": np.float64(0.1 * t), "agent_1": math.nan if t == 1 else -1.0},
        terminated={"agent_0": False, "agent_1": t == 2},
        truncated={"agent_0": False, "agent_1": False},
        info={"score": t * 10, "pos": {"x": t, "y": (1, 2)}, "tag": 'héllo, "world"\n'},
        keys={"agent_0": ["ArrowUp", "Space"], "agent_1": []},
        server_ts=1000.0 + t / 30,
        client_ts=None,
    )


def image_step(t: int) -> StepRecord:
    return StepRecord(t, IMAGE + t, 3, 1.0, False, t == 1, {}, {"human": ["KeyW"]}, 2000.0 + t, 1999.5 + t)


def fill(path: Location) -> Location:
    """Writes the study every round-trip test reads back."""
    with Storage(path, experiment_id="my_study") as storage:
        storage.upsert_participant("p1", url_params={"PROLIFIC_PID": "abc", "STUDY_ID": "s1"})
        storage.upsert_participant("p2", url_params={}, status="completed", completion_code="DONE-7")
        storage.record_scene("p1", "consent", 0, 1.0, 2.5, {"agree": True})
        storage.record_scene(
            "p1",
            "survey",
            2,
            3.0,
            9.75,
            {"age": 31, "likes": ["a", "b"], "why": 'fun, "mostly"'},
            {"rt": 0.5},
        )
        server_episode = storage.begin_episode(
            scene_id="game", game_id="g1", episode=0, mode="server", source="server", seed=42,
            agents={"agent_0": "p1", "agent_1": "policy:greedy"}, meta={"fps": 30},
        )  # fmt: skip
        storage.insert_steps([(server_episode, encode_step(server_step(t))) for t in range(3)])
        storage.end_episode(server_episode, status="complete", meta={"tick_lateness": {"p95_ms": 1.25}})
        storage.write_episode(
            scene_id="solo", game_id="g2", episode=0, mode="browser", source="p2", seed=None, agents={"human": "p2"},
            steps=[image_step(t) for t in range(2)], status="partial", env_hash="f00d",
        )  # fmt: skip
        storage.record_event("disconnect", {"reason": "ping timeout", "after_s": 12.5}, participant_id="p1")
        storage.record_event("parity", {"verdict": "agree", "frames": [1, 2]}, game_id="g1", ts=77.0)
    return path


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """The study in an SQLite file inside an experiment folder (what the CLI is given)."""
    path = tmp_path / "study" / "data" / "my_study.sqlite"
    fill(path)
    return path


@pytest.fixture
def stored(new_db: Callable[..., Location]) -> Location:
    """The study on each engine in turn (SQLite file, PostgreSQL URL)."""
    return fill(new_db("my_study"))


def export(database: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> list[str]:
    assert main(["export", str(database), "--format", "csv", "--out", str(out)]) == 0
    return capsys.readouterr().out.splitlines()


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_writes_every_file_and_prints_one_line_each(database: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "csv"
    lines = export(database, out, capsys)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)  # no leftover temporary files
    assert len(lines) == len(FILES)
    expected_rows = {
        "participants.csv": 2,
        "scenes.csv": 2,
        "episodes.csv": 2,
        "steps.csv": 5,
        "agent_steps.csv": 3 * 2 + 2 * 1,  # server episode: 3 steps x 2 agents; browser: 2 steps x 1 agent
        "events.csv": 2,
    }
    for line, name in zip(lines, FILES, strict=True):
        assert line == f"wrote {out / name} ({expected_rows[name]} rows)"
        assert len(read_csv(out / name)) == expected_rows[name]


def test_experiment_folder_and_default_out_dir(database: Path, capsys) -> None:
    study_dir = database.parent.parent
    assert main(["export", str(study_dir)]) == 0
    out = default_out_dir(database)
    assert out == database.parent / "my_study_csv"
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert capsys.readouterr().out.count("wrote ") == len(FILES)


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("text_file", "not a usable SQLite database"),
        ("foreign_sqlite", "not an interactive-gym one"),
        ("empty_dir", "no database (*.db, *.sqlite, *.sqlite3) in"),
        ("two_dbs", "several databases in"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path: Path, capsys, setup: str, message: str) -> None:
    target = tmp_path / "input"
    if setup == "text_file":
        target.write_text("hello\n" * 300)
    elif setup == "foreign_sqlite":
        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE x (y)")
        conn.commit()
        conn.close()
    elif setup in ("empty_dir", "two_dbs"):
        target.mkdir()
        if setup == "two_dbs":
            for name in ("a.sqlite", "b.db"):
                Storage(target / name).close()
    assert main(["export", str(target), "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("interactive-gym export: error: ")
    assert message in captured.err and captured.err.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_unknown_format_is_a_user_error(database: Path, tmp_path: Path, capsys) -> None:
    assert main(["export", str(database), "--format", "parquet", "--out", str(tmp_path / "o")]) == 2
    assert "unknown format 'parquet'; choose one of: csv" in capsys.readouterr().err


def test_out_must_be_a_folder(database: Path, tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["export", str(database), "--out", str(blocker)]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------- values


def test_participants_and_scenes_round_trip(stored: Location, tmp_path: Path) -> None:
    export_csv(stored, tmp_path)
    p1, p2 = read_csv(tmp_path / "participants.csv")
    assert (p1["participant_id"], p1["status"], p1["experiment_id"]) == ("p1", "active", "my_study")
    assert (p1["url_param.PROLIFIC_PID"], p1["url_param.STUDY_ID"], p1["completion_code"]) == (
        "abc",
        "s1",
        "",
    )
    assert (p2["status"], p2["completion_code"], p2["url_param.PROLIFIC_PID"]) == ("completed", "DONE-7", "")
    consent, survey = read_csv(tmp_path / "scenes.csv")
    assert consent["answer.agree"] == "True" and consent["answer.age"] == ""
    assert (float(survey["started_at"]), float(survey["ended_at"])) == (3.0, 9.75)
    assert survey["answer.age"] == "31" and json.loads(survey["answer.likes"]) == ["a", "b"]
    assert survey["answer.why"] == 'fun, "mostly"' and float(survey["meta.rt"]) == 0.5


def test_episodes_round_trip(stored: Location, tmp_path: Path) -> None:
    export_csv(stored, tmp_path)
    server, browser = read_csv(tmp_path / "episodes.csv")
    assert (server["mode"], server["source"], server["seed"], server["status"]) == (
        "server",
        "server",
        "42",
        "complete",
    )
    assert (server["agent.agent_0"], server["agent.agent_1"], server["step_count"]) == (
        "p1",
        "policy:greedy",
        "3",
    )
    assert server["meta.fps"] == "30" and float(server["meta.tick_lateness.p95_ms"]) == 1.25
    assert (browser["seed"], browser["env_hash"], browser["status"], browser["agent.human"]) == (
        "",
        "f00d",
        "partial",
        "p2",
    )


def test_steps_round_trip_exactly(stored: Location, tmp_path: Path) -> None:
    export_csv(stored, tmp_path)
    rows = read_csv(tmp_path / "steps.csv")
    server_rows = [r for r in rows if r["game_id"] == "g1"]
    assert [int(r["t"]) for r in server_rows] == [0, 1, 2]
    for row in server_rows:
        original = server_step(int(row["t"]))
        assert row["mode"] == "server" and row["episode"] == "0" and row["scene_id"] == "game"
        for agent in ("agent_0", "agent_1"):
            restored = np.array(
                json.loads(row[f"observation.{agent}"]), dtype=original.observation[agent].dtype
            )
            assert restored.tobytes() == original.observation[agent].tobytes()
        assert int(row["action.agent_0"]) == original.actions["agent_0"] and row["action.agent_1"] == "noop"
        assert float(row["reward.agent_0"]) == original.rewards["agent_0"]  # exact, not approximate
        reward_1 = float(row["reward.agent_1"])
        assert math.isnan(reward_1) if original.t == 1 else reward_1 == -1.0
        assert row["terminated.agent_1"] == str(original.terminated["agent_1"])
        assert int(row["info.score"]) == original.t * 10 and int(row["info.pos.x"]) == original.t
        assert json.loads(row["info.pos.y"]) == [1, 2] and row["info.tag"] == original.info["tag"]
        assert (
            json.loads(row["keys.agent_0"]) == ["ArrowUp", "Space"] and json.loads(row["keys.agent_1"]) == []
        )
        assert float(row["server_ts"]) == original.server_ts and row["client_ts"] == ""
        assert row["observation"] == ""  # dict observations live in observation.<agent>
    image_rows = [r for r in rows if r["game_id"] == "g2"]
    for row in image_rows:
        original = image_step(int(row["t"]))
        assert np.array_equal(np.array(json.loads(row["observation"]), dtype=np.uint8), original.observation)
        assert row["action"] == "3" and row["reward"] == "1.0" and row["truncated"] == str(original.truncated)
        assert float(row["client_ts"]) == original.client_ts and row["observation.agent_0"] == ""


def test_events_keep_their_data_as_json(stored: Location, tmp_path: Path) -> None:
    export_csv(stored, tmp_path)
    disconnect, parity = read_csv(tmp_path / "events.csv")
    assert (disconnect["kind"], disconnect["participant_id"], disconnect["game_id"]) == (
        "disconnect",
        "p1",
        "",
    )
    assert json.loads(disconnect["data"]) == {"reason": "ping timeout", "after_s": 12.5}
    assert float(parity["ts"]) == 77.0 and json.loads(parity["data"]) == {
        "verdict": "agree",
        "frames": [1, 2],
    }


def test_export_sees_committed_data_while_the_writer_is_open(new_db: Callable[..., Location], tmp_path: Path) -> None:
    path = new_db("live")
    with Storage(path, experiment_id="live") as storage:
        storage.record_event("hello", {"n": 1})  # committed, still only in the WAL file
        written = dict(export_csv(path, tmp_path / "out"))
        assert written[tmp_path / "out" / "events.csv"] == 1
        assert read_csv(tmp_path / "out" / "events.csv")[0]["kind"] == "hello"


def test_empty_database_exports_headers_only(new_db: Callable[..., Location], tmp_path: Path) -> None:
    path = new_db("empty")
    Storage(path).close()
    written = export_csv(path, tmp_path / "out")
    assert [rows for _, rows in written] == [0] * len(FILES)
    header = (tmp_path / "out" / "steps.csv").read_text().splitlines()[0]
    assert header == "episode_id,game_id,scene_id,scene_index,attempt,episode,source,mode,t,server_ts,client_ts"
    header = (tmp_path / "out" / "agent_steps.csv").read_text().splitlines()[0]
    assert header.startswith("episode_id,agent,participant_id,controller,game_id,scene_id,scene_index,attempt")


# -------------------------------------------------------------------------------------- flattening


def test_flatten_rules() -> None:
    assert flatten("action", 3) == {"action": 3}
    assert flatten("action", {0: 1, 1: np.int8(2)}) == {"action.0": 1, "action.1": 2}
    assert flatten("info", {}) == {}
    assert flatten("info", {"a": {"b": {"c": None}}, "d": {}}) == {"info.a.b.c": None, "info.d": "{}"}
    assert flatten("obs", np.array([[1, 2]])) == {"obs": "[[1, 2]]"}
    assert flatten("x", {"t": (1.5, math.inf)}) == {"x.t": "[1.5, Infinity]"}


def test_flatten_keeps_colliding_fields_whole() -> None:
    value = {"a.b": 1, "a": {"b": 2}}
    assert flatten("info", value) == {"info": '{"a.b": 1, "a": {"b": 2}}'}


def test_to_plain_converts_every_codec_type() -> None:
    value = {1: (b"\x00\x01", np.float32(0.5)), "c": 1 + 2j, "d": np.datetime64("2024-01-02")}
    assert to_plain(value) == {"1": ["AAE=", 0.5], "c": "(1+2j)", "d": "2024-01-02"}


# ------------------------------------------------------------------------- joining by participant, attempts


def _browser_attempts(path: Path) -> None:
    with Storage(path, experiment_id="join") as storage:
        storage.upsert_participant("p9")
        storage.issue_browser_attempt("p9", 2, "solo", [5])
        for attempt, status in ((1, "partial"), (2, "complete")):
            storage.write_episode(
                scene_id="solo", game_id=f"p9:2:{attempt}", episode=0, mode="browser", source="p9", seed=5,
                agents={"human": "p9", "bot": "policy:greedy"}, status=status, scene_index=2, attempt=attempt,
                steps=[StepRecord(0, [0], {"human": 1, "bot": 2}, {"human": 0.5, "bot": 0.0}, {"human": True},
                                  {}, {}, {"human": ["KeyW"]}, 50.0 + attempt, 49.0 + attempt)],
                started_at=49.5, ended_at=51.0, received_at=60.0 + attempt, clock_offset=1.0,
            )  # fmt: skip


def test_agent_steps_carry_the_participant_of_each_agent_and_the_attempt(tmp_path: Path) -> None:
    path = tmp_path / "join.sqlite"
    _browser_attempts(path)
    export_csv(path, tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "agent_steps.csv")
    assert [(r["attempt"], r["agent"], r["participant_id"], r["controller"], r["action"]) for r in rows] == [
        ("1", "human", "p9", "p9", "1"), ("1", "bot", "", "policy:greedy", "2"),
        ("2", "human", "p9", "p9", "1"), ("2", "bot", "", "policy:greedy", "2"),
    ]  # fmt: skip
    assert {r["scene_index"] for r in rows} == {"2"} and rows[0]["keys"] == '["KeyW"]'
    assert rows[0]["terminated"] == "True" and rows[1]["terminated"] == ""
    episodes = read_csv(tmp_path / "out" / "episodes.csv")
    assert [(e["attempt"], e["status"], e["received_at"], e["clock_offset"]) for e in episodes] == [
        ("1", "partial", "61.0", "1.0"), ("2", "complete", "62.0", "1.0"),
    ]  # fmt: skip
    steps = read_csv(tmp_path / "out" / "steps.csv")
    assert [(s["attempt"], s["server_ts"], s["client_ts"]) for s in steps] == [("1", "51.0", "50.0"),
                                                                              ("2", "52.0", "51.0")]


def test_data_load_gives_dataframes_with_the_csv_columns(tmp_path: Path) -> None:
    import pandas as pd  # the data extra, installed with the test tools (scripts/bootstrap.sh)

    from interactive_gym.data import load

    path = tmp_path / "join.sqlite"
    _browser_attempts(path)
    tables = load(path)
    export_csv(path, tmp_path / "out")
    assert set(tables) == {f.removesuffix(".csv") for f in FILES}
    for name, frame in tables.items():
        assert isinstance(frame, pd.DataFrame)
        with (tmp_path / "out" / f"{name}.csv").open(newline="") as handle:
            assert list(frame.columns) == next(csv.reader(handle)), name
    joined = tables["agent_steps"].merge(tables["participants"], on="participant_id")
    assert list(joined["agent"]) == ["human", "human"] and set(joined["attempt"]) == {1, 2}


def test_find_database_takes_a_postgres_url_as_it_is_and_names_a_mangled_one(tmp_path: Path) -> None:
    from interactive_gym.export import ExportError, find_database

    assert find_database("postgresql://ann@db.example/study") == "postgresql://ann@db.example/study"
    with pytest.raises(ExportError, match="lost a slash"):
        find_database(Path("postgresql://ann@db.example/study"))  # what type=Path makes of the URL
    assert default_out_dir("postgresql://ann@db.example/study") == Path("study_csv")
