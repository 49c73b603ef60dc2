"""Frame-by-frame parity of p2p trajectories."""

from __future__ import annotations

import pytest

from interactive_gym.server.parity import compare_trajectories


def _steps(n: int, **override) -> list[dict]:
    steps = [{"t": t, "actions": {"agent_0": t % 5, "agent_1": 0}, "rewards": {"agent_0": 0.0, "agent_1": 1.0},
              "terminated": {"agent_0": False, "agent_1": False}, "truncated": {"agent_0": False, "agent_1": t == n - 1},
              "checksum": f"{t:08x}", "keys": {"agent_0": ["ArrowLeft"]}, "client_ts": 1000.0 + t} for t in range(n)]
    for t, changes in override.items():
        steps[int(t[1:])].update(changes)
    return steps


def test_identical_uploads_agree() -> None:
    a, b = _steps(50), _steps(50)
    for step in b:  # each peer's own keys and clock differ; they are not simulation results
        step["keys"] = {"agent_1": []}
        step["client_ts"] += 0.37
    verdict = compare_trajectories({"alice": a, "bob": b})
    assert verdict.agree and verdict.frames_compared == 50 and verdict.first_mismatch is None


@pytest.mark.parametrize("field,value", [
    ("actions", {"agent_0": 9, "agent_1": 0}),
    ("rewards", {"agent_0": 0.5, "agent_1": 1.0}),
    ("terminated", {"agent_0": True, "agent_1": False}),
    ("checksum", "deadbeef"),
])
def test_first_mismatch_is_named(field: str, value: object) -> None:
    verdict = compare_trajectories({"alice": _steps(30), "bob": _steps(30, t17={field: value})})
    assert not verdict.agree
    assert verdict.first_mismatch["t"] == 17 and verdict.first_mismatch["field"] == field
    assert verdict.first_mismatch["values"]["bob"] == value
    assert verdict.frames_compared == 17


def test_key_order_and_int_float_spelling_do_not_create_false_mismatches() -> None:
    b = _steps(5)
    for step in b:
        step["rewards"] = {"agent_1": int(step["rewards"]["agent_1"]), "agent_0": 0}
    assert compare_trajectories({"a": _steps(5), "b": b}).agree


def test_lengths_must_match_unless_a_partial_prefix_is_allowed() -> None:
    full, short = _steps(40), _steps(40)[:25]
    strict = compare_trajectories({"a": full, "b": short})
    assert not strict.agree and strict.first_mismatch["field"] == "length"
    relaxed = compare_trajectories({"a": full, "b": short}, allow_prefix=True)
    assert relaxed.agree and relaxed.frames_compared == 25 and relaxed.lengths == {"a": 40, "b": 25}


def test_needs_two_peers() -> None:
    with pytest.raises(ValueError):
        compare_trajectories({"a": _steps(3)})
