"""The groups a worker gathers from other workers: who is awaited, the one start, the deadline."""

from __future__ import annotations

from interactive_gym.server.cluster.gathering import GATHER_TIMEOUT_S, Gatherings


def test_a_group_completes_once_every_member_is_here_and_only_once() -> None:
    here = {"a"}
    gatherings = Gatherings()
    gatherings.begin("game", "g1", ["a", "b"], now=100.0)
    assert gatherings.complete("game", "a", here.__contains__) is None  # b is still on its way
    here.add("b")
    done = gatherings.complete("game", "b", here.__contains__)
    assert done is not None and done.members == ("a", "b") and done.group_id == "g1"
    assert gatherings.complete("game", "b", here.__contains__) is None  # a second arrival starts nothing
    assert len(gatherings) == 0


def test_a_gathering_belongs_to_its_scene_and_its_members() -> None:
    gatherings = Gatherings()
    gatherings.begin("game", "g1", ["a", "b"], now=0.0)
    assert gatherings.of("other_game", "a") is None
    assert gatherings.of("game", "c") is None
    assert gatherings.complete("other_game", "a", lambda pid: True) is None
    assert len(gatherings) == 1


def test_overdue_gatherings_are_returned_once_at_their_deadline() -> None:
    gatherings = Gatherings()
    gatherings.begin("game", "early", ["a", "b"], now=0.0)
    gatherings.begin("game", "late", ["c", "d"], now=5.0)
    assert gatherings.overdue(GATHER_TIMEOUT_S - 0.001) == []
    assert [g.group_id for g in gatherings.overdue(GATHER_TIMEOUT_S)] == ["early"]
    assert gatherings.overdue(GATHER_TIMEOUT_S) == []
    assert [g.group_id for g in gatherings.overdue(GATHER_TIMEOUT_S + 5.0)] == ["late"]


def test_a_group_formed_again_under_its_id_replaces_the_old_and_drop_forgets() -> None:
    gatherings = Gatherings()
    gatherings.begin("game", "g1", ["a", "b"], now=0.0)
    gatherings.begin("game", "g1", ["a", "c"], now=10.0, timeout_s=1.0)
    assert len(gatherings) == 1
    gathering = gatherings.of("game", "c")
    assert gathering is not None and gathering.deadline == 11.0 and gatherings.of("game", "b") is None
    gatherings.drop("g1")
    gatherings.drop("g1")  # twice is harmless
    assert len(gatherings) == 0
