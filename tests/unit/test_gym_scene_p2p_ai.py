"""Start-up checks of AI agents in p2p scenes: what GymScene accepts, what it refuses and how it says so."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from onnx_graphs import conv_bytes, mlp_bytes
from test_p2p_ai_partner_sim import make_line, obs_vector, render_line

from interactive_gym.browser.p2p_config import p2p_block
from interactive_gym.policies import OnnxPolicy, PolicyConfigError
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import SceneConfigError


def line_scene(partner: Any, mode: str = "p2p", **kwargs: Any) -> GymScene:
    mapping = {"h0": "human", "h1": "human", **({"partner": partner} if partner is not None else {})}
    return GymScene("line", env_creator=make_line, render_fn=render_line, width=432, height=376,
                    controls={"ArrowUp": 1, "ArrowDown": 2}, mode=mode, policy_mapping=mapping, **kwargs)


def onnx(tmp_path: Path, blob: bytes, **kwargs: Any) -> OnnxPolicy:
    path = tmp_path / "partner.onnx"
    path.write_bytes(blob)
    return OnnxPolicy(path, obs_to_input=obs_vector, **kwargs)


def stay(observation: list[float]) -> int:
    return 0


def wrong_length(observation: list[float]) -> list[float]:
    return [0.0] * 5


def test_an_onnx_partner_is_accepted_and_its_model_reaches_the_p2p_block(tmp_path: Path) -> None:
    blob = mlp_bytes(4, (6,), 3)
    scene = line_scene(onnx(tmp_path, blob, sample=True))
    assert scene.check().humans == ("h0", "h1")
    block = p2p_block(scene, 2)
    assert block["num_players"] == 2  # the AI is no player: it sends no input
    assert base64.b64decode(block["ai"]["partner"]["model"]) == blob
    assert block["episode_pause_s"] == 2.0  # the default pause between episodes


def test_a_python_partner_needs_no_model(tmp_path: Path) -> None:
    scene = line_scene(stay)
    scene.check()
    assert p2p_block(scene, 2)["ai"] == {}


def test_an_agent_with_no_policy_is_named() -> None:
    with pytest.raises(SceneConfigError, match=r"policy_mapping gives no policy for \['partner'\]"):
        line_scene(None).check()


def test_an_onnx_model_path_that_does_not_exist_fails_when_the_experiment_loads(tmp_path: Path) -> None:
    with pytest.raises(PolicyConfigError, match="OnnxPolicy model file not found"):
        OnnxPolicy(tmp_path / "missing.onnx", obs_to_input=obs_vector)


def test_a_model_file_gone_before_start_up_is_named(tmp_path: Path) -> None:
    policy = onnx(tmp_path, mlp_bytes(4, (6,), 3))
    policy.model_path.unlink()
    with pytest.raises(SceneConfigError, match="OnnxPolicy for 'partner': cannot read the model file .*check model_path"):
        line_scene(policy).check()


@pytest.mark.parametrize(("blob", "encoder", "message"), [
    (mlp_bytes(4, (6,), 3), wrong_length, "obs_to_input returns 5 values but the ONNX model takes 4"),
    (mlp_bytes(4, (6,), 2), obs_vector, "gives 2 outputs but the agent has 3 actions"),
    (conv_bytes(), obs_vector, "operator 'Conv' is not supported in p2p mode"),
])
def test_an_onnx_partner_that_cannot_play_fails_at_start_up(tmp_path: Path, blob: bytes, encoder: Any,
                                                            message: str) -> None:
    path = tmp_path / "partner.onnx"
    path.write_bytes(blob)
    with pytest.raises(SceneConfigError, match=f"^GymScene 'line': OnnxPolicy for 'partner' in mode='p2p': .*{message}"):
        line_scene(OnnxPolicy(path, obs_to_input=encoder)).check()


def test_server_mode_still_refuses_onnx(tmp_path: Path) -> None:
    scene = GymScene("solo", env_creator=make_line, render_fn=render_line, width=432, height=376,
                     controls={"ArrowUp": 1}, mode="server",
                     policy_mapping={"h0": "human", "h1": obs_vector, "partner": onnx(tmp_path, mlp_bytes(4))})
    with pytest.raises(SceneConfigError, match="OnnxPolicy for 'partner' runs only in mode='browser' or 'p2p'"):
        scene.check()


@pytest.mark.parametrize("bad", [-1, 31, float("nan"), "2s"])
def test_episode_pause_is_checked(bad: Any) -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'line': episode_pause_s must be a number of seconds"):
        line_scene("human", episode_pause_s=bad)


def test_no_pause_is_allowed() -> None:
    scene = line_scene("human", episode_pause_s=0)
    scene.check()
    assert p2p_block(scene, 3)["episode_pause_s"] == 0.0
