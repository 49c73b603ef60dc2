"""Input queue: confirmation order, prediction, misprediction detection, disconnection and discarding."""

from __future__ import annotations

import pytest

from interactive_gym.netcode.input_queue import InputQueue, InputQueueError
from interactive_gym.netcode.requests import InputStatus

C, P, D = InputStatus.CONFIRMED, InputStatus.PREDICTED, InputStatus.DISCONNECTED


def test_prediction_repeats_last_confirmed_and_defaults_first() -> None:
    q = InputQueue(b"\x00")
    assert q.get(0) == (b"\x00", P)
    assert q.add(0, b"\x07") == 0  # frame 0 was predicted as the default: wrong
    assert q.get(0) == (b"\x07", C)
    assert q.get(3) == (b"\x07", P)
    assert q.add(1, b"\x07") is None  # frame 1 was never handed out: nothing to correct
    assert q.add(2, b"\x07") is None
    assert q.add(3, b"\x07") is None  # predicted right
    assert q.last_confirmed == 3


def test_misprediction_reports_the_frame_and_duplicates_are_ignored() -> None:
    q = InputQueue(b"\x00")
    q.add(0, b"\x01")
    q.get(1)
    q.get(2)
    assert q.add(1, b"\x01") is None
    assert q.add(2, b"\x02") == 2
    assert q.add(2, b"\x09") is None and q.get(2) == (b"\x02", C)  # duplicate ignored
    with pytest.raises(InputQueueError, match="gap"):
        q.add(5, b"\x01")


def test_confirmed_and_run() -> None:
    q = InputQueue(b"\x00")
    for frame, value in enumerate(b"abcde"):
        q.add(frame, bytes([value]))
    assert q.run(1, 3) == [b"b", b"c", b"d"]
    assert q.confirmed(4) == (b"e", C)
    with pytest.raises(InputQueueError, match="not confirmed"):
        q.confirmed(5)
    with pytest.raises(InputQueueError):
        q.run(3, 5)


def test_discard_keeps_last_confirmed_for_prediction() -> None:
    q = InputQueue(b"\x00")
    for frame in range(10):
        q.add(frame, bytes([frame]))
    q.discard_before(100)
    assert q.first_frame == 9
    assert q.get(12) == (b"\x09", P)
    with pytest.raises(InputQueueError, match="discarded"):
        q.get(3)


def test_disconnect_uses_default_and_only_moves_earlier() -> None:
    q = InputQueue(b"\x00")
    for frame in range(6):
        q.add(frame, b"\x05")
    q.disconnect(3)
    assert q.last_confirmed == 3 and q.disconnected_after == 3
    assert q.get(4) == (b"\x00", D)
    assert q.confirmed(100) == (b"\x00", D)
    assert q.confirmed_through == float("inf")
    q.disconnect(5)  # a later cut never undoes an earlier one
    assert q.disconnected_after == 3
    q.disconnect(1)
    assert q.disconnected_after == 1 and q.get(2) == (b"\x00", D)
    assert q.add(2, b"\x05") is None and q.last_confirmed == 1  # inputs after a disconnect are ignored
