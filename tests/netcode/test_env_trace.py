"""The per-frame trace check-env compares across processes, its verdict, and the process runners."""

from __future__ import annotations

import envs_for_tests as envs
import pytest

from interactive_gym.envs import trace
from interactive_gym.envs.checks import compare_runs
from interactive_gym.envs.determinism import CHECK_HASH_SEEDS, PYTHON_HASH_SEED, hash_seed_env
from interactive_gym.envs.trace import TraceRequest, describe_state, run_request, run_trace, state_difference
from interactive_gym.tools.env_runs import cpython_run

TAG = "tests.netcode.envs_for_tests:make_tag"


def test_hash_seed_env_sets_only_the_seed_and_copies() -> None:
    base = {"PATH": "/bin", "PYTHONHASHSEED": "random"}
    env = hash_seed_env(base)
    assert env == {"PATH": "/bin", "PYTHONHASHSEED": PYTHON_HASH_SEED}
    assert base["PYTHONHASHSEED"] == "random"
    assert PYTHON_HASH_SEED not in CHECK_HASH_SEEDS and len(set(CHECK_HASH_SEEDS)) == len(CHECK_HASH_SEEDS)
    assert all(0 <= int(s) <= 4294967295 for s in (PYTHON_HASH_SEED, *CHECK_HASH_SEEDS))


def test_equal_games_give_equal_traces_and_other_seeds_other_traces() -> None:
    first, second = run_trace(envs.TagEnv, 60, seed=3), run_trace(envs.TagEnv, 60, seed=3)
    assert first["checksums"] == second["checksums"] and len(first["checksums"]) == 61
    assert first["mismatch"] is None and first["state"] is None and first["error"] is None
    assert run_trace(envs.TagEnv, 60, seed=4)["checksums"] != first["checksums"]


def test_a_reference_stops_the_trace_at_the_first_difference_with_that_state() -> None:
    reference = run_trace(envs.TagEnv, 40)["checksums"]
    tampered = reference[:17] + ["0" * 16] + reference[18:]
    result = run_trace(envs.TagEnv, 40, reference=tampered)
    assert result["mismatch"] == 17 and len(result["checksums"]) == 18
    assert result["state"] is not None and "state[0]['t']" in result["state"]
    assert result["state"]["state[0]['t']"] == "17"
    at = run_trace(envs.TagEnv, 40, state_at=17)
    assert at["mismatch"] is None and at["state"] == result["state"]


def test_a_cut_state_never_shows_the_cut_as_a_difference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trace, "MAX_STATE_LINES", 3)
    a = describe_state({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    b = describe_state({"a": 1, "b": 9, "c": 3, "d": 4})
    assert a[trace.TRUNCATED] == "state['c']" and len(a) == 4
    assert state_difference(a, b) == ["state['b']: 2 != 9"]


def test_state_difference_names_changed_added_and_missing_leaves() -> None:
    a = describe_state({"x": 1, "y": [1, 2], "z": "long" * 100})
    b = describe_state({"x": 2, "y": [1], "z": "long" * 100})
    assert len(a["state['z']"]) <= 120
    assert state_difference(a, b) == ["state['x']: 1 != 2", "state['y'][1]: 2 != <missing>"]
    assert state_difference(a, a) == []


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"target": "no_colon", "frames": 5}, "module:factory"),
        ({"target": "nonexistent_module_xyz:f", "frames": 5}, "cannot import"),
        ({"target": TAG, "frames": 5, "kwargs": "{bad"}, "not valid JSON"),
        ({"target": TAG, "frames": -1}, "frames must be"),
        ({"target": TAG, "frames": 5, "kwargs": '{"players": 0}'}, "possible_agents is empty"),
    ],
)
def test_bad_requests_come_back_as_errors(request_: TraceRequest, message: str) -> None:
    result = run_request(request_)
    assert result["error"] is not None and message in result["error"], result["error"]
    assert result["checksums"] == []


def test_compare_runs_verdicts() -> None:
    ref = run_trace(envs.TagEnv, 30)
    same = run_trace(envs.TagEnv, 30, reference=ref["checksums"])
    labels = ("A", "B")
    assert compare_runs("n", labels, ref, same, None, ["cause"]).passed
    other = run_trace(envs.SortedSetOrderEnv, 30, reference=ref["checksums"])
    verdict = compare_runs("n", labels, ref, other, run_trace(envs.TagEnv, 30, state_at=other["mismatch"])["state"],
                           ["cause"])
    assert not verdict.passed and verdict.summary == f"A and B diverged at frame {other['mismatch']}"
    assert verdict.details[-1] == "cause" and "  state[0]['colour']: <missing> != 'red'" in verdict.details
    assert len(verdict.details) == 3, verdict.details  # frame line, the one differing leaf, the cause
    broken = dict(same, error="ValueError: x")
    assert "failed in B: ValueError: x" in compare_runs("n", labels, ref, broken, None, []).summary  # type: ignore[arg-type]


def test_the_worker_process_runs_under_the_given_hash_seed_and_reports_failures() -> None:
    request = TraceRequest(target=TAG, frames=20, seed=0)
    result = cpython_run(request, CHECK_HASH_SEEDS[0])
    assert result["error"] is None and result["hash_seed"] == CHECK_HASH_SEEDS[0]
    assert result["checksums"] == run_trace(envs.TagEnv, 20)["checksums"]
    missing = cpython_run(TraceRequest(target="nonexistent_module_xyz:f", frames=5), PYTHON_HASH_SEED)
    assert missing["error"] is not None and "cannot import" in missing["error"]
    slow = cpython_run(TraceRequest(target=TAG, frames=20), PYTHON_HASH_SEED, timeout=0.001)
    assert slow["error"] is not None and "did not finish" in slow["error"]
