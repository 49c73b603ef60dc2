"""The command-line tools given either engine's database: export and replay read a ``postgresql://`` URL
as they read an SQLite file; backup refuses a URL and names PostgreSQL's own tool."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import pytest
from test_export import FILES, fill
from test_replay_cli import experiment, play_server_episode, replay_json  # noqa: F401 - experiment: a fixture

from interactive_gym.cli import main
from interactive_gym.server.storage import Location


def test_export_cli_writes_the_same_files_on_either_engine(new_db: Callable[..., Location], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    db = fill(new_db("my_study"))
    out = tmp_path / "csv"
    assert main(["export", str(db), "--out", str(out)]) == 0
    assert [line.split(" ")[1] for line in capsys.readouterr().out.splitlines()] == [str(out / f) for f in FILES]
    with (out / "participants.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["participant_id"], r["completion_code"]) for r in rows] == [("p1", ""), ("p2", "DONE-7")]


def test_export_cli_names_a_url_that_lost_a_slash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "postgresql:/user@host/study", "--out", str(tmp_path / "o")]) == 2
    assert "lost a slash" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("db", ["postgresql://ig:secret@db.example.org:5432/study", "postgres://h/study",
                                "postgresql:/h/study"])
def test_backup_refuses_a_postgresql_database_and_names_pg_dump(db: str, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "copy.sqlite"
    assert main(["backup", db, str(out)]) == 2
    err = capsys.readouterr().err
    assert "pg_dump -Fc DATABASE > FILE" in err and "secret" not in err
    assert not out.exists()


def test_replay_reads_an_episode_from_either_engine(experiment: Path, new_db: Callable[..., Location],  # noqa: F811
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    db = new_db("replay")
    assert play_server_episode(experiment, db) == 40  # type: ignore[arg-type]
    code, report = replay_json(capsys, str(db), "--participant", "P1", "--episode", "0",
                               "--experiment", str(experiment))
    assert code == 0, report
    assert report["mode"] == "server" and report["match"] is True
    assert report["replays"][0]["replayed"] == 40


def test_replay_of_a_missing_file_or_unknown_episode_is_a_usage_error(new_db: Callable[..., Location], tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "missing.sqlite"), "--participant", "P1", "--episode", "0"]) == 2
    assert "database not found" in capsys.readouterr().err
    db = fill(new_db("empty"))
    assert main(["replay", str(db), "--participant", "nobody", "--episode", "0"]) == 2
    assert "no episode 0 of participant 'nobody'" in capsys.readouterr().err
