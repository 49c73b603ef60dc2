"""The p2p coordinator's state rules: membership for signaling, one game per participant, grace, parity."""

from __future__ import annotations

import pytest

from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator


def _game(coord: PyodideGameCoordinator, a: str = "alice", b: str = "bob"):
    return coord.create_game("duo", [(a, f"sid-{a}"), (b, f"sid-{b}")], ["agent_0", "agent_1"], now=0.0, seed=42)


def test_membership_answers_only_for_members_of_the_same_game() -> None:
    coord = PyodideGameCoordinator()
    g1 = _game(coord)
    g2 = _game(coord, "carol", "dave")
    assert coord.member_of("sid-alice") == (g1.game_id, 0)
    assert coord.member_of("sid-dave") == (g2.game_id, 1)
    assert coord.member_of("sid-nobody") is None
    assert coord.sid_of(g1.game_id, 1) == "sid-bob"
    assert coord.sid_of(g1.game_id, 5) is None
    assert coord.sid_of("p2p-unknown", 0) is None


def test_nobody_is_put_in_two_games() -> None:
    coord = PyodideGameCoordinator()
    _game(coord)
    with pytest.raises(ValueError, match="already in game"):
        _game(coord, "alice", "erin")


def test_ready_payload_is_per_player_and_carries_turn_config() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    turn = {"username": "u", "credential": "c", "force_relay": True, "urls": ["turn:x"], "expires_at": None}
    payload = coord.ready_payload(game, 1, turn, [{"urls": ["turn:x"], "username": "u", "credential": "c"}], {})
    assert payload["my_player_id"] == 1
    assert payload["players"] == [0, 1]
    assert "player_subjects" not in payload  # a page never learns another participant's id
    assert "alice" not in repr(payload) and "bob" not in repr(payload)
    assert payload["seed"] == 42 and payload["turn_config"] == turn


def test_partner_gone_past_grace_is_reported_once_to_the_players_still_there() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    assert coord.disconnected("bob", now=10.0) is game
    assert coord.member_of("sid-bob") is None
    assert coord.overdue(now=12.0, grace_s={"duo": 5.0}) == []
    [(reported, stay)] = coord.overdue(now=15.0, grace_s={"duo": 5.0})
    assert reported is game and stay == [0]
    assert coord.overdue(now=20.0, grace_s={"duo": 5.0}) == []


def test_game_is_removed_when_every_player_is_finished_or_gone() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    assert coord.finish_player(game, "alice") is False
    assert coord.game_of("alice") is None and coord.game_of("bob") is game
    assert coord.finish_player(game, "bob") is True
    assert game.game_id not in coord.games
    _game(coord)  # both may play again in a later scene


def test_parity_verdict_once_every_peer_uploaded() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    steps = [{"t": 0, "actions": {"agent_0": 1}, "rewards": {}, "terminated": {}, "truncated": {}, "checksum": "a"}]
    assert coord.add_upload(game, 0, "alice", steps, partial=False) is None
    verdict = coord.add_upload(game, 0, "bob", [dict(steps[0], checksum="b")], partial=False)
    assert verdict is not None and not verdict.agree and verdict.first_mismatch["field"] == "checksum"
    assert 0 not in game.uploads  # steps released once judged


def test_a_returning_socket_is_reattached_and_its_grace_forgotten() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    coord.disconnected("bob", now=10.0)
    assert coord.reattach("bob", "sid-bob-2") is game
    assert coord.member_of("sid-bob-2") == (game.game_id, 1) and coord.member_of("sid-bob") is None
    assert coord.sid_of(game.game_id, 1) == "sid-bob-2"
    assert coord.overdue(now=100.0, grace_s={"duo": 5.0}) == []  # nobody is gone any more


def test_a_finished_player_is_not_reattached() -> None:
    coord = PyodideGameCoordinator()
    game = _game(coord)
    coord.finish_player(game, "bob")
    assert coord.reattach("bob", "sid-bob-2") is None
    assert coord.reattach("nobody", "sid-x") is None
