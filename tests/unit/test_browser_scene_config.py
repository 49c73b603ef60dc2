"""OnnxPolicy / PythonPolicy descriptors and the browser scene config the page receives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interactive_gym.controls import KeyMapping
from interactive_gym.envs.determinism import PYTHON_HASH_SEED
from interactive_gym.policies import OnnxPolicy, PolicyConfigError, PythonPolicy, normalise_policy
from interactive_gym.server.pyodide_bundle import BundleRegistry, build_browser_bundle

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2}, default_action=0)


@pytest.fixture
def gatherers(monkeypatch):
    monkeypatch.syspath_prepend(str(DEMO))
    import gatherers as module

    return module


@pytest.fixture
def model(tmp_path) -> Path:
    path = tmp_path / "policy.onnx"
    path.write_bytes(b"\x08\x07")
    return path


def test_onnx_policy_validates_at_construction(gatherers, model, tmp_path) -> None:
    policy = OnnxPolicy(str(model), obs_to_input=gatherers.obs_vector, sample=True, frame_skip=2, temperature=0.5)
    assert policy.model_path == model.resolve() and policy.obs_to_input_ref == "gatherers:obs_vector"
    assert (policy.sample, policy.frame_skip, policy.temperature) == (True, 2, 0.5)
    with pytest.raises(PolicyConfigError, match="not found"):
        OnnxPolicy(tmp_path / "missing.onnx", obs_to_input=gatherers.obs_vector)
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(PolicyConfigError, match=r"\.onnx file"):
        OnnxPolicy(tmp_path / "weights.pt", obs_to_input=gatherers.obs_vector)
    with pytest.raises(PolicyConfigError, match="lambda"):
        OnnxPolicy(model, obs_to_input=lambda o: o)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(PolicyConfigError, match="frame_skip"):
            OnnxPolicy(model, obs_to_input=gatherers.obs_vector, frame_skip=bad)
    for bad in (0, -1.0, float("inf"), float("nan"), "1"):
        with pytest.raises(PolicyConfigError, match="temperature"):
            OnnxPolicy(model, obs_to_input=gatherers.obs_vector, temperature=bad)
    with pytest.raises(PolicyConfigError, match="sample"):
        OnnxPolicy(model, obs_to_input=gatherers.obs_vector, sample="yes")


def test_normalise_policy(gatherers) -> None:
    assert normalise_policy("a", "human") == "human"
    wrapped = normalise_policy("b", gatherers.greedy_policy)
    assert isinstance(wrapped, PythonPolicy) and wrapped.ref == "gatherers:greedy_policy" and wrapped.frame_skip == 1
    with pytest.raises(PolicyConfigError, match="agent 'c'"):
        normalise_policy("c", "robot")
    with pytest.raises(PolicyConfigError, match="agent 'd'.*lambda"):
        normalise_policy("d", lambda obs, agent: 0)


def build(gatherers, model, **overrides):
    from interactive_gym.browser.scene_config import browser_scene_config

    mapping = {"agent_0": "human",
               "agent_1": OnnxPolicy(model, obs_to_input=gatherers.obs_vector, sample=True, frame_skip=2)}
    bundle = build_browser_bundle("solo", env_creator=gatherers.make_env, render_fn=gatherers.render,
                                  policy_mapping=mapping)
    registry = BundleRegistry()
    registry.add(bundle)
    width, height = gatherers.canvas_size()
    kwargs = dict(scene_id="solo", bundle=bundle, manifest_url=registry.manifest_url(bundle),
                  env_creator=gatherers.make_env, render_fn=gatherers.render, policy_mapping=mapping,
                  agent_order=("agent_0", "agent_1"), controls=MAPPING, fps=30, num_episodes=2, max_steps=600, width=width, height=height,
                  seeds=[5, 6], env_kwargs={"num_fruits": 2})
    kwargs.update(overrides)
    return bundle, browser_scene_config(**kwargs)


def test_scene_config_shape(gatherers, model) -> None:
    bundle, config = build(gatherers, model)
    json.dumps(config)  # JSON-ready
    assert config["mode"] == "browser" and config["seeds"] == [5, 6]
    assert config["pyodide"] == {"index_url": "/vendor/pyodide/", "packages": [],
                                 "env": {"PYTHONHASHSEED": PYTHON_HASH_SEED}}
    assert config["bundle"] == {"manifest_url": f"/bundle/solo/{bundle.bundle_hash}/manifest.json",
                                "hash": bundle.bundle_hash, "factory": "gatherers:make_env",
                                "render": "gatherers:render", "env_kwargs": {"num_fruits": 2}}
    assert config["controls"] == MAPPING.to_config()
    onnx = config["agents"]["agent_1"]
    assert onnx == {"kind": "onnx", "url": f"/bundle/solo/{bundle.bundle_hash}/files/{bundle.index_of('models/agent_1.onnx')}",
                    "obs_to_input": "gatherers:obs_vector", "sample": True, "temperature": 1.0, "frame_skip": 2}
    assert config["agents"]["agent_0"] == {"kind": "human"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fps": 0}, "fps"),
        ({"num_episodes": 3}, "seeds must be 3 integers"),
        ({"seeds": [1, "2"]}, "seeds"),
        ({"env_kwargs": {"f": object()}}, "JSON"),
        ({"scene_id": "other"}, "belongs to scene"),
        ({"controls": None}, "no controls"),
        ({"pyodide": {"index_url": "https://cdn.example/pyodide"}}, "ending in '/'"),
        ({"pyodide": {"packages": ["numpy", 3]}}, "package names"),
    ],
)
def test_scene_config_errors_say_what_to_change(gatherers, model, overrides, message) -> None:
    from interactive_gym.browser.scene_config import BrowserSceneError

    with pytest.raises(BrowserSceneError, match=message):
        build(gatherers, model, **overrides)


def test_custom_pyodide_and_seed_choice(gatherers, model) -> None:
    from interactive_gym.browser.scene_config import MAX_SEED, choose_seeds

    _, config = build(gatherers, model, pyodide={"index_url": "/full-pyodide/", "packages": ["numpy"]})
    assert config["pyodide"] == {"index_url": "/full-pyodide/", "packages": ["numpy"],
                                 "env": {"PYTHONHASHSEED": PYTHON_HASH_SEED}}
    seeds = choose_seeds(50)
    assert len(seeds) == 50 and all(0 <= s < MAX_SEED for s in seeds) and len(set(seeds)) > 45
    assert choose_seeds(3, draw=lambda n: n - 1) == [MAX_SEED - 1] * 3


# -- agent order: the environment's, the one source every part of p2p numbers players by -------------------------
def p2p_scene(gatherers, mapping):
    from interactive_gym.scenes.gym_scene import GymScene

    width, height = gatherers.canvas_size()
    scene = GymScene("pair", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
                     controls={"ArrowUp": 1, "ArrowDown": 2}, default_action=0, policy_mapping=mapping, mode="p2p")
    scene.check()
    return scene


def p2p_config(gatherers, scene, agent_order):
    from interactive_gym.browser.scene_config import browser_scene_config

    bundle = build_browser_bundle("pair", env_creator=gatherers.make_env, render_fn=gatherers.render,
                                  policy_mapping=scene.policy_mapping)
    registry = BundleRegistry()
    registry.add(bundle)
    width, height = gatherers.canvas_size()
    config = browser_scene_config(
        scene_id="pair", bundle=bundle, manifest_url=registry.manifest_url(bundle), env_creator=gatherers.make_env,
        render_fn=gatherers.render, policy_mapping=scene.policy_mapping, controls=scene.key_mapping, fps=30,
        num_episodes=1, max_steps=30, width=width, height=height, seeds=[9], mode="p2p", agent_order=agent_order)
    config["p2p"] = {"input_delay": 2, "prediction_window": 8, "num_players": 2, "disconnect_timeout_ms": 5000,
                     "checksum_interval": 30, "faults": None}
    return config


@pytest.mark.parametrize("mapping_order", [["agent_0", "agent_1"], ["agent_1", "agent_0"]])
def test_p2p_players_agents_and_participants_follow_the_env_order(gatherers, mapping_order) -> None:
    """A policy_mapping written out of env order must not store a participant under another player's agent."""
    from interactive_gym.browser.p2p_host import P2PGameHost
    from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator

    scene = p2p_scene(gatherers, {agent: "human" for agent in mapping_order})
    assert scene.facts.agents == ("agent_0", "agent_1") and scene.facts.humans == ("agent_0", "agent_1")
    config = p2p_config(gatherers, scene, scene.facts.agents)
    assert list(config["agents"]) == ["agent_0", "agent_1"]
    assert {a: s["player"] for a, s in config["agents"].items()} == {"agent_0": 0, "agent_1": 1}
    # The server's side of the same game (what p2p_games does): players numbered by scene.facts.humans.
    game = PyodideGameCoordinator().create_game("pair", [("alice", "sid-a"), ("bob", "sid-b")],
                                                list(scene.facts.humans), now=0.0)
    for player, participant in game.players.items():
        host = P2PGameHost.from_config(config, player)  # what that participant's page plays
        assert host.my_agent == game.agents[player]
        stored = {game.agents[p]: pid for p, pid in game.players.items()}  # the upload's agent -> participant
        assert stored[host.my_agent] == participant
    assert game.players == {0: "alice", 1: "bob"} and game.agents == {0: "agent_0", 1: "agent_1"}


def test_agent_order_lists_every_kind_in_env_order_whatever_the_mapping_order(gatherers, model) -> None:
    onnx = OnnxPolicy(model, obs_to_input=gatherers.obs_vector)
    _, config = build(gatherers, model, policy_mapping={"agent_1": onnx, "agent_0": "human"},
                      agent_order=("agent_0", "agent_1"))
    assert list(config["agents"]) == ["agent_0", "agent_1"]
    assert config["agents"]["agent_0"] == {"kind": "human"} and config["agents"]["agent_1"]["kind"] == "onnx"


@pytest.mark.parametrize("order", [("agent_0",), ("agent_0", "agent_1", "agent_2"), ("agent_0", "agent_0")])
def test_an_agent_order_that_does_not_match_the_mapping_is_refused(gatherers, model, order) -> None:
    from interactive_gym.browser.scene_config import BrowserSceneError

    with pytest.raises(BrowserSceneError, match="map each of the environment's agents exactly once"):
        build(gatherers, model, agent_order=order)


def needs_three(observation, agent_id, extra):
    return 0


def one_argument(observation):
    return 0


def test_python_policy_checks_the_runtime_call_rules_at_load_time() -> None:
    assert PythonPolicy(one_argument, frame_skip=3).frame_skip == 3
    with pytest.raises(PolicyConfigError, match="needs arguments"):
        PythonPolicy(needs_three)
    with pytest.raises(PolicyConfigError, match="agent 'x'.*needs arguments"):
        normalise_policy("x", needs_three)
    for bad in (0, 2.0, True):
        with pytest.raises(PolicyConfigError, match="frame_skip"):
            PythonPolicy(one_argument, frame_skip=bad)
