"""The sync-test session's request plan and mismatch reporting, with a tiny hand-made simulation."""

from __future__ import annotations

import pytest
from session_helpers import summarise

from interactive_gym.netcode.requests import AdvanceFrame, LoadState, SaveState
from interactive_gym.netcode.settings import SettingsError
from interactive_gym.netcode.sync_test import SyncTestMismatchError, SyncTestSession


def test_plan_for_check_distance_two() -> None:
    session = SyncTestSession(num_players=1, input_size=1, check_distance=2)
    plans = []
    for frame in range(4):
        session.add_input(0, bytes([frame]))
        plans.append(summarise(session.advance_frame()))
        session._resaved.clear()  # nothing was executed, so skip the comparison
    assert plans[0] == [("save", 0), ("advance", 0, "0C")]
    assert plans[1] == [("save", 1), ("advance", 1, "1C")]
    assert plans[2] == [("save", 2), ("load", 0), ("advance", 0, "0C"), ("save", 1), ("advance", 1, "1C"),
                        ("save", 2), ("advance", 2, "2C")]
    assert plans[3][:2] == [("save", 3), ("load", 1)]


def _run(session: SyncTestSession, frames: int, glitch_at: int | None = None) -> None:
    state = {"x": 0}
    steps = [0]  # every execution, re-simulations included: outside the state, like a hidden global
    for frame in range(frames):
        session.add_input(0, bytes([frame % 5]))
        for request in session.advance_frame():
            if isinstance(request, SaveState):
                request.cell.save(request.frame, dict(state), hash((state["x"],)))
            elif isinstance(request, LoadState):
                state = dict(request.cell.state)
            elif isinstance(request, AdvanceFrame):
                steps[0] += 1
                state["x"] += request.inputs[0][0][0]
                if glitch_at is not None and steps[0] == glitch_at:
                    state["x"] += 1  # one nondeterministic step
    session.verify()


def test_deterministic_simulation_passes() -> None:
    session = SyncTestSession(1, 1, check_distance=3)
    _run(session, 50)
    assert session.frames_checked == 3 * (50 - 3)


def test_nondeterminism_names_the_first_bad_frame() -> None:
    session = SyncTestSession(1, 1, check_distance=3)
    with pytest.raises(SyncTestMismatchError) as info:
        _run(session, 50, glitch_at=40)
    error = info.value
    # From frame 3 on, each call runs 4 steps (3 re-simulated, 1 new); step 40 re-simulates frame 9, so the
    # state of frame 10 is the first to differ.
    assert error.frame == 10
    assert error.original_checksum != error.resimulated_checksum
    assert error.original_state["x"] != error.resimulated_state["x"]


def test_bad_arguments() -> None:
    with pytest.raises(SettingsError, match="check_distance"):
        SyncTestSession(1, 1, check_distance=0)
    with pytest.raises(SettingsError, match="num_players"):
        SyncTestSession(9, 1)
    session = SyncTestSession(2, 1)
    session.add_input(0, b"\x00")
    with pytest.raises(SettingsError, match=r"players \[1\]"):
        session.advance_frame()
