"""The dashboard's live view from fakes of the experiment's state, the tally of new database rows, the bounded
history, and the p2p connection figures."""

from __future__ import annotations

from types import SimpleNamespace

from interactive_gym.server.admin.snapshot import (
    MAX_RECENT_ERRORS,
    History,
    StudyTally,
    build_snapshot,
    p2p_figures,
)
from interactive_gym.server.flow.participants import Status
from interactive_gym.server.game_clock import LatenessStats
from interactive_gym.server.waiting_room import WaitingRoom


def participant(pid: str, scene: str, status: Status, connected: bool = True) -> SimpleNamespace:
    return SimpleNamespace(participant_id=pid, scene=SimpleNamespace(scene_id=scene), index=1, status=status,
                           connected=connected)


class Registry:
    def __init__(self, people: list[SimpleNamespace]) -> None:
        self.people = people

    def all(self) -> list[SimpleNamespace]:
        return list(self.people)

    def __len__(self) -> int:
        return len(self.people)


def experiment() -> SimpleNamespace:
    people = [participant("a", "consent", Status.ACTIVE), participant("b", "game", Status.ACTIVE, connected=False),
              participant("c", "end", Status.COMPLETED), participant("d", "end", Status.TIMED_OUT),
              participant("e", "end", Status.ERRORED), participant("f", "game", Status.DROPPED, connected=False)]
    room = WaitingRoom(2, 60.0)
    room.join("w1", 100.0)
    room.join("w2", 104.0, present=False)
    stats = LatenessStats()
    for ms in (1, 2, 3):
        stats.add(ms / 1000)
    runner = SimpleNamespace(game=SimpleNamespace(scene=SimpleNamespace(scene_id="game"), humans={"agent_1": "y",
                                                   "agent_0": "x"}, episode=0, t=17), stats=stats)
    p2p_game = SimpleNamespace(scene_id="duo", players={1: "q", 0: "p"}, sids={0: "s0", 1: None})
    return SimpleNamespace(
        registry=Registry(people),
        server_mode=SimpleNamespace(rooms=SimpleNamespace(rooms={"game": room, "empty": WaitingRoom(2, 5.0)}),
                                    runners={"g-1": runner}),
        p2p_mode=SimpleNamespace(rooms=SimpleNamespace(rooms={}), coordinator=SimpleNamespace(games={"p2p-1": p2p_game})))


def test_snapshot_counts_participants_rooms_and_games() -> None:
    tally = StudyTally()
    tally.add_events([{"id": 3, "ts": 1.0, "kind": "game_error", "participant_id": "e", "game_id": "g-0",
                       "scene_id": "game", "data": {"error": "Traceback ...\nValueError: boom"}},
                      {"id": 4, "ts": 2.0, "kind": "p2p_parity", "game_id": "p2p-1", "data": {"agree": False}},
                      {"id": 5, "ts": 2.0, "kind": "visibility", "participant_id": "a", "data": {"visible": True}}])
    tally.add_episodes([{"id": 9, "game_id": "p2p-1", "mode": "p2p", "meta": {"network": {
        "connection": {"type": "relay"}, "netcode_rtt_ms": {"p50": 42.5, "p99": 80.0}, "rollbacks": 7, "desyncs": 0, "packets": {"sent_relay": 0}}}}])
    view = build_snapshot(experiment(), tally, History(), now=1000.0, monotonic=110.0, enrolment_open=False,
                          unauthorized=3, with_history=True)
    p = view["participants"]
    assert p["total"] == 6
    assert p["by_status"] == {"active": 2, "completed": 1, "timed_out": 1, "errored": 1, "dropped": 1}
    assert p["by_scene"]["game"] == {"active": 1, "dropped": 1}
    assert p["by_scene"]["consent"] == {"active": 1, "connected": 1}
    assert [r["participant_id"] for r in p["recent"]] == ["f", "e", "d", "c", "b", "a"]
    assert view["waiting"] == [{"mode": "server", "scene_id": "game", "needed": 2, "timeout_s": 60.0, "waiters": [
        {"participant_id": "w1", "waited_s": 10.0, "present": True},
        {"participant_id": "w2", "waited_s": 6.0, "present": False}]}]
    server, p2p = view["games"]
    assert server["players"] == ["x", "y"] and server["t"] == 17 and server["lateness"]["ticks"] == 3
    assert server["lateness"]["max_ms"] == 3.0
    assert p2p["players"] == ["p", "q"] and p2p["connected"] == 1
    assert (p2p["connection"], p2p["rtt_ms"], p2p["rollbacks"], p2p["desyncs"]) == ("relay", 42.5, 7.0, 1)
    assert view["counts"] == {"completed": 1, "excluded": 2, "dropped": 1, "errors": 1}
    assert view["errors"][0]["text"].endswith("ValueError: boom")
    assert view["history"]["completed"] == [1.0] and view["history"]["t"] == [1000.0]
    assert view["enrolment_open"] is False and view["unauthorized"] == 3
    assert tally.last_event_id == 5 and tally.last_episode_id == 9


def test_history_only_when_asked() -> None:
    view = build_snapshot(experiment(), StudyTally(), History(), now=1.0, monotonic=1.0, enrolment_open=True,
                          unauthorized=0, with_history=False)
    assert "history" not in view and view["history_version"] == 1


def test_recent_errors_are_bounded_and_newest_kept() -> None:
    tally = StudyTally()
    tally.add_events([{"id": i, "ts": float(i), "kind": "game_error", "data": {"error": f"e{i}"}} for i in range(1, 60)])
    assert tally.error_count == 59
    assert len(tally.errors) == MAX_RECENT_ERRORS and tally.errors[-1]["text"] == "e59"


def test_history_samples_once_per_interval_and_halves_when_full() -> None:
    history = History(limit=4, interval_s=10.0)
    added = [history.add(t, {"completed": int(t)}) for t in (0, 5, 10, 20, 30)]
    assert added == [True, False, True, True, True]
    assert len(history.samples) == 4 and history.interval_s == 10.0
    assert history.add(40, {"completed": 40})  # full: every other sample dropped, interval doubled
    assert history.columns()["t"] == [0.0, 20.0, 40.0] and history.interval_s == 20.0
    assert not history.add(50, {})


def test_p2p_connection_kinds() -> None:
    # The type is what the upload stores for the game (p2p_stats.js: its worst link).
    assert p2p_figures({"connection": {"type": "direct"}})["connection"] == "direct"
    assert p2p_figures({"connection": {"type": "relay"}})["connection"] == "relay"
    assert p2p_figures({"connection": {"type": "server_relay"}})["connection"] == "server fallback"
    # The opening "connecting" fallback period every game has is not a server fallback.
    assert p2p_figures({"connection": {"type": "direct"}, "fallback_periods": [{"peer": 1}]})["connection"] == "direct"
    assert p2p_figures({})["connection"] is None
    assert p2p_figures({"connection": {"type": "<b>x</b>"}})["connection"] is None
    assert p2p_figures({"netcode_rtt_ms": {"p50": 12.0}})["rtt_ms"] == 12.0
    assert p2p_figures({"netcode_rtt_ms": {"p50": True}, "rollbacks": "7"})["rtt_ms"] is None
