"""The shared episode-end rule of every mode."""

from __future__ import annotations

import json
import math

from interactive_gym.envs.stepping import MAX_INFO_CHARS, StepResult, step_row, step_with_limit
from interactive_gym.server.storage_records import StepRecord
from interactive_gym.server.upload_validation import STEP_FIELDS, STEP_OPTIONAL

AGENTS = ("a", "b")


class ScriptedEnv:
    """Returns the terminations/truncations it is told to, with numpy-like truthy values."""

    def __init__(self, terminated: dict, truncated: dict) -> None:
        self.terminated, self.truncated = terminated, truncated

    def step(self, actions: dict) -> tuple:
        return ({a: [1] for a in AGENTS}, {"a": 1, "b": 0.5}, dict(self.terminated), dict(self.truncated),
                {"a": {"x": 1}})


def test_running_episode_is_not_done_and_flags_are_bools() -> None:
    result = step_with_limit(ScriptedEnv({"a": 0, "b": 0}, {"a": 0, "b": 0}), {"a": 1, "b": 2}, AGENTS, 5, 10)
    assert not result.episode_done
    assert result.terminated == {"a": False, "b": False} and result.truncated == {"a": False, "b": False}
    assert all(type(v) is bool for v in (*result.terminated.values(), *result.truncated.values()))
    assert result.rewards == {"a": 1, "b": 0.5} and result.infos == {"a": {"x": 1}}


def test_episode_ends_when_every_agent_is_done() -> None:
    one_done = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": False}), {}, AGENTS, 3, 10)
    assert not one_done.episode_done
    both = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": True}), {}, AGENTS, 3, 10)
    assert both.episode_done and both.truncated == {"a": False, "b": True}


def test_step_limit_truncates_every_agent_that_did_not_terminate() -> None:
    result = step_with_limit(ScriptedEnv({"a": True, "b": False}, {"a": False, "b": False}), {}, AGENTS, 10, 10)
    assert result.episode_done
    assert result.terminated == {"a": True, "b": False}
    assert result.truncated == {"a": False, "b": True}


def test_missing_agents_in_the_env_dicts_count_as_not_done() -> None:
    result = step_with_limit(ScriptedEnv({"a": True}, {}), {}, AGENTS, 1, 10)
    assert not result.episode_done
    limited = step_with_limit(ScriptedEnv({"a": True}, {}), {}, AGENTS, 10, 10)
    assert limited.truncated == {"a": False, "b": True}


# -- the step row every mode stores -----------------------------------------------------------------------------
def stepped(infos: object = None, rewards: dict | None = None) -> StepResult:
    return StepResult(observations={}, rewards=rewards or {"a": 1, "b": 0.5}, terminated={"a": False, "b": True},
                      truncated={"a": False, "b": False}, infos=infos if infos is not None else {"a": {"x": 1}},
                      episode_done=False)


def test_server_rows_keep_values_as_they_are_for_the_lossless_codec() -> None:
    observation = {"a": (1, 2), "b": b"raw"}
    row = step_row(3, observation, {"a": 1, "b": (0, 1)}, stepped(), {"a": ["arrowup"]}, timestamp=12.5,
                   portable=False)
    assert row == {"t": 3, "observation": observation, "actions": {"a": 1, "b": (0, 1)},
                   "rewards": {"a": 1.0, "b": 0.5}, "terminated": {"a": False, "b": True},
                   "truncated": {"a": False, "b": False}, "info": {"a": {"x": 1}}, "keys": {"a": ["arrowup"]},
                   "server_ts": 12.5}
    assert all(type(r) is float for r in row["rewards"].values())
    assert StepRecord(**row).server_ts == 12.5  # exactly the storage record's columns


def test_portable_rows_are_json_with_the_upload_columns() -> None:
    row = step_row(0, {"a": (1, 2), "b": {3: "x"}}, {"a": 1, "b": (0, 1)},
                   stepped(rewards={"a": 1, "b": math.inf}), {"a": ["arrowup"]}, timestamp=7.0, portable=True)
    assert row == {"t": 0, "observation": {"a": [1, 2], "b": {"3": "x"}}, "actions": {"a": 1, "b": [0, 1]},
                   "rewards": {"a": 1.0, "b": "inf"}, "terminated": {"a": False, "b": True},
                   "truncated": {"a": False, "b": False}, "info": {"a": {"x": 1}}, "keys": {"a": ["arrowup"]},
                   "client_ts": 7.0}
    assert json.loads(json.dumps(row)) == row
    assert set(STEP_FIELDS) <= set(row) <= set(STEP_FIELDS) | set(STEP_OPTIONAL)


def test_portable_rows_bound_the_info() -> None:
    big = {"a": "y" * (MAX_INFO_CHARS + 10)}
    row = step_row(0, {}, {}, stepped(infos=big), {}, timestamp=0.0, portable=True)
    assert row["info"] == {"_truncated": json.dumps(big, separators=(",", ":"))[:MAX_INFO_CHARS]}
    assert step_row(0, {}, {}, stepped(infos=big), {}, timestamp=0.0, portable=False)["info"] is big


def test_rows_copy_keys_so_later_key_changes_do_not_rewrite_history() -> None:
    held = ["arrowup"]
    row = step_row(0, {}, {}, stepped(), {"a": held}, timestamp=0.0, portable=False)
    held.append("arrowdown")
    assert row["keys"] == {"a": ["arrowup"]}
