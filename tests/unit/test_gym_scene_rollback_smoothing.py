"""GymScene(rollback_smoothing_frames=N): checked at start-up, off by default, and shipped in the p2p block."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_gym_scene import scene

from interactive_gym.browser.p2p_config import p2p_block
from interactive_gym.scenes.gym_scene import MAX_ROLLBACK_SMOOTHING_FRAMES
from interactive_gym.scenes.scene import SceneConfigError

JS = Path(__file__).resolve().parents[2] / "interactive_gym" / "server" / "static" / "js" / "rollback_smoothing.js"
P2P_HUMANS = {"agent_0": "human", "agent_1": "human"}


def p2p_scene(**overrides: Any) -> Any:
    return scene(mode="p2p", policy_mapping=P2P_HUMANS, **overrides)


def test_off_by_default_and_absent_from_the_block() -> None:
    game = p2p_scene()
    assert game.rollback_smoothing_frames == 0
    assert "rollback_smoothing_frames" not in p2p_block(game, 2)


@pytest.mark.parametrize("frames", [1, 3, MAX_ROLLBACK_SMOOTHING_FRAMES])
def test_a_glide_length_reaches_the_p2p_block(frames: int) -> None:
    game = p2p_scene(rollback_smoothing_frames=frames)
    assert game.rollback_smoothing_frames == frames
    assert p2p_block(game, 2)["rollback_smoothing_frames"] == frames


def test_explicit_zero_is_allowed_in_every_mode() -> None:
    for mode in ("server", "browser"):
        assert scene(mode=mode, rollback_smoothing_frames=0).rollback_smoothing_frames == 0


@pytest.mark.parametrize("bad", [-1, MAX_ROLLBACK_SMOOTHING_FRAMES + 1, 2.0, "3", True, None])
def test_a_bad_value_fails_at_start_up_saying_what_to_change(bad: Any) -> None:
    with pytest.raises(SceneConfigError, match=re.escape(
            f"GymScene 'g': rollback_smoothing_frames must be an integer from 0 (off, the default) to "
            f"{MAX_ROLLBACK_SMOOTHING_FRAMES}") + ".*" + re.escape(f"(got {bad!r})")):
        p2p_scene(rollback_smoothing_frames=bad)


@pytest.mark.parametrize("mode", ["server", "browser"])
def test_smoothing_outside_p2p_is_refused(mode: str) -> None:
    with pytest.raises(SceneConfigError, match=f"only mode='p2p' has; remove it or use mode='p2p' .mode is '{mode}'"):
        scene(mode=mode, rollback_smoothing_frames=3)


def test_the_page_module_has_the_same_maximum() -> None:
    found = re.search(r"export const MAX_SMOOTHING_FRAMES = (\d+);", JS.read_text())
    assert found is not None, "rollback_smoothing.js must export MAX_SMOOTHING_FRAMES"
    assert int(found.group(1)) == MAX_ROLLBACK_SMOOTHING_FRAMES
