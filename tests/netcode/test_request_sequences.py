"""Exact save/load/advance sequences for known scenarios (the GGRS style of test)."""

from __future__ import annotations

from session_helpers import deliver, execute, pair, summarise

from interactive_gym.netcode.requests import AdvanceStatus


def _advance(session, player: int, value: int, state: list[int]):
    session.add_local_input(player, bytes([value]))
    result = session.advance_frame()
    execute(result.requests, state)
    return result


def test_prediction_then_rollback_sequence() -> None:
    a, b = pair(input_delay=1, max_prediction=2, checksum_interval=0)
    state_a: list[int] = []
    state_b: list[int] = []
    a.poll(0.0)
    assert _advance(a, 0, 1, state_a).status == AdvanceStatus.NOT_SYNCHRONIZED
    b.poll(0.0)
    deliver(a, b, "a")
    deliver(b, a, "b")
    assert a.synchronized and b.synchronized

    # Frame 0: both inputs are the default (input delay 1), already known from the handshake's input packets.
    # Frame 0 is confirmed, but it is an anchor frame (every 30th), so it is saved anyway.
    assert summarise(_advance(a, 0, 1, state_a).requests) == [("save", 0), ("advance", 0, "0C 0C")]
    # Frames 1 and 2: B's inputs are unknown, predicted as its last confirmed input (the default, 0).
    assert summarise(_advance(a, 0, 1, state_a).requests) == [("save", 1), ("advance", 1, "1C 0P")]
    assert summarise(_advance(a, 0, 1, state_a).requests) == [("save", 2), ("advance", 2, "1C 0P")]
    # Frame 3 would be 3 frames past the last confirmed frame (0): the prediction window is exhausted.
    stalled = _advance(a, 0, 1, state_a)
    assert stalled.status == AdvanceStatus.PREDICTION_THRESHOLD and stalled.requests == []

    # B plays frames 0 and 1 with input 2, then its inputs for frames 1..2 reach A.
    assert summarise(_advance(b, 1, 2, state_b).requests) == [("save", 0), ("advance", 0, "0C 0C")]
    assert summarise(_advance(b, 1, 2, state_b).requests) == [("save", 1), ("advance", 1, "0P 2C")]
    deliver(b, a, "b")
    # A loads frame 1 (the first mispredicted one), re-simulates 1 and 2 with the real inputs (frame 2 is now
    # fully confirmed, so it is not saved again), then saves and advances frame 3 predicting B keeps pressing 2.
    assert summarise(_advance(a, 0, 1, state_a).requests) == [
        ("load", 1),
        ("advance", 1, "1C 2C"),
        ("advance", 2, "1C 2C"),
        ("save", 3),
        ("advance", 3, "1C 2P"),
    ]
    assert state_a == [0, 1003, 2003, 3003]
    assert a.stats()["rollbacks"] == 1 and a.stats()["max_rollback_depth"] == 2


def test_correct_prediction_needs_no_rollback() -> None:
    a, b = pair(input_delay=0, max_prediction=4, checksum_interval=0)
    a.poll(0.0)
    b.poll(0.0)
    deliver(a, b, "a")
    deliver(b, a, "b")
    state_a: list[int] = []
    state_b: list[int] = []
    # B holds the default input, which is exactly what A predicts: late arrival changes nothing.
    assert summarise(_advance(a, 0, 3, state_a).requests) == [("save", 0), ("advance", 0, "3C 0P")]
    assert summarise(_advance(a, 0, 3, state_a).requests) == [("save", 1), ("advance", 1, "3C 0P")]
    _advance(b, 1, 0, state_b)
    _advance(b, 1, 0, state_b)
    deliver(b, a, "b")
    # No load: frames 0 and 1 were predicted right. Frame 2 is still a prediction, so it is saved.
    assert summarise(_advance(a, 0, 3, state_a).requests) == [("save", 2), ("advance", 2, "3C 0P")]
    assert a.stats()["rollbacks"] == 0


def test_checksum_frames_are_saved_even_when_confirmed() -> None:
    a, b = pair(input_delay=2, max_prediction=0, checksum_interval=2)
    a.poll(0.0)
    b.poll(0.0)
    deliver(a, b, "a")
    deliver(b, a, "b")
    state_a: list[int] = []
    # Lockstep (max_prediction 0): only fully confirmed frames run; frames 0 and 1 use the delayed defaults.
    first = _advance(a, 0, 5, state_a)
    assert first.requests[0].checksum_wanted is True
    assert summarise(first.requests) == [("save", 0), ("advance", 0, "0C 0C")]
    assert summarise(_advance(a, 0, 5, state_a).requests) == [("advance", 1, "0C 0C")]
    assert _advance(a, 0, 5, state_a).status == AdvanceStatus.PREDICTION_THRESHOLD
