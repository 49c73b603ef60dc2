"""SignalingRelay: forwarding only within a game, payload validation, rejection counting."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interactive_gym.server.signaling import (
    MAX_CANDIDATE_BYTES,
    MAX_RELAY_BYTES,
    MAX_SDP_BYTES,
    Forward,
    Reason,
    Rejection,
    SignalingRelay,
    decide_input_relay,
    decide_signal,
)


class Table:
    """Two games: g1 = {0: a, 1: b, 2: c}, g2 = {0: x, 1: y}; "lobby" is connected but in no game."""

    def __init__(self) -> None:
        self.games = {"g1": {0: "a", 1: "b", 2: "c"}, "g2": {0: "x", 1: "y"}}

    def member_of(self, sid: str) -> tuple[str, int] | None:
        for game, players in self.games.items():
            for pid, psid in players.items():
                if psid == sid:
                    return game, pid
        return None

    def sid_of(self, game_id: str, player_id: int) -> str | None:
        return self.games.get(game_id, {}).get(player_id)


class FakeSio:
    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.sent: list[tuple[str, Any, str]] = []

    def on(self, event: str, handler: Any, namespace: str | None = None) -> None:
        self.handlers[event] = handler

    async def emit(self, event: str, data: Any, to: str, namespace: str | None = None) -> None:
        self.sent.append((event, data, to))


OFFER = {"type": "offer", "sdp": "v=0\r\n"}
CAND = {"candidate": "candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


def signal(**over: Any) -> dict[str, Any]:
    base = {"game_id": "g1", "to_player": 1, "kind": "offer", "data": OFFER}
    base.update(over)
    return base


def test_offer_answer_ice_restart_are_forwarded_with_the_senders_own_identity() -> None:
    t = Table()
    d = decide_signal("a", signal(gen=3), t)
    assert d == Forward("b", "webrtc_signal", {"game_id": "g1", "from_player": 0, "kind": "offer", "data": OFFER,
                                               "gen": 3})
    d = decide_signal("b", signal(to_player=0, kind="answer", data={"type": "answer", "sdp": "v=0"}), t)
    assert isinstance(d, Forward) and d.to_sid == "a" and d.payload["from_player"] == 1 and d.payload["gen"] == 0
    d = decide_signal("c", signal(to_player=0, kind="ice", data={**CAND, "extra": "dropped"}), t)
    assert isinstance(d, Forward) and d.payload["data"] == {**CAND, "usernameFragment": None}
    assert isinstance(decide_signal("b", signal(to_player=0, kind="ice", data=None), t), Forward)
    d = decide_signal("b", signal(to_player=0, kind="restart", data=None), t)
    assert isinstance(d, Forward) and d.payload["kind"] == "restart"


def test_sender_claiming_another_identity_is_ignored() -> None:
    # A from_player in the payload is not trusted: the membership table says who the sender is.
    d = decide_signal("c", signal(from_player=0), Table())
    assert isinstance(d, Forward) and d.payload["from_player"] == 2


@pytest.mark.parametrize(
    ("sid", "payload", "reason"),
    [
        ("lobby", signal(), Reason.NOT_IN_GAME),
        ("x", signal(), Reason.WRONG_GAME),  # x is in g2, targets g1's player 1
        ("x", signal(game_id="g2", to_player=0), Reason.SELF_TARGET),
        ("a", signal(to_player=5), Reason.UNKNOWN_PLAYER),
        ("a", signal(to_player=64), Reason.MALFORMED),
        ("a", signal(to_player=-1), Reason.MALFORMED),
        ("a", signal(to_player=True), Reason.MALFORMED),
        ("a", signal(to_player="1"), Reason.MALFORMED),
        ("a", signal(game_id=None), Reason.MALFORMED),
        ("a", signal(game_id="g" * 129), Reason.MALFORMED),
        ("a", signal(kind="hello"), Reason.MALFORMED),
        ("a", signal(gen=-1), Reason.MALFORMED),
        ("a", signal(gen=1.5), Reason.MALFORMED),
        ("a", signal(data={"type": "answer", "sdp": "v=0"}), Reason.MALFORMED),
        ("a", signal(data={"type": "offer", "sdp": ""}), Reason.MALFORMED),
        ("a", signal(data="v=0"), Reason.MALFORMED),
        ("a", signal(data={"type": "offer", "sdp": "v" * (MAX_SDP_BYTES + 1)}), Reason.TOO_LARGE),
        ("a", signal(kind="ice", data={"candidate": "c" * (MAX_CANDIDATE_BYTES + 1)}), Reason.TOO_LARGE),
        ("a", signal(kind="ice", data={"candidate": 5}), Reason.MALFORMED),
        ("a", signal(kind="ice", data={**CAND, "sdpMLineIndex": -2}), Reason.MALFORMED),
        ("a", signal(kind="ice", data={**CAND, "sdpMid": ["0"]}), Reason.MALFORMED),
        ("a", signal(kind="restart", data={"x": 1}), Reason.MALFORMED),
        ("a", None, Reason.MALFORMED),
        ("a", ["g1", 1], Reason.MALFORMED),
    ],
)
def test_invalid_or_unauthorised_signals_are_rejected(sid, payload, reason) -> None:
    d = decide_signal(sid, payload, Table())
    assert isinstance(d, Rejection) and d.reason is reason and d.message


def test_sdp_exactly_at_the_limit_is_accepted() -> None:
    d = decide_signal("a", signal(data={"type": "offer", "sdp": "v" * MAX_SDP_BYTES}), Table())
    assert isinstance(d, Forward)


def test_input_relay_forwards_bytes_within_the_game_only() -> None:
    t = Table()
    d = decide_input_relay("b", {"game_id": "g1", "to_player": 2, "data": b"\x01\x02"}, t)
    assert d == Forward("c", "p2p_input_relay", {"game_id": "g1", "from_player": 1, "channel": "inputs",
                                                 "data": b"\x01\x02"})
    d = decide_input_relay("b", {"game_id": "g1", "to_player": 0, "data": bytearray(b"z"), "channel": "control"}, t)
    assert isinstance(d, Forward) and d.payload["channel"] == "control" and d.payload["data"] == b"z"
    assert isinstance(decide_input_relay("a", {"game_id": "g1", "to_player": 1, "data": b"q" * MAX_RELAY_BYTES}, t),
                      Forward)


@pytest.mark.parametrize(
    ("sid", "payload", "reason"),
    [
        ("y", {"game_id": "g1", "to_player": 0, "data": b"x"}, Reason.WRONG_GAME),
        ("lobby", {"game_id": "g1", "to_player": 0, "data": b"x"}, Reason.NOT_IN_GAME),
        ("a", {"game_id": "g1", "to_player": 1, "data": "text"}, Reason.MALFORMED),
        ("a", {"game_id": "g1", "to_player": 1, "data": b""}, Reason.MALFORMED),
        ("a", {"game_id": "g1", "to_player": 1, "data": b"q" * (MAX_RELAY_BYTES + 1)}, Reason.TOO_LARGE),
        ("a", {"game_id": "g1", "to_player": 1, "data": b"q", "channel": "video"}, Reason.MALFORMED),
        ("a", {"game_id": "g1", "to_player": 0, "data": b"q"}, Reason.SELF_TARGET),
    ],
)
def test_invalid_input_relays_are_rejected(sid, payload, reason) -> None:
    d = decide_input_relay(sid, payload, Table())
    assert isinstance(d, Rejection) and d.reason is reason


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.binary(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner,
                                                                                max_size=5), max_leaves=12),
       st.sampled_from(["a", "b", "x", "lobby"]))
def test_arbitrary_payloads_never_crash_and_never_leave_the_senders_game(payload, sid) -> None:
    t = Table()
    for decide in (decide_signal, decide_input_relay):
        d = decide(sid, payload, t)
        assert isinstance(d, Forward | Rejection)
        if isinstance(d, Forward):
            game, _ = t.member_of(sid)
            assert t.member_of(d.to_sid)[0] == game and d.to_sid != sid


def test_relay_handlers_forward_and_answer_errors_to_the_sender_only() -> None:
    sio, t = FakeSio(), Table()
    relay = SignalingRelay(t)
    relay.register(sio)
    assert set(sio.handlers) == {"webrtc_signal", "p2p_input_relay"}

    async def run() -> None:
        await sio.handlers["webrtc_signal"]("a", signal())
        await sio.handlers["webrtc_signal"]("x", signal())  # g2 member poking g1
        await sio.handlers["p2p_input_relay"]("lobby", {"game_id": "g1", "to_player": 0, "data": b"1"})
        await sio.handlers["p2p_input_relay"]("a", {"game_id": "g1", "to_player": 1, "data": b"1"})
        await sio.handlers["webrtc_signal"]("a", "garbage")

    asyncio.run(run())
    targets = [(event, to) for event, _, to in sio.sent]
    assert targets == [("webrtc_signal", "b"), ("error", "x"), ("error", "lobby"), ("p2p_input_relay", "b"),
                       ("error", "a")]
    assert sio.sent[1][1] == {"event": "webrtc_signal", "reason": "wrong_game",
                              "message": "you are not a member of that game"}
    assert relay.stats.rejections == {"wrong_game": 1, "not_in_game": 1, "malformed": 1}
    assert relay.stats.total_rejected == 3
    assert relay.stats.rejections_by_event[("p2p_input_relay", "not_in_game")] == 1
    assert relay.stats.forwarded == {"webrtc_signal:offer": 1, "p2p_input_relay": 1}
    assert relay.stats.snapshot()["total_rejected"] == 3
