"""GymScene(on_partner_drop=..., partner_drop_policy=...): what start-up accepts and refuses, and why."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.policies import OnnxPolicy, PythonPolicy
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import SceneConfigError

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN}


def takeover_here(observation: Any, agent_id: str) -> int:
    """A policy defined in this test module (not the env's): it does not ship to a p2p page."""
    return gatherers.STAY


def needs_three(observation: Any, agent_id: str, extra: Any) -> int:
    return gatherers.STAY


def scene(mode: str = "server", **overrides: Any) -> GymScene:
    humans = {"agent_0": "human", "agent_1": "human"} if mode != "browser" else {
        "agent_0": "human", "agent_1": gatherers.greedy_policy}
    kwargs: dict[str, Any] = dict(env_creator=gatherers.make_env, render_fn=gatherers.render, width=432, height=376,
                                  controls=CONTROLS, default_action=gatherers.STAY, policy_mapping=humans, mode=mode)
    kwargs.update(overrides)
    return GymScene("g", **kwargs)


def test_default_is_end_with_no_takeover() -> None:
    s = scene()
    s.check()
    assert s.on_partner_drop == "end" and s.takeover is None


@pytest.mark.parametrize("value", ["AI", "continue", None, 1])
def test_unknown_setting_is_refused(value: Any) -> None:
    with pytest.raises(SceneConfigError, match=r"on_partner_drop must be one of \('end', 'ai'\)"):
        scene(on_partner_drop=value)


def test_ai_needs_a_policy_and_end_takes_none() -> None:
    with pytest.raises(SceneConfigError, match="on_partner_drop='ai' needs partner_drop_policy"):
        scene(on_partner_drop="ai")
    with pytest.raises(SceneConfigError, match="partner_drop_policy is only used with on_partner_drop='ai'"):
        scene(partner_drop_policy=gatherers.greedy_policy)


@pytest.mark.parametrize("policy, name, frame_skip", [
    (gatherers.greedy_policy, "greedy_policy", 1),
    (PythonPolicy(gatherers.greedy_policy, frame_skip=3), "greedy_policy", 3),
    ("random", "random", 1),
])
def test_server_mode_accepts_functions_python_policies_and_random(policy: Any, name: str, frame_skip: int) -> None:
    s = scene(on_partner_drop="ai", partner_drop_policy=policy)
    s.check()
    assert s.takeover is not None
    assert (s.takeover.name, s.takeover.frame_skip, s.takeover.controller) == (name, frame_skip, f"ai-takeover:{name}")
    assert s.takeover.ref is None  # nothing is shipped in server mode


def test_a_policy_the_runtime_cannot_call_fails_at_start_up() -> None:
    s = scene(on_partner_drop="ai", partner_drop_policy=needs_three)
    with pytest.raises(SceneConfigError, match=r"partner_drop_policy for 'agent_0': policy needs_three needs "
                                               r"arguments \['observation', 'agent_id', 'extra'\]"):
        s.check()


def test_p2p_takes_a_function_of_the_env_module_and_names_it_for_the_page() -> None:
    s = scene("p2p", on_partner_drop="ai", partner_drop_policy=gatherers.greedy_policy)
    s.check()
    assert s.takeover is not None
    assert s.takeover.to_client() == {"ref": "gatherers:greedy_policy", "frame_skip": 1, "name": "greedy_policy",
                                      "controller": "ai-takeover:greedy_policy"}


def test_p2p_refuses_a_policy_whose_module_does_not_ship() -> None:
    s = scene("p2p", on_partner_drop="ai", partner_drop_policy=takeover_here)
    with pytest.raises(SceneConfigError, match="must be defined in a module that ships to the browser: the module "
                                               "of env_creator or render_fn \\(gatherers\\)"):
        s.check()


def test_p2p_refuses_random_and_onnx() -> None:
    with pytest.raises(SceneConfigError, match="partner_drop_policy='random' is server-mode only"):
        scene("p2p", on_partner_drop="ai", partner_drop_policy="random").check()
    onnx = OnnxPolicy(DEMO_DIR / "partner.onnx", gatherers.obs_vector)
    with pytest.raises(SceneConfigError, match="an OnnxPolicy cannot take over a dropped partner"):
        scene("p2p", on_partner_drop="ai", partner_drop_policy=onnx).check()


def test_browser_mode_has_no_partner_to_take_over() -> None:
    with pytest.raises(SceneConfigError, match="browser mode has one human"):
        scene("browser", on_partner_drop="ai", partner_drop_policy=gatherers.greedy_policy).check()


def test_a_lambda_is_refused_in_p2p_with_the_fix() -> None:
    with pytest.raises(SceneConfigError, match="partner_drop_policy is a lambda"):
        scene("p2p", on_partner_drop="ai", partner_drop_policy=lambda obs, agent: 0).check()
