"""GymScene(input_delay="auto"): the bounds and budget are checked at start-up and reach the p2p block."""

from __future__ import annotations

import pytest
from test_gym_scene import scene

from interactive_gym.browser.p2p_config import p2p_block
from interactive_gym.netcode.input_delay import AutoInputDelay
from interactive_gym.scenes.scene import SceneConfigError


def test_auto_with_bounds_and_budget_reaches_the_p2p_block() -> None:
    game = scene(input_delay="auto", input_delay_bounds=(1, 4), rollback_budget_frames=3)
    assert game.auto_input_delay == AutoInputDelay(1, 4, 3)
    block = p2p_block(game, 2)
    assert block["input_delay"] == "auto"
    assert block["auto_input_delay"] == {"min": 1, "max": 4, "rollback_budget": 3}


def test_a_fixed_delay_has_no_auto_settings_in_the_block() -> None:
    game = scene(input_delay=3)
    assert game.auto_input_delay is None and "auto_input_delay" not in p2p_block(game, 2)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"input_delay": "fast"}, 'input_delay must be an integer from 0 to 30 or "auto"'),
    ({"input_delay": "auto", "input_delay_bounds": (5, 2)}, "0 <= min <= max <= 30"),
    ({"input_delay": "auto", "input_delay_bounds": (0, 31)}, "0 <= min <= max <= 30"),
    ({"input_delay": "auto", "input_delay_bounds": (0,)}, r"input_delay_bounds must be \(min, max\)"),
    ({"input_delay": "auto", "input_delay_bounds": 3}, "GymScene 'g'"),
    ({"input_delay": "auto", "rollback_budget_frames": -1}, "rollback_budget_frames must be 0..30"),
    ({"rollback_budget_frames": 2.5}, "rollback_budget_frames must be an integer"),
])
def test_bad_auto_settings_fail_at_start_up_with_what_to_change(kwargs, message: str) -> None:
    with pytest.raises(SceneConfigError, match=message):
        scene(**kwargs)
