"""PostgreSQL-only behaviour: start-up errors that say what to change, recovery after the server hangs up."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from postgres_server import PostgresServer

from interactive_gym.cli import main
from interactive_gym.server.storage import Storage, StorageError


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe is closed


def test_an_unreachable_server_is_a_clear_error() -> None:
    url = f"postgresql://ann:s3cret@127.0.0.1:{_closed_port()}/study"
    with pytest.raises(StorageError, match="cannot connect to PostgreSQL at postgresql://ann:\\*\\*\\*@") as caught:
        Storage(url, experiment_id="e")
    assert "Check that the server is running" in str(caught.value) and "s3cret" not in str(caught.value)


def test_a_malformed_url_is_a_clear_error() -> None:
    with pytest.raises(StorageError, match="is not a valid PostgreSQL URL .*postgresql://USER:PASSWORD@HOST"):
        Storage("postgresql://h/db?nonsense=1", experiment_id="e")


def test_a_missing_database_is_named(postgres_server: PostgresServer) -> None:
    with pytest.raises(StorageError, match='database "nowhere" does not exist.*createdb'):
        Storage(postgres_server.url("nowhere"), experiment_id="e")


def test_pragmas_are_refused_on_postgres(postgres_server: PostgresServer) -> None:
    with Storage(postgres_server.new_schema(), experiment_id="e") as storage:
        assert storage.engine == "postgresql"
        with pytest.raises(StorageError, match="PRAGMA journal_mode is an SQLite setting"):
            storage.pragma("journal_mode")


def test_the_writer_reconnects_after_the_server_closed_its_connection(postgres_server: PostgresServer) -> None:
    import psycopg

    url = postgres_server.new_schema()
    with Storage(url, experiment_id="e") as storage:
        storage.record_event("before")
        pid = storage._conn._raw.info.backend_pid  # noqa: SLF001 - the session to cut
        with psycopg.connect(postgres_server.url("tests"), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        with pytest.raises(StorageError):
            storage.record_event("lost with the connection")  # never acknowledged, so nothing to keep
        storage.record_event("after")  # the next transaction opens a new connection
        assert [e.kind for e in storage.events()] == ["before", "after"]


def test_run_refuses_to_start_on_an_unreachable_database(tmp_path: Path, capsys) -> None:
    experiment = tmp_path / "exp.py"
    experiment.write_text(
        "from interactive_gym import EndScene, RemoteConfig, Stager, StartScene\n"
        "config = RemoteConfig().experiment('pg_study', stager=Stager([StartScene('s'), EndScene('e')]))\n"
    )
    url = f"postgresql://ann:s3cret@127.0.0.1:{_closed_port()}/study"
    assert main(["run", str(experiment), "--db", url, "--skip-preflight", "--port", str(_closed_port())]) == 2
    err = capsys.readouterr().err
    assert "--db / config.experiment(db=...): cannot connect to PostgreSQL at postgresql://ann:***@" in err
    assert "s3cret" not in err


def test_steps_are_read_in_batches_not_all_at_once(postgres_server: PostgresServer) -> None:
    import numpy as np

    from interactive_gym.server.storage import StepRecord

    url = postgres_server.new_schema()
    steps = [StepRecord(t, np.zeros(4), {"a": 0}, {"a": 0.0}, False, False, {}, {"a": []}, float(t)) for t in
             range(1200)]
    with Storage(url, experiment_id="e") as storage:
        storage.write_episode(scene_id="s", game_id="g", episode=0, mode="browser", source="p", seed=1,
                              agents={"a": "p"}, steps=steps, status="complete")
    with Storage(url, readonly=True) as reader, reader.snapshot():
        rows = reader.iter_steps()
        assert next(rows)[1].t == 0
        open_cursors = "SELECT COUNT(*) FROM pg_cursors WHERE name LIKE 'ig_stream_%'"
        assert reader._conn.execute(open_cursors).fetchone()[0] == 1  # noqa: SLF001 - the server holds the rest
        assert [step.t for _, step in rows] == list(range(1, 1200))
        assert reader._conn.execute(open_cursors).fetchone()[0] == 0  # noqa: SLF001 - closed when done
