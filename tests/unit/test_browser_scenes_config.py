"""What BrowserScenes puts in a page's config: the env's agent order, the players' action spaces (p2p), the
upload cap, one Pyodide for preload and game, and one p2p block for the server and the preflight."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StaticScene
from interactive_gym.browser.p2p_config import CHECKSUM_INTERVAL, p2p_block
from interactive_gym.browser.scene_config import pyodide_settings
from interactive_gym.envs.determinism import PYTHON_HASH_SEED
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.upload_validation import MAX_UPLOAD_BYTES

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402


def game(scene_id: str, mode: str, mapping: dict[str, Any], **extra: Any) -> GymScene:
    width, height = gatherers.canvas_size()
    return GymScene(scene_id, env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
                    controls={"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN}, default_action=gatherers.STAY,
                    policy_mapping=mapping, mode=mode, max_steps=5, num_episodes=2, **extra)


def experiment(*scenes: GymScene, pyodide: dict[str, Any] | None = None) -> RemoteConfig:
    config = RemoteConfig().experiment("cfg", stager=Stager([StaticScene("intro"), *scenes, EndScene("end")]))
    if pyodide is not None:
        config.pyodide(**pyodide)
    config.validate()
    return config


class Visitor:
    def __init__(self, config: RemoteConfig, index: int = 0) -> None:
        self.participant_id = "p1"
        self.sequence = config.stager.sequence_for("p1")  # type: ignore[union-attr]
        self.index = index
        self.scene = self.sequence[index]


def test_agents_come_in_the_env_order_whatever_order_the_mapping_was_written_in() -> None:
    scene = game("solo", "browser", {"agent_1": gatherers.greedy_policy, "agent_0": "human"})
    browser = BrowserScenes(experiment(scene))
    config = browser.scene_config(scene, [1, 2])
    assert scene.facts.agents == ("agent_0", "agent_1")
    assert list(config["agents"]) == ["agent_0", "agent_1"]
    assert config["agents"]["agent_1"] == {"kind": "python", "ref": "gatherers:greedy_policy", "frame_skip": 1}
    assert "action_spaces" not in config  # browser mode builds no peer input codecs


def test_p2p_configs_carry_the_players_action_spaces_and_the_page_host_needs_no_env_space(monkeypatch) -> None:
    from interactive_gym.browser import p2p_host, p2p_host_config

    scene = game("duo", "p2p", {"agent_1": "human", "agent_0": "human"})
    browser = BrowserScenes(experiment(scene))
    config = browser.scene_config(scene, [1, 2], mode="p2p")
    config["p2p"] = p2p_block(scene, 2)
    assert config["action_spaces"] == {a: dict(d) for a, d in scene.facts.action_spaces.items()}
    assert set(config["action_spaces"]) == {"agent_0", "agent_1"}
    assert {a: s["player"] for a, s in config["agents"].items()} == {"agent_0": 0, "agent_1": 1}

    def no_gymnasium(env: Any, agent: str) -> Any:
        raise AssertionError(f"the page host asked the env for {agent}'s action space")

    monkeypatch.setattr(p2p_host_config, "action_space_of", no_gymnasium)  # where the host reads its config
    host = p2p_host.P2PGameHost.from_config(config, 1)
    assert host.my_agent == "agent_1"


def test_every_browser_and_p2p_config_names_the_servers_upload_cap() -> None:
    solo = game("solo", "browser", {"agent_0": "human", "agent_1": gatherers.greedy_policy})
    duo = game("duo", "p2p", {"agent_0": "human", "agent_1": "human"})
    browser = BrowserScenes(experiment(solo, duo))
    assert browser.scene_config(solo, [1, 2])["max_upload_bytes"] == MAX_UPLOAD_BYTES
    assert browser.scene_config(duo, [1, 2], mode="p2p")["max_upload_bytes"] == MAX_UPLOAD_BYTES


@pytest.mark.parametrize("pyodide", [None, {"index_url": "/full-pyodide/", "packages": ["numpy"]}])
def test_the_preload_starts_the_interpreter_the_game_uses(pyodide: dict[str, Any] | None) -> None:
    solo = game("solo", "browser", {"agent_0": "human", "agent_1": gatherers.greedy_policy})
    duo = game("duo", "p2p", {"agent_0": "human", "agent_1": "human"})
    config = experiment(solo, duo, pyodide=pyodide)
    browser = BrowserScenes(config)
    before_solo = browser.preload_for(Visitor(config, 0))  # on the intro page, the browser game is next
    before_duo = browser.preload_for(Visitor(config, 1))  # during the browser game, the p2p game is next
    assert before_solo is not None and before_duo is not None
    assert before_solo["pyodide"] == browser.scene_config(solo, [1, 2])["pyodide"]
    assert before_duo["pyodide"] == browser.scene_config(duo, [1, 2], mode="p2p")["pyodide"]
    assert before_solo["pyodide"]["env"] == {"PYTHONHASHSEED": PYTHON_HASH_SEED}  # the seeded interpreter
    expected = pyodide or {"index_url": "/vendor/pyodide/", "packages": []}
    assert (before_solo["pyodide"]["index_url"], before_solo["pyodide"]["packages"]) == (
        expected["index_url"], expected["packages"])
    assert browser.preload_for(Visitor(config, 2)) is None  # no in-browser scene after the p2p one


def test_pyodide_settings_given_their_own_result_give_it_back() -> None:
    for given in (None, {"index_url": "/x/", "packages": ["numpy"]}):
        settings = pyodide_settings(given)
        assert pyodide_settings(settings) == settings


def test_the_server_and_the_preflight_send_one_p2p_block() -> None:
    from interactive_gym.preflight.runner import _page_config
    from interactive_gym.server.modes.p2p_mode import P2PMode
    from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator

    scene = game("duo", "p2p", {"agent_0": "human", "agent_1": "human"}, input_delay=3, prediction_window=6,
                 disconnect_grace_s=2.5, seed=7)
    browser = BrowserScenes(experiment(scene))
    mode = P2PMode(sio=None, writer=None, browser=browser, webrtc=None, hooks=None)  # type: ignore[arg-type]
    played = PyodideGameCoordinator().create_game("duo", [("ann", "s1"), ("bob", "s2")], list(scene.facts.humans),
                                                   now=0.0, seed=0)
    served = mode.scene_config(scene, played)
    checked = _page_config(browser, scene)
    assert served["p2p"] == checked["p2p"] == {
        "input_delay": 3, "prediction_window": 6, "num_players": 2, "disconnect_timeout_ms": 2500,
        "checksum_interval": CHECKSUM_INTERVAL, "faults": None, "takeover": None, "episode_pause_s": 2.0, "ai": {}}
    assert served == checked  # game seed 0 is what the preflight plays: the whole config is the page's


def test_the_p2p_block_copies_the_fault_profile_and_refuses_a_lone_player() -> None:
    scene = game("duo", "p2p", {"agent_0": "human", "agent_1": "human"})
    faults = {"loss": 0.1}
    block = p2p_block(scene, 2, faults)
    faults["loss"] = 0.9
    assert block["faults"] == {"loss": 0.1}
    for bad in (1, 0, True, 2.0):
        with pytest.raises(ValueError, match="at least two players"):
            p2p_block(scene, bad)  # type: ignore[arg-type]
