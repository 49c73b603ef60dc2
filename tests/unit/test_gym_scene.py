"""Tests for GymScene: constructor checks, start-up checks against the real environment, client data."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import gymnasium
import pytest

from interactive_gym.envs.multiagent import SingleAgentAdapter
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.scene import SceneConfigError

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}


def noop_render(env: Any, surface: Any) -> None:
    """A render function that draws nothing."""


def make_cartpole() -> Any:
    return gymnasium.make("CartPole-v1")


def scene(**overrides: Any) -> GymScene:
    kwargs: dict[str, Any] = dict(
        env_creator=gatherers.make_env,
        render_fn=gatherers.render,
        width=432,
        height=376,
        controls=CONTROLS,
        default_action=gatherers.STAY,
        policy_mapping={"agent_0": "human", "agent_1": "random"},
    )
    kwargs.update(overrides)
    return GymScene(kwargs.pop("scene_id", "g"), **kwargs)


# -- constructor ------------------------------------------------------------------------------------------------
def test_defaults() -> None:
    s = scene()
    assert (s.mode, s.fps, s.num_episodes, s.max_steps, s.seed) == ("server", 30, 1, 1000, None)
    assert s.kind == "gym"
    assert s.waiting_room_timeout_s == 120.0 and s.disconnect_grace_s == 10.0
    assert s.key_mapping.default_action == gatherers.STAY
    assert s.assets.names() == []


def test_env_creator_must_be_callable() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': env_creator must be a function that returns an env$"):
        scene(env_creator="gatherers.make_env")


def test_render_fn_must_be_callable() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': render_fn must be a function"):
        scene(render_fn=None)


@pytest.mark.parametrize("mode", ["local", "", None, "P2P"])
def test_mode_must_be_known(mode: object) -> None:
    with pytest.raises(SceneConfigError, match="mode must be one of \\('server', 'browser', 'p2p'\\)"):
        scene(mode=mode)


@pytest.mark.parametrize(
    ("name", "value", "low", "high"),
    [
        ("fps", 0, 1, 60), ("fps", 61, 1, 60), ("fps", 30.0, 1, 60), ("fps", True, 1, 60), ("fps", "30", 1, 60),
        ("num_episodes", 0, 1, 1000), ("num_episodes", 1001, 1, 1000),
        ("max_steps", 0, 1, 10**7), ("max_steps", 10**7 + 1, 1, 10**7),
        ("width", 15, 16, 4096), ("width", 4097, 16, 4096), ("height", 15, 16, 4096),
        ("input_delay", -1, 0, 30), ("input_delay", 31, 0, 30),
        ("prediction_window", -1, 0, 60), ("prediction_window", 61, 0, 60),
    ],
)
def test_integer_settings_have_ranges(name: str, value: object, low: int, high: int) -> None:
    also = ' or "auto"' if name == "input_delay" else ""
    with pytest.raises(SceneConfigError,
                       match=f"^GymScene 'g': {name} must be an integer from {low} to {high}{also}$"):
        scene(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"), [("fps", 1), ("fps", 60), ("width", 16), ("height", 4096), ("input_delay", 0),
                        ("prediction_window", 0), ("max_steps", 1), ("num_episodes", 1000)]
)
def test_integer_setting_bounds_are_inclusive(name: str, value: int) -> None:
    assert getattr(scene(**{name: value}), name) == value


@pytest.mark.parametrize("kwargs", [{"waiting_room_timeout_s": 0}, {"waiting_room_timeout_s": -5},
                                    {"disconnect_grace_s": -0.1}])
def test_timeouts(kwargs: dict) -> None:
    with pytest.raises(SceneConfigError, match="timeouts must be positive"):
        scene(**kwargs)


@pytest.mark.parametrize("kwargs", [{"waiting_room_timeout_s": float("nan")}, {"disconnect_grace_s": float("nan")},
                                    {"waiting_room_timeout_s": "120"}, {"disconnect_grace_s": None}])
def test_timeouts_that_are_not_numbers_are_config_errors(kwargs: dict) -> None:
    # NaN would pass "<= 0" and make the waiting room never expire anyone; a string would crash with a TypeError.
    with pytest.raises(SceneConfigError, match="^GymScene 'g': timeouts must be"):
        scene(**kwargs)


def test_zero_disconnect_grace_is_allowed() -> None:
    assert scene(disconnect_grace_s=0).disconnect_grace_s == 0.0


def test_bad_controls_become_scene_errors() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': the key mapping is empty"):
        scene(controls={})
    with pytest.raises(SceneConfigError, match="^GymScene 'g': keys \\['a'\\] are bound twice$"):
        scene(controls={"a": 1, "A": 2})


def test_bad_scene_id() -> None:
    with pytest.raises(SceneConfigError, match="use 1-64 letters"):
        scene(scene_id="bad id")


def test_nothing_is_built_at_construction() -> None:
    calls = []

    def creator() -> Any:
        calls.append(1)
        return gatherers.make_env()

    s = scene(env_creator=creator)
    assert calls == []
    s.check()
    assert calls == [1]


# -- check() -----------------------------------------------------------------------------------------------------
def test_check_returns_agents_and_humans() -> None:
    facts = scene().check()
    assert facts.agents == ("agent_0", "agent_1")
    assert facts.humans == ("agent_0",)


def test_check_two_humans() -> None:
    facts = scene(policy_mapping={"agent_0": "human", "agent_1": "human"}).check()
    assert facts.humans == ("agent_0", "agent_1")


def test_facts_runs_check_once() -> None:
    calls = []

    def creator() -> Any:
        calls.append(1)
        return gatherers.make_env()

    s = scene(env_creator=creator)
    assert s.facts.humans == ("agent_0",)
    assert s.facts.agents == ("agent_0", "agent_1")
    assert calls == [1]


def test_env_creator_failure_is_reported_with_context() -> None:
    def broken() -> Any:
        raise RuntimeError("no such map")

    with pytest.raises(SceneConfigError, match="^GymScene 'g': env_creator\\(\\*\\*env_kwargs\\) failed: "
                                               "RuntimeError: no such map$"):
        scene(env_creator=broken).check()


def test_bad_env_kwargs_are_reported() -> None:
    with pytest.raises(SceneConfigError, match="env_creator\\(\\*\\*env_kwargs\\) failed: ValueError: FruitGatherers"):
        scene(env_kwargs={"width": 1}).check()
    with pytest.raises(SceneConfigError, match="failed: TypeError"):
        scene(env_kwargs={"colour": "red"}).check()


def test_env_kwargs_are_passed() -> None:
    env = scene(env_kwargs={"width": 5, "height": 4}).make_env()
    assert (env.width, env.height) == (5, 4)


def test_make_env_builds_a_fresh_env_each_time() -> None:
    s = scene()
    assert s.make_env() is not s.make_env()


def test_key_mapping_action_outside_the_action_space() -> None:
    controls = {**CONTROLS, "x": 7}
    with pytest.raises(SceneConfigError) as info:
        scene(controls=controls).check()
    assert str(info.value) == (
        "GymScene 'g', agent 'agent_0': keys ['x'] map to action 7, which is outside the environment's action space"
    )


def test_default_action_outside_the_action_space() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g', agent 'agent_0': default_action -1 is outside"):
        scene(default_action=-1).check()


def test_key_mapping_is_checked_for_every_human() -> None:
    class Uneven(gatherers.FruitGatherers):
        def action_space(self, agent: str) -> Any:
            return gatherers.Discrete(5 if agent == "agent_0" else 3)

    s = scene(env_creator=Uneven, policy_mapping={"agent_0": "human", "agent_1": "human"})
    with pytest.raises(SceneConfigError, match="agent 'agent_1': keys \\['ArrowLeft'\\] map to action 3"):
        s.check()
    # With agent_1 an AI, the mapping only has to fit agent_0.
    assert scene(env_creator=Uneven).check().humans == ("agent_0",)


def test_unknown_agent_in_policy_mapping() -> None:
    mapping = {"agent_0": "human", "agent_1": "random", "agent_9": "random"}
    with pytest.raises(SceneConfigError) as info:
        scene(policy_mapping=mapping).check()
    assert str(info.value) == (
        "GymScene 'g': policy_mapping names unknown agent(s) ['agent_9']; the env has ['agent_0', 'agent_1']"
    )


def test_agent_without_policy() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': policy_mapping gives no policy for \\['agent_1'\\]"):
        scene(policy_mapping={"agent_0": "human"}).check()


def test_multiagent_env_without_policy_mapping_names_the_missing_agent() -> None:
    with pytest.raises(SceneConfigError, match="gives no policy for \\['agent_1'\\]"):
        scene(policy_mapping=None).check()


def test_no_human() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': no agent is 'human'; an experiment game needs at least"):
        scene(policy_mapping={"agent_0": "random", "agent_1": gatherers.greedy_policy}).check()


@pytest.mark.parametrize("policy", ["greedy", 3, None, ["human"]])
def test_policy_of_wrong_kind(policy: object) -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': policy for 'agent_1' must be 'human', 'random' or a"):
        scene(policy_mapping={"agent_0": "human", "agent_1": policy}).check()


def test_callable_and_onnx_like_policies_are_accepted() -> None:
    class OnnxLike:
        model_path = "policy.onnx"

    assert scene(policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy}).check().humans == ("agent_0",)
    onnx = {"agent_0": "human", "agent_1": OnnxLike()}
    assert scene(mode="browser", policy_mapping=onnx).check().humans == ("agent_0",)
    with pytest.raises(SceneConfigError, match="OnnxPolicy for 'agent_1' runs only in mode='browser'"):
        scene(policy_mapping=onnx).check()


def test_random_policy_is_server_mode_only() -> None:
    with pytest.raises(SceneConfigError, match="'random' for 'agent_1' is server-mode only"):
        scene(mode="browser").check()


def test_p2p_needs_two_humans() -> None:
    with pytest.raises(SceneConfigError, match="^GymScene 'g': mode='p2p' needs at least two 'human' agents$"):
        scene(mode="p2p").check()
    assert scene(mode="p2p", policy_mapping={"agent_0": "human", "agent_1": "human"}).check().humans == (
        "agent_0", "agent_1")


def test_missing_asset_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.png"
    with pytest.raises(SceneConfigError, match=f"^GymScene 'g': asset 'tree': .*'{missing}' does not exist$"):
        scene(assets={"tree": missing})


def test_asset_directory_is_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(SceneConfigError, match="asset 'dir': .* must end in one of .png"):
        scene(assets={"dir": tmp_path})


def test_present_asset_is_accepted(tmp_path: Path) -> None:
    image = tmp_path / "tree.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    s = scene(assets={"tree": str(image)})
    assert s.assets.resolve(s.assets.manifest("/x")["tree"]["url"].rsplit("/", 1)[1]) == image
    assert s.check().humans == ("agent_0",)


def test_check_fills_in_the_default_policy_mapping_for_single_agent_envs() -> None:
    s = GymScene("cart", env_creator=make_cartpole, render_fn=noop_render, width=600, height=400,
                 controls={"ArrowLeft": 0, "ArrowRight": 1})
    facts = s.check()
    assert facts.agents == ("agent_0",) and facts.humans == ("agent_0",)
    assert s.policy_mapping == {"agent_0": "human"}
    assert isinstance(s.make_env(), SingleAgentAdapter)


def test_gymnasium_space_validates_plain_ints() -> None:
    s = GymScene("cart", env_creator=make_cartpole, render_fn=noop_render, width=600, height=400,
                 controls={"ArrowLeft": 0, "ArrowRight": 2})
    with pytest.raises(SceneConfigError, match="keys \\['ArrowRight'\\] map to action 2, which is outside"):
        s.check()


# -- seeds and client data -------------------------------------------------------------------------------------------
def test_episode_seed_is_deterministic_distinct_and_31_bit() -> None:
    s = scene()
    seeds = [s.episode_seed(game_seed, ep) for game_seed in (0, 1, 12345, 2**40) for ep in range(5)]
    assert seeds == [s.episode_seed(game_seed, ep) for game_seed in (0, 1, 12345, 2**40) for ep in range(5)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= seed < 2**31 - 1 for seed in seeds)


def test_to_client() -> None:
    data = scene(fps=8, num_episodes=2, max_steps=50, background="#123456", title="Play").to_client()
    assert data == {
        "kind": "gym", "scene_id": "g", "title": "Play", "body_html": "",
        "mode": "server", "fps": 8, "num_episodes": 2, "max_steps": 50,
        "canvas": {"width": 432, "height": 376, "background": "#123456"},
        "keys": ["ArrowDown", "ArrowLeft", "ArrowRight", "ArrowUp"], "humans": 1, "assets": {},
    }


def test_to_client_counts_humans() -> None:
    assert scene(policy_mapping={"agent_0": "human", "agent_1": "human"}).to_client()["humans"] == 2


# -- start-up: colours and p2p action spaces --------------------------------------------------------------------
@pytest.mark.parametrize("background", ["dark blue", "#12345", "", 0x123456])
def test_a_background_that_is_not_a_colour_fails_at_start_up(background: object) -> None:
    with pytest.raises(SceneConfigError, match=r"^GymScene 'g': background (.* is not a colour|must be a colour)"):
        scene(background=background).check()


@pytest.mark.parametrize("background", ["blue", "#0d1b0d", "#abc"])
def test_colour_names_and_hex_backgrounds_pass(background: str) -> None:
    assert scene(background=background).check().humans == ("agent_0",)


def test_p2p_scenes_describe_the_players_action_spaces_for_the_page() -> None:
    facts = scene(mode="p2p", policy_mapping={"agent_0": "human", "agent_1": "human"}).check()
    assert facts.action_spaces == {"agent_0": {"kind": "discrete", "n": 5, "start": 0},
                                   "agent_1": {"kind": "discrete", "n": 5, "start": 0}}
    assert scene().check().action_spaces == {}


class DictSpaceGatherers(gatherers.FruitGatherers):
    def action_space(self, agent: str) -> Any:
        return gymnasium.spaces.Dict({"move": gymnasium.spaces.Discrete(5)})


def make_dict_space_env(**kwargs: Any) -> DictSpaceGatherers:
    return DictSpaceGatherers(**kwargs)


def test_a_p2p_action_space_that_cannot_travel_as_an_input_fails_at_start_up() -> None:
    bad = scene(mode="p2p", env_creator=make_dict_space_env, controls={"ArrowUp": {"move": 1}},
                default_action={"move": 0}, policy_mapping={"agent_0": "human", "agent_1": "human"})
    with pytest.raises(SceneConfigError) as caught:
        bad.check()
    assert str(caught.value) == (
        "GymScene 'g', agent 'agent_0': mode='p2p' sends inputs peer to peer and cannot encode actions of a Dict "
        "space as rollback inputs; supported: Discrete, MultiBinary, MultiDiscrete, Box (<= 16 elements). Give the "
        "human agents one of these action spaces (interactive_gym.envs.spaces.Discrete needs no numpy)")


# -- policies are built at start-up as the game's runtime builds them (server mode too) ---------------------------
def needs_three(observation: Any, agent_id: str, extra: Any) -> int:
    return 0


def takes_nothing() -> int:
    return 0


def one_argument(observation: Any) -> int:
    return 0


def seeded(observation: Any, agent_id: str, rng: Any = None) -> int:
    return 0


class SkipsZero:
    """A policy descriptor (as PythonPolicy) whose frame skip the runtime refuses."""

    frame_skip = 0

    def fn(self, observation: Any, agent_id: str) -> int:
        return 0


class ContinuousPartner(gatherers.FruitGatherers):
    def action_space(self, agent: str) -> Any:
        return gatherers.Discrete(5) if agent == "agent_0" else gymnasium.spaces.Box(-1.0, 1.0, (2,))


@pytest.mark.parametrize(("policy", "message"), [
    (needs_three, "GymScene 'g': policy for 'agent_1': policy needs_three needs arguments ['observation', "
                  "'agent_id', 'extra']; a policy is called as fn(observation, agent_id) or fn(observation), plus "
                  "rng=... if it has an 'rng' parameter"),
    (takes_nothing, "GymScene 'g': policy for 'agent_1': policy takes_nothing takes no observation; define it as "
                    "fn(observation, agent_id)"),
    (SkipsZero(), "GymScene 'g': policy for 'agent_1': frame_skip must be an integer >= 1, got 0"),
])
def test_a_policy_the_server_could_not_call_fails_at_start_up(policy: Any, message: str) -> None:
    with pytest.raises(SceneConfigError) as info:
        scene(mode="server", policy_mapping={"agent_0": "human", "agent_1": policy}).check()
    assert str(info.value) == message


def test_random_on_a_continuous_space_fails_at_start_up_with_the_fix() -> None:
    with pytest.raises(SceneConfigError) as info:
        scene(env_creator=ContinuousPartner).check()
    message = str(info.value)
    assert message.startswith("GymScene 'g': policy for 'agent_1': 'random' policy needs a discrete action space")
    assert message.endswith("; map the agent to a policy function instead")


@pytest.mark.parametrize("policy", [gatherers.greedy_policy, one_argument, seeded, "random"])
def test_policies_the_runtime_can_call_pass(policy: Any) -> None:
    assert scene(policy_mapping={"agent_0": "human", "agent_1": policy}).check().agents == ("agent_0", "agent_1")
