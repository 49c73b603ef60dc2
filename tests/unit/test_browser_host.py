"""BrowserGameHost in CPython: the same Python that runs in the page, driven the way browser_game.js drives it."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

from interactive_gym.browser.host import BrowserGameHost, HostConfigError
from interactive_gym.controls import KeyMapping
from interactive_gym.envs.stepping import MAX_INFO_CHARS
from interactive_gym.rendering import Surface

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.fixture(scope="module")
def gatherers():
    sys.path.insert(0, str(DEMO))
    try:
        import gatherers as module
    finally:
        sys.path.remove(str(DEMO))
    return module


MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)


def make_host(gatherers, agents=None, max_steps=20, mapping=MAPPING, **kw):
    width, height = gatherers.canvas_size()
    return BrowserGameHost(
        env_factory=gatherers.make_env,
        render_fn=gatherers.render,
        env_kwargs=kw.get("env_kwargs", {}),
        agents=agents or {"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "fn": gatherers.greedy_policy}},
        key_mapping=mapping,
        surface=Surface(width, height, "#000000"),
        max_steps=max_steps,
    )


def play(host, seed, keys_per_frame):
    host.reset(seed)
    packets = []
    for keys in keys_per_frame:
        if host.episode_over:
            break
        packets.append(json.loads(host.frame("\n".join(keys))))
    return packets


def strip_ts(rows):
    return [{k: v for k, v in row.items() if k != "client_ts"} for row in rows]


def test_keys_map_to_human_actions_and_rows_have_server_mode_columns(gatherers) -> None:
    host = make_host(gatherers)
    first = json.loads(host.reset(5))
    assert first["full"] is True
    keys = [["ArrowRight"], ["ArrowRight", "ArrowUp"], [], ["ArrowDown", "Escape"], ["x"]]
    play(host, 5, keys)
    rows = host.steps
    assert [r["t"] for r in rows] == [0, 1, 2, 3, 4]
    assert [r["keys"]["agent_0"] for r in rows] == [["ArrowRight"], ["ArrowRight", "ArrowUp"], [], ["ArrowDown"], []]
    assert [r["actions"]["agent_0"] for r in rows] == [4, 1, 0, 2, 0]
    assert set(rows[0]) == {"t", "observation", "actions", "rewards", "terminated", "truncated", "info", "keys",
                            "client_ts"}
    assert set(rows[0]["observation"]) == {"agent_0", "agent_1"}
    assert json.loads(host.steps_json()) == rows


def test_python_policy_acts_on_its_observation(gatherers) -> None:
    host = make_host(gatherers)
    host.reset(3)
    obs_before = host._obs["agent_1"]
    host.frame("")
    assert host.steps[0]["actions"]["agent_1"] == gatherers.greedy_policy(obs_before, "agent_1")


def test_max_steps_ends_the_episode_and_truncates_everyone(gatherers) -> None:
    host = make_host(gatherers, max_steps=4)
    play(host, 1, [[]] * 10)
    assert host.episode_over
    assert len(host.steps) == 4
    assert host.steps[-1]["truncated"] == {"agent_0": True, "agent_1": True}
    assert host.steps[-2]["truncated"] == {"agent_0": False, "agent_1": False}
    with pytest.raises(RuntimeError, match="reset"):
        host.frame("")
    host.reset(2)
    assert host.steps == [] and not host.episode_over and host.t == 0


def test_same_seed_and_keys_give_the_same_episode(gatherers) -> None:
    keys = [["ArrowLeft"]] * 3 + [["ArrowDown"]] * 5 + [[]] * 4
    a, b = make_host(gatherers), make_host(gatherers)
    packets_a, packets_b = play(a, 11, keys), play(b, 11, keys)
    assert strip_ts(a.steps) == strip_ts(b.steps)
    assert packets_a == packets_b
    play(b, 12, keys)
    assert strip_ts(a.steps) != strip_ts(b.steps)


def encoder_one(observation):
    return [v / 2 for v in observation]


def encoder_two(observation, agent_id):
    return [len(agent_id)] + list(observation)


def test_onnx_agents_get_inputs_and_actions_from_js_with_frame_skip(gatherers) -> None:
    agents = {"agent_0": {"kind": "human"}, "agent_1": {"kind": "onnx", "obs_to_input": encoder_one, "frame_skip": 3}}
    host = make_host(gatherers, agents=agents)
    assert host.onnx_agents == ["agent_1"]
    host.reset(4)
    assert host.onnx_due("agent_1")
    with pytest.raises(RuntimeError, match="set_external_action"):
        host.frame("")
    inputs = host.observation_input("agent_1")
    assert inputs == [v / 2 for v in host._obs["agent_1"]] and all(isinstance(v, float) for v in inputs)
    due = []
    for t in range(7):
        due.append(host.onnx_due("agent_1"))
        if due[-1]:
            host.set_external_action("agent_1", t % 5)
        host.frame("")
    assert due == [True, False, False, True, False, False, True]
    assert [r["actions"]["agent_1"] for r in host.steps] == [0, 0, 0, 3, 3, 3, 1]
    with pytest.raises(KeyError):
        host.set_external_action("agent_0", 1)


def test_two_argument_encoders_receive_the_agent_id(gatherers) -> None:
    agents = {"agent_0": {"kind": "human"}, "agent_1": {"kind": "onnx", "obs_to_input": encoder_two}}
    host = make_host(gatherers, agents=agents)
    host.reset(0)
    assert host.observation_input("agent_1")[0] == float(len("agent_1"))


def random_walker(observation, agent_id, rng):
    return rng.randrange(5)


def test_python_policies_with_rng_are_seeded_per_episode_and_agent(gatherers) -> None:
    agents = {"agent_0": {"kind": "python", "fn": random_walker, "frame_skip": 2},
              "agent_1": {"kind": "python", "fn": random_walker}}
    host = make_host(gatherers, agents=agents, mapping=None)
    play(host, 9, [[]] * 12)
    first = [(r["actions"]["agent_0"], r["actions"]["agent_1"]) for r in host.steps]
    play(host, 9, [[]] * 12)
    assert [(r["actions"]["agent_0"], r["actions"]["agent_1"]) for r in host.steps] == first
    a0 = [x for x, _ in first]
    assert all(a0[i] == a0[i + 1] for i in range(0, 12, 2)), "frame_skip=2 repeats every action once"
    rng = random.Random("9:agent_1")
    assert [y for _, y in first] == [rng.randrange(5) for _ in range(12)]


class Exotic:
    def __repr__(self) -> str:
        return "Exotic()"


class InfoEnv:
    """Single-agent env whose info holds non-JSON values; tests the record's sanitising and the adapter."""

    def __init__(self, size: int = 1) -> None:
        self.size = size

    def reset(self, seed=None, options=None):
        return (0, 0), {}

    def step(self, action):
        return (1, action), 0.5, False, False, {"obj": Exotic(), "nan": float("nan"), "blob": "x" * self.size}


def make_info_env(size: int = 1) -> InfoEnv:
    return InfoEnv(size)


def draw_nothing(env, surface) -> None:
    surface.rect(0, 0, 1, 1, color="red", id="dot")


def test_single_agent_envs_are_wrapped_and_infos_made_json(gatherers) -> None:
    host = BrowserGameHost(env_factory=make_info_env, render_fn=draw_nothing, env_kwargs={"size": 3},
                           agents={"agent_0": {"kind": "human"}}, key_mapping=MAPPING, surface=Surface(4, 4),
                           max_steps=5)
    host.reset(0)
    host.frame("ArrowUp")
    row = host.steps[0]
    assert row["observation"] == {"agent_0": [0, 0]}
    assert row["actions"] == {"agent_0": 1}
    assert row["rewards"] == {"agent_0": 0.5}
    assert row["info"] == {"agent_0": {"obj": "Exotic()", "nan": "nan", "blob": "xxx"}}
    big = BrowserGameHost(env_factory=make_info_env, render_fn=draw_nothing, env_kwargs={"size": MAX_INFO_CHARS},
                          agents={"agent_0": {"kind": "human"}}, key_mapping=MAPPING, surface=Surface(4, 4),
                          max_steps=5)
    big.reset(0)
    big.frame("")
    assert set(big.steps[0]["info"]) == {"_truncated"}
    assert len(big.steps[0]["info"]["_truncated"]) == MAX_INFO_CHARS


class Exploding(InfoEnv):
    def step(self, action):
        raise ZeroDivisionError("env bug")


def make_exploding() -> Exploding:
    return Exploding()


def test_env_exceptions_propagate_and_keep_earlier_rows() -> None:
    host = BrowserGameHost(env_factory=make_exploding, render_fn=draw_nothing, env_kwargs={},
                           agents={"agent_0": {"kind": "human"}}, key_mapping=MAPPING, surface=Surface(4, 4),
                           max_steps=5)
    host.reset(0)
    with pytest.raises(ZeroDivisionError):
        host.frame("")
    assert host.steps == []


@pytest.mark.parametrize(
    ("agents", "mapping", "message"),
    [
        ({"agent_0": {"kind": "human"}, "agent_1": {"kind": "human"}}, MAPPING, "one human"),
        ({"agent_0": {"kind": "human"}}, MAPPING, "do not match"),
        ({"agent_0": {"kind": "human"}, "agent_1": {"kind": "alien"}}, MAPPING, "kind 'alien'"),
        ({"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "fn": print}}, None, "controls"),
    ],
)
def test_bad_agent_configs_fail_clearly(gatherers, agents, mapping, message) -> None:
    with pytest.raises(HostConfigError, match=message):
        make_host(gatherers, agents=agents, mapping=mapping)


def test_from_config_resolves_references(gatherers, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(DEMO))
    width, height = gatherers.canvas_size()
    config = {
        "max_steps": 3,
        "canvas": {"width": width, "height": height, "background": "#000000"},
        "bundle": {"factory": "gatherers:make_env", "render": "gatherers:render", "env_kwargs": {"num_fruits": 2}},
        "controls": MAPPING.to_config(),
        "agents": {"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "ref": "gatherers:greedy_policy"}},
    }
    host = BrowserGameHost.from_config_json(json.dumps(config))
    packet = json.loads(host.reset(1))
    assert packet["full"] is True and packet["size"] == [width, height]
    host.frame("ArrowRight")
    assert host.steps[0]["actions"]["agent_0"] == 4
    assert len(host.env.fruits) == 2
