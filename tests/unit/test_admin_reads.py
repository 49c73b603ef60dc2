"""The dashboard's reader on both engines: rows since the last push, one participant's timeline."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from interactive_gym.server.admin.reads import StudyReader
from interactive_gym.server.storage import Location, Storage


def _study(db: Location) -> dict[str, int]:
    """Two participants, one server-mode game between them and one p2p episode uploaded by p1."""
    with Storage(db, experiment_id="reads", clock=lambda: 100.0) as storage:
        storage.upsert_participant("p1", url_params={"PROLIFIC_PID": "x1"}, status="active", current_scene="game")
        storage.upsert_participant("p2", status="completed", completion_code="C2")
        storage.record_scene("p1", "consent", 0, 90.0, 95.0, {"agree": True})
        first = storage.record_event("connected", {"sid": "a"}, participant_id="p1")
        storage.record_event("connected", {"sid": "b"}, participant_id="p2")
        server = storage.begin_episode(scene_id="game", game_id="g1", episode=0, mode="server", source="server",
                                       seed=7, agents={"agent_0": "p1", "agent_1": "ai"})
        p2p = storage.begin_episode(scene_id="game", game_id="g2", episode=0, mode="p2p", source="p1", seed=8,
                                    agents={"agent_0": "p1", "agent_1": "p2"}, meta={"frames": 3})
        unfinished = storage.begin_episode(scene_id="game", game_id="g3", episode=0, mode="p2p", source="p2",
                                           seed=9, agents={"agent_0": "p2"})
        storage.end_episode(p2p, status="complete")
        last = storage.record_event("left", None, participant_id="p1", game_id="g1", scene_id="game")
    return {"first_event": first, "last_event": last, "server": server, "p2p": p2p, "unfinished": unfinished}


def test_new_rows_are_the_rows_after_the_given_ids(new_db: Callable[..., Location]) -> None:
    db = new_db()
    ids = _study(db)
    reader = StudyReader(db)
    try:
        events, episodes = reader.new_rows(0, 0)
        assert [e["participant_id"] for e in events] == ["p1", "p2", "p1"]
        assert events[0]["data"] == {"sid": "a"} and events[-1]["data"] is None  # JSON decoded
        assert set(events[0]) == {"id", "ts", "participant_id", "game_id", "scene_id", "kind", "data"}
        # Only finished p2p episodes: not the server-mode one, not the one still in progress.
        assert [(e["id"], e["game_id"], e["meta"]["frames"]) for e in episodes] == [(ids["p2p"], "g2", 3)]
        later, none = reader.new_rows(ids["first_event"], ids["p2p"])
        assert [e["id"] for e in later][-1] == ids["last_event"] and ids["first_event"] not in {e["id"] for e in later}
        assert none == []
    finally:
        reader.close()


def test_timeline_of_one_participant(new_db: Callable[..., Location]) -> None:
    db = new_db()
    ids = _study(db)
    reader = StudyReader(db)
    try:
        timeline = reader.timeline("p1")
        assert timeline is not None
        assert timeline["participant"]["status"] == "active"
        assert timeline["participant"]["url_params"] == {"PROLIFIC_PID": "x1"}
        assert [e["kind"] for e in timeline["events"]] == ["connected", "left"]
        assert [(s["scene_id"], s["answers"]) for s in timeline["scenes"]] == [("consent", {"agree": True})]
        # The server-mode game names p1 among its agents; the p2p upload has p1 as its source.
        assert [e["id"] for e in timeline["episodes"]] == [ids["server"], ids["p2p"]]
        other = reader.timeline("p2")
        assert other is not None and other["participant"]["completion_code"] == "C2"
        # g2 names p2 among its agents; g3 has p2 as its source; g1 does not name p2.
        assert [e["id"] for e in other["episodes"]] == [ids["p2p"], ids["unfinished"]]
        assert reader.timeline("nobody") is None
    finally:
        reader.close()


def test_a_file_not_created_yet_reads_as_empty_until_it_exists(tmp_path: Path) -> None:
    db = tmp_path / "later.db"
    reader = StudyReader(db)
    try:
        assert reader.new_rows(0, 0) == ([], [])
        assert reader.timeline("p1") is None
        assert not db.exists()  # reading never creates the file
        _study(db)
        assert len(reader.new_rows(0, 0)[0]) == 3
    finally:
        reader.close()


def test_reads_from_several_threads_in_turn(new_db: Callable[..., Location]) -> None:
    db = new_db()
    _study(db)
    reader = StudyReader(db)
    results: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                results.append(len(reader.new_rows(0, 0)[0]))
                timeline = reader.timeline("p1")
                assert timeline is not None
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        reader.close()
    assert errors == [] and results == [3] * 80


def test_a_location_given_as_text_is_read(new_db: Callable[..., Location]) -> None:
    db = new_db()
    _study(db)
    reader = StudyReader(str(db))  # a URL or a path given as text, as the config holds it
    try:
        assert reader.timeline("p2") is not None
        assert len(reader.new_rows(0, 0)[0]) == 3
    finally:
        reader.close()
