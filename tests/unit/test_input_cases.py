"""The shared input table (tests/fixtures/input_cases.json) through every Python path.

tests/js/input_cases.test.mjs runs the same cases through the page's KeyboardInput (browser and p2p mode
sample it each frame). Here they run through controls.TickKeys directly, through server mode as it really
receives keys (the page's held list with a seq on every change, ``ServerGame.set_keys``, one ``tick`` per
sample), and through KeyMapping for the action of every tick. Same table, same answers: one rule.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium
import pytest

from interactive_gym.controls import (
    KEY_ALIASES,
    ControlsError,
    KeyMapping,
    TickKeys,
    check_key_name,
    normalise_key,
)
from interactive_gym.scenes.gym_scene import GymScene, SceneConfigError
from interactive_gym.server.remote_game import ServerGame

TABLE = json.loads((Path(__file__).parents[1] / "fixtures" / "input_cases.json").read_text())
CASES = TABLE["tick_cases"]


def mapping_of(name: str) -> KeyMapping:
    spec = TABLE["mappings"][name]
    return KeyMapping({tuple(keys) if len(keys) > 1 else keys[0]: action for keys, action in spec["controls"]},
                      spec["default_action"])


def page_held_lists(events: list[dict[str, Any]], keys: list[str]) -> list[tuple[int, list[str] | None]]:
    """What a server-mode page sends: after each event, its held list when it changed (press order), or None."""
    held: list[str] = []
    out: list[tuple[int, list[str] | None]] = []
    for i, event in enumerate(events):
        before = list(held)
        if "down" in event and (key := normalise_key(event["down"])) in keys and key not in held:
            held.append(key)
        elif "up" in event:
            key = normalise_key(event["up"])
            held = [k for k in held if k != key]
        elif "blur" in event:
            held = []
        out.append((i, list(held) if held != before else None))
    return out


class CountingEnv(gymnasium.Env):
    """One agent, an action space holding every action of the table, no end before max_steps."""

    def __init__(self) -> None:
        self.action_space = gymnasium.spaces.Discrete(8)
        self.observation_space = gymnasium.spaces.Discrete(1)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        return 0, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        return 0, 0.0, False, False, {}


def server_game(mapping_name: str) -> ServerGame:
    spec = TABLE["mappings"][mapping_name]
    controls = {tuple(keys) if len(keys) > 1 else keys[0]: action for keys, action in spec["controls"]}
    scene = GymScene("keys", env_creator=CountingEnv, render_fn=lambda env, surface: None, width=64, height=64,
                     controls=controls, default_action=spec["default_action"],
                     policy_mapping={"agent_0": "human"}, max_steps=1000)
    scene.check()
    game = ServerGame("g-keys", scene, {"agent_0": "alice"}, game_seed=1)
    game.start_episode()
    return game


def test_the_table_is_loaded() -> None:
    assert len(CASES) >= 20
    assert all(any("tick" in e for e in c["events"]) for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_tick_keys_follow_the_table(case: dict[str, Any]) -> None:
    mapping = mapping_of(case["mapping"])
    state = TickKeys()
    for i, event in enumerate(case["events"]):
        if "down" in event:
            key = normalise_key(event["down"])
            if key in mapping.keys:
                state.press(key)
        elif "up" in event:
            state.release(normalise_key(event["up"]))
        elif "blur" in event:
            state.release_all()
        else:
            keys = state.sample()
            assert (keys, mapping.action_for(keys)) == (event["tick"], event["action"]), f"event {i}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_server_mode_follows_the_table(case: dict[str, Any]) -> None:
    game = server_game(case["mapping"])
    seq = 0
    for i, sent in page_held_lists(case["events"], game.scene.key_mapping.keys):
        event = case["events"][i]
        if sent is not None:
            seq += 1
            assert game.set_keys("agent_0", sent, seq) is True
        if "tick" in event:
            record = game.tick().record
            got = (record["keys"]["agent_0"], record["actions"]["agent_0"])
            assert got == (event["tick"], event["action"]), f"event {i}"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_server_mode_ignores_a_duplicated_update(case: dict[str, Any]) -> None:
    """Every update delivered twice (a client retry): the same ticks."""
    game = server_game(case["mapping"])
    seq = 0
    for i, sent in page_held_lists(case["events"], game.scene.key_mapping.keys):
        event = case["events"][i]
        if sent is not None:
            seq += 1
            assert game.set_keys("agent_0", sent, seq) is True
            assert game.set_keys("agent_0", sent, seq) is False
        if "tick" in event:
            record = game.tick().record
            assert record["keys"]["agent_0"] == event["tick"], f"event {i}"


def test_aliases_are_the_table() -> None:
    assert dict(KEY_ALIASES) == TABLE["aliases"]


@pytest.mark.parametrize(("raw", "expected"), TABLE["normalise"])
def test_normalise_key_gives_the_table(raw: str, expected: str) -> None:
    assert normalise_key(raw) == expected


@pytest.mark.parametrize("name", TABLE["valid_names"])
def test_names_browsers_send_are_accepted(name: str) -> None:
    assert check_key_name(name) == normalise_key(name)
    assert KeyMapping({name: 1}, 0).keys == [normalise_key(name)]


@pytest.mark.parametrize(("name", "suggestion"), TABLE["invalid_names"])
def test_names_browsers_never_send_are_refused_with_a_hint(name: str, suggestion: str | None) -> None:
    with pytest.raises(ControlsError) as info:
        KeyMapping({name: 1}, 0)
    message = str(info.value)
    assert message.startswith(f"key {name!r} is not a key name browsers send; ")
    if suggestion is None:
        assert "did you mean" not in message
        assert "'ArrowLeft', 'Space'" in message
    else:
        assert message.endswith(f"did you mean {suggestion!r}?")


def test_a_scene_with_a_misspelt_key_fails_at_start_up_with_the_fix() -> None:
    with pytest.raises(SceneConfigError) as info:
        GymScene("typo", env_creator=CountingEnv, render_fn=lambda env, surface: None, width=64, height=64,
                 controls={"ArrowLeft": 3, "ArrowRigth": 4})
    assert str(info.value) == ("GymScene 'typo': key 'ArrowRigth' is not a key name browsers send; "
                               "did you mean 'ArrowRight'?")
