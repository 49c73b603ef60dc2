"""Upload validation: every way a participant could tamper with an episode upload gets a specific refusal."""

from __future__ import annotations

import copy
import json

import pytest

from interactive_gym.server.storage_records import encode_step
from interactive_gym.server.upload_parts import MAX_KEYS_PER_STEP
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    UploadRejected,
    UploadRules,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)

AGENTS = ("agent_0", "agent_1")
RULES = UploadRules(scene_id="solo", num_episodes=2, max_steps=3, agent_ids=AGENTS, seeds=(11, 22),
                    bundle_hash="h" * 64)


def step(t: int, last: bool = False) -> dict:
    return {
        "t": t,
        "observation": {"agent_0": [t, 1], "agent_1": [2, 3]},
        "actions": {"agent_0": 4, "agent_1": 0},
        "rewards": {"agent_0": 1.0, "agent_1": 0},
        "terminated": {"agent_0": False, "agent_1": False},
        "truncated": {"agent_0": last, "agent_1": last},
        "info": {"agent_0": {"score": t}},
        "keys": {"agent_0": ["ArrowRight"]},
        "client_ts": 1764120000.5 + t,
    }


def payload(**changes) -> dict:
    base = {"scene_id": "solo", "episode": 1, "seed": 22, "bundle_hash": "h" * 64, "partial": False,
            "end_reason": "done", "error": None, "steps": [step(0), step(1), step(2, last=True)],
            "pauses": [{"t": 1, "ms": 1500.0}]}
    base.update(changes)
    return base


def check(p, scene="solo", rules=RULES, **kw):
    return validate_episode_upload(p, participant_id="P1", participant_scene_id=scene, rules=rules, **kw)


def test_a_valid_upload_is_accepted_with_the_session_participant() -> None:
    result = check(payload())
    assert isinstance(result, EpisodeUpload)
    assert (result.participant_id, result.scene_id, result.episode, result.seed) == ("P1", "solo", 1, 22)
    assert result.partial is False and result.end_reason == "done" and len(result.steps) == 3
    assert result.pauses == [{"t": 1, "ms": 1500.0}]


def test_partial_uploads_may_stop_anywhere_even_at_zero_steps() -> None:
    for steps in ([], [step(0)]):
        result = check(payload(partial=True, end_reason="page_closed", steps=steps, pauses=[]))
        assert isinstance(result, EpisodeUpload) and result.partial


def test_errors_are_kept_and_cut_to_size() -> None:
    result = check(payload(partial=True, end_reason="error", error="Traceback\n" + "x" * 20000, steps=[step(0)],
                           pauses=[]))
    assert isinstance(result, EpisodeUpload) and len(result.error) == 8192


def mutate(path: str, value):
    p = payload()
    target = p
    parts = path.split(".")
    for part in parts[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = parts[-1]
    if value is KeyError:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return p


@pytest.mark.parametrize(
    ("bad", "code", "words"),
    [
        (mutate("scene_id", "other"), "wrong_scene", "not in"),
        (mutate("episode", 2), "bad_episode", "0 to 1"),
        (mutate("episode", -1), "bad_episode", "0 to 1"),
        (mutate("episode", True), "bad_episode", "integer"),
        (mutate("episode", "1"), "bad_episode", "integer"),
        (mutate("seed", 11), "bad_seed", "episode 1"),
        (mutate("bundle_hash", "x"), "bad_bundle", "reload"),
        (mutate("partial", "no"), "malformed", "partial"),
        (mutate("end_reason", "bored"), "malformed", "end_reason"),
        (mutate("error", 5), "malformed", "error"),
        (mutate("steps", {}), "malformed", "steps must be a list"),
        (mutate("steps", [step(0), step(1), step(2), step(3)]), "too_many_steps", "at most 3"),
        (mutate("steps", [step(0), step(2, last=True)]), "bad_step", "numbered"),
        (mutate("steps.0", [1, 2]), "malformed", "steps[0] must be an object"),
        (mutate("steps.0.t", 0.0), "bad_step", "numbered"),
        (mutate("steps.1.actions", {"agent_9": 1}), "bad_step", "unknown agent"),
        (mutate("steps.1.actions", {"agent_0": "up"}), "bad_step", "invalid value"),
        (mutate("steps.1.actions", {"agent_0": {"x": 1}}), "bad_step", "invalid value"),
        (mutate("steps.1.actions", [4, 0]), "bad_step", "keyed by agent"),
        (mutate("steps.1.rewards", {"agent_0": True}), "bad_step", "rewards"),
        (mutate("steps.1.rewards", {"agent_0": "1"}), "bad_step", "rewards"),
        (mutate("steps.1.terminated", {"agent_0": 0}), "bad_step", "terminated"),
        (mutate("steps.1.truncated", {"agent_0": None}), "bad_step", "truncated"),
        (mutate("steps.1.keys", ["ArrowUp"]), "bad_step", "keys"),
        (mutate("steps.1.keys", {"agent_0": ["k"] * (MAX_KEYS_PER_STEP + 1)}), "bad_step", "keys"),
        (mutate("steps.1.keys", {"agent_0": ["x" * 33]}), "bad_step", "keys"),
        (mutate("steps.1.keys", {"agent_0": [""]}), "bad_step", "keys"),
        (mutate("steps.1.info", {"blob": "x" * 9000}), "bad_step", "info is longer"),
        (mutate("steps.1.observation", ["x" * 70000]), "bad_step", "observation is longer"),
        (mutate("steps.1.client_ts", "now"), "bad_step", "client_ts"),
        (mutate("steps.1.extra", 1), "malformed", "unknown fields: extra"),
        (mutate("steps.1.rewards", KeyError), "malformed", "missing rewards"),
        (mutate("steps.2.truncated", {"agent_0": False, "agent_1": False}) | {"steps": [step(0), step(1)]},
         "not_finished", "last step"),
        (mutate("participant_id", "P2"), "malformed", "unknown fields: participant_id"),
        (mutate("seed", KeyError), "malformed", "missing seed"),
        (mutate("pauses", {}), "malformed", "pauses"),
        (mutate("pauses", [{"t": 9, "ms": 1}]), "malformed", "step index"),
        (mutate("pauses", [{"t": 0, "ms": -1}]), "malformed", "non-negative"),
        (mutate("pauses", [{"t": 0}]), "malformed", "missing ms"),
        ([1, 2, 3], "malformed", "must be an object"),
        ("text", "malformed", "must be an object"),
        (None, "malformed", "must be an object"),
    ],
)
def test_bad_uploads_are_rejected_with_a_specific_code(bad, code, words) -> None:
    result = check(bad)
    assert isinstance(result, UploadRejected), result
    assert result.code == code, result
    assert words in result.message


def test_a_complete_episode_may_end_by_termination_before_max_steps() -> None:
    steps = [step(0), step(1)]
    steps[1]["terminated"] = {"agent_0": True, "agent_1": True}
    assert isinstance(check(payload(steps=steps)), EpisodeUpload)
    steps[1]["terminated"] = {"agent_0": True, "agent_1": False}
    assert check(payload(steps=steps)).code == "not_finished"


def test_participant_must_be_in_the_scene_according_to_the_server() -> None:
    assert check(payload(), scene="survey").code == "wrong_scene"
    assert check(payload(), scene=None).code == "wrong_scene"
    other_rules = UploadRules(scene_id="other", num_episodes=2, max_steps=3, agent_ids=AGENTS, seeds=(11, 22),
                              bundle_hash="h" * 64)
    assert check(payload(), scene="solo", rules=other_rules).code == "wrong_scene"


def test_a_late_partial_upload_is_accepted_for_a_scene_the_participant_was_in() -> None:
    late = payload(partial=True, end_reason="page_closed", steps=[step(0)], pauses=[])
    ok = validate_episode_upload(late, participant_id="P1", participant_scene_id="survey", rules=RULES,
                                 visited_scene_ids=("consent", "solo"))
    assert isinstance(ok, EpisodeUpload) and ok.partial
    never = validate_episode_upload(late, participant_id="P1", participant_scene_id="survey", rules=RULES,
                                    visited_scene_ids=("consent",))
    assert never.code == "wrong_scene"
    complete = validate_episode_upload(payload(), participant_id="P1", participant_scene_id="survey", rules=RULES,
                                       visited_scene_ids=("solo",))
    assert complete.code == "wrong_scene", "only partial episodes may arrive after the scene"


def test_size_limit_uses_the_transport_size_or_the_json_length() -> None:
    assert check(payload(), payload_bytes=RULES.max_bytes + 1).code == "too_large"
    small = UploadRules(**{**RULES.__dict__, "max_bytes": 200})
    result = check(payload(), rules=small)
    assert result.code == "too_large" and "limit is 200" in result.message


def test_non_json_values_are_refused_not_crashing() -> None:
    assert check(payload(steps=[step(0)], partial=True) | {"seed": float("nan")}).code == "malformed"
    assert check(payload() | {"steps": [object()]}).code == "malformed"
    deep: list = []
    for _ in range(5000):
        deep = [deep]
    result = check(payload() | {"error": deep})
    assert isinstance(result, UploadRejected) and result.code == "malformed"


def test_valid_payload_is_not_mutated() -> None:
    p = payload()
    before = copy.deepcopy(p)
    check(p)
    assert p == before


def test_episode_write_kwargs_records_refs_and_steps_for_storage() -> None:
    config = {
        "scene_id": "solo", "fps": 30, "max_steps": 3, "num_episodes": 2, "seeds": [11, 22],
        "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render",
                   "env_kwargs": {"num_fruits": 2}},
        "agents": {"agent_0": {"kind": "human"},
                   "agent_1": {"kind": "onnx", "url": "/x", "obs_to_input": "gatherers:obs_vector", "sample": True,
                               "temperature": 1.0, "frame_skip": 2}},
    }
    rules = rules_from_config(config, AGENTS)
    assert rules == RULES
    upload = check(payload(), rules=rules)
    kwargs = episode_write_kwargs(upload, config, received_at=1764120100.0)
    assert kwargs["mode"] == "browser" and kwargs["source"] == "P1" and kwargs["game_id"] == "P1"
    assert kwargs["status"] == "complete" and kwargs["env_hash"] == "h" * 64 and kwargs["seed"] == 22
    assert kwargs["agents"] == {"agent_0": "P1", "agent_1": "onnx:agent_1"}
    assert kwargs["meta"]["factory"] == "gatherers:make_env" and kwargs["meta"]["env_kwargs"] == {"num_fruits": 2}
    assert kwargs["meta"]["pauses"] == [{"t": 1, "ms": 1500.0}] and kwargs["meta"]["max_steps"] == 3
    first = kwargs["steps"][0]
    # Without a clock the page's step times stand uncorrected, and the episode says so.
    assert first.keys == {"agent_0": ["ArrowRight"]} and first.server_ts == 1764120000.5
    assert kwargs["meta"]["time_flags"] == ["no_clock"] and kwargs["received_at"] == 1764120100.0
    assert first.client_ts == 1764120000.5
    encoded = encode_step(first)  # storage accepts what we build
    assert json.loads(encoded.actions) == {"agent_0": 4, "agent_1": 0}
    partial = check(payload(partial=True, end_reason="page_closed", steps=[step(0)], pauses=[]), rules=rules)
    assert episode_write_kwargs(partial, config, received_at=0.0)["status"] == "partial"
