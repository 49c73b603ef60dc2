"""Hostile and random packets never raise out of a session nor corrupt its agreement with an honest peer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from session_helpers import deliver, execute, pair

from interactive_gym.netcode import codec


def _mutations() -> st.SearchStrategy[bytes]:
    header_fields = st.tuples(
        st.sampled_from([*codec.PACKET_TYPES, 0, 9, 255]), st.integers(0, 3), st.integers(0, 2**32 - 1)
    )
    forged_headers = header_fields.map(lambda f: codec.encode_header(f[0], f[1] % 2, min(f[2], 2**31 - 1)))
    forged_inputs = st.tuples(
        st.integers(-1, 200), st.integers(0, 300), st.integers(0, 40), st.binary(max_size=60)
    ).map(lambda f: codec.encode_input(1, 0, f[0], f[1], f[2], 0, 0, [0, 0], f[3]))
    return st.one_of(st.binary(max_size=120), forged_headers.flatmap(lambda h: st.binary(max_size=40).map(lambda b: h + b)),
                     forged_inputs)


def _play(garbage: list[tuple[int, bytes]]):
    a, b = pair(input_delay=1, max_prediction=6, checksum_interval=5)
    state_a: list[int] = []
    state_b: list[int] = []
    by_frame: dict[int, list[bytes]] = {}
    for frame, data in garbage:
        by_frame.setdefault(frame, []).append(data)
    now = 0.0
    for frame in range(40):
        now += 16.0
        for data in by_frame.get(frame, []):
            a.handle_packet("b", data, now)  # must never raise
        for session, player, state, name, other in ((a, 0, state_a, "a", b), (b, 1, state_b, "b", a)):
            session.poll(now)
            session.add_local_input(player, bytes([(frame // 3 + player) % 4]))
            execute(session.advance_frame().requests, state)
            deliver(session, other, name, now)
    for _ in range(5):
        now += 16.0
        for session, name, other in ((a, "a", b), (b, "b", a)):
            session.poll(now)
            execute(session.settle(), state_a if session is a else state_b)
            deliver(session, other, name, now)
    return a, b, state_a


CLEAN_A, CLEAN_B, CLEAN_STATE = _play([])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 39), _mutations()), max_size=25))
def test_garbage_interleaved_with_real_traffic(garbage: list[tuple[int, bytes]]) -> None:
    a, _b, state_a = _play(garbage)
    assert a.confirmed_frame >= 30
    # A forged DISCONNECT is well-formed: A then (rightly) ignores the real peer's packets, counted separately.
    rejected = sum(n for reason, n in a.dropped.items() if reason != "from_disconnected_peer")
    assert rejected <= len(garbage)
    if rejected == len(garbage):
        # Every packet was rejected: the game is exactly the clean one.
        assert "from_disconnected_peer" not in a.dropped
        history = [a.confirmed_inputs(f) for f in range(a.confirmed_frame + 1)]
        assert history == [CLEAN_A.confirmed_inputs(f) for f in range(CLEAN_A.confirmed_frame + 1)]
        assert state_a == CLEAN_STATE
