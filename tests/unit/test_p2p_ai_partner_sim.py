"""An ONNX partner in a p2p game, two peers over the seeded network simulator (CPython, no browser).

The scene is a real ``GymScene(mode="p2p")`` with an ``OnnxPolicy``; its p2p block (``p2p_block``) carries the model
to two ``P2PGameHost``s. Under latency, jitter, loss, duplication and reordering (so rollbacks re-simulate frames
the AI already acted on) both peers must confirm the same trajectory, the AI's actions included, and every AI
action must be the one the AI-seat rule gives for that row's observation, seed and step. The pause between
episodes is frames of the simulation: both peers hold the same ones.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from onnx_graphs import mlp_bytes
from test_p2p_host import assert_same_trajectories, gatherers_config, play, uploads

from interactive_gym.browser.host import HostConfigError
from interactive_gym.browser.onnx_mlp import read_model
from interactive_gym.browser.p2p_agents import argmax, decision_uniform, pause_frames, sample_categorical
from interactive_gym.browser.p2p_config import p2p_block
from interactive_gym.browser.p2p_host import P2PGameHost
from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.controls import KeyMapping
from interactive_gym.envs.input_codecs import DiscreteCodec
from interactive_gym.envs.multiagent import as_multiagent
from interactive_gym.envs.spaces import Discrete
from interactive_gym.netcode.netsim import NetworkConditions
from interactive_gym.netcode.requests import InputStatus
from interactive_gym.policies import OnnxPolicy
from interactive_gym.scenes.gym_scene import GymScene

AGENTS = ("h0", "h1", "partner")
STEPS = 45
FRAME_SKIP = 2


class Line:
    """Three agents on a line; each observes everyone's position (scaled) and the step."""

    def __init__(self) -> None:
        self.possible_agents = list(AGENTS)
        self.agents = list(AGENTS)
        self.pos = dict.fromkeys(AGENTS, 0)
        self.t = 0

    def action_space(self, agent: str) -> Discrete:
        return Discrete(3)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.pos = {a: ((seed or 0) + i) % 7 for i, a in enumerate(AGENTS)}
        self.t = 0
        return self._obs(), {a: {} for a in AGENTS}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            self.pos[agent] += (0, 1, -1)[action]
        self.t += 1
        done = dict.fromkeys(AGENTS, False)
        return self._obs(), {a: float(-abs(self.pos[a])) for a in AGENTS}, done, dict(done), {a: {} for a in AGENTS}

    def _obs(self) -> dict[str, list[float]]:
        return {a: [self.pos[b] / 10 for b in AGENTS] + [self.t / 100] for a in AGENTS}


def make_line() -> Line:
    return Line()


def render_line(env: Line, surface: Any) -> None:
    for i, agent in enumerate(AGENTS):
        surface.rect(200 + 10 * env.pos[agent], 20 * i, 8, 8, color="#ffffff", id=agent)


def obs_vector(observation: list[float]) -> list[float]:
    return [float(v) for v in observation]


def onnx_scene(tmp_path: Path, *, pause_s: float, sample: bool = True) -> GymScene:
    model = tmp_path / "partner.onnx"
    model.write_bytes(mlp_bytes(4, (8,), 3, scale=0.6, seed=11))
    scene = GymScene("line", env_creator=make_line, render_fn=render_line, width=432, height=376,
                     controls={"ArrowUp": 1, "ArrowDown": 2}, mode="p2p", num_episodes=2, max_steps=STEPS,
                     episode_pause_s=pause_s,
                     policy_mapping={"h0": "human", "h1": "human",
                                     "partner": OnnxPolicy(model, obs_to_input=obs_vector, sample=sample,
                                                           frame_skip=FRAME_SKIP)})
    scene.check()
    return scene


def page_config(scene: GymScene, sample: bool = True) -> dict[str, Any]:
    """What a page gets: the agents as ``browser_scene_config`` lists them, the p2p block from the scene."""
    config = gatherers_config(max_steps=STEPS, episodes=2)
    config["bundle"].update(factory="test_p2p_ai_partner_sim:make_line", render="test_p2p_ai_partner_sim:render_line")
    config["controls"] = KeyMapping({"ArrowUp": 1, "ArrowDown": 2}, default_action=0).to_config()
    config["agents"] = {"h0": {"kind": "human", "player": 0}, "h1": {"kind": "human", "player": 1},
                        "partner": {"kind": "onnx", "url": "/unused", "sample": sample, "temperature": 1.0,
                                    "obs_to_input": "test_p2p_ai_partner_sim:obs_vector", "frame_skip": FRAME_SKIP}}
    config["p2p"] = {**p2p_block(scene, 2), "checksum_interval": 20}
    return config


def rule_action(model: Any, observation: list[float], seed: int, t: int, sample: bool) -> int:
    logits = model.forward(obs_vector(observation))
    return sample_categorical(logits, 1.0, decision_uniform(seed, "partner", t, FRAME_SKIP)) if sample else argmax(
        logits)


@pytest.mark.parametrize("conditions", [
    NetworkConditions(),
    NetworkConditions(latency_ms=50, jitter_ms=15, loss=0.1),
    NetworkConditions(latency_ms=100, jitter_ms=30, loss=0.2, duplicate=0.05, reorder=0.1),
], ids=["perfect", "rtt100-loss10", "rtt200-loss20-dup-reorder"])
@pytest.mark.parametrize("sample", [True, False], ids=["sampled", "argmax"])
def test_both_peers_confirm_the_same_ai_actions_and_they_follow_the_rule(tmp_path: Path,
                                                                          conditions: NetworkConditions,
                                                                          sample: bool) -> None:
    scene = onnx_scene(tmp_path, pause_s=0.5, sample=sample)
    config = page_config(scene, sample)
    hosts, _ = play(config, conditions, seed=4)
    assert all(h.done for h in hosts)
    assert_same_trajectories(hosts, STEPS)  # every field of every row, the partner's actions included
    if conditions.latency_ms:
        assert json.loads(hosts[0].stats_json())["rollbacks"]["count"] > 0  # frames really were re-simulated
    model = read_model((tmp_path / "partner.onnx").read_bytes())
    partner = []
    for episode in uploads(hosts[0]):
        for row in episode["steps"]:
            decided = row["t"] - row["t"] % FRAME_SKIP
            observed = next(r for r in episode["steps"] if r["t"] == decided)["observation"]["partner"]
            assert row["actions"]["partner"] == rule_action(model, observed, episode["seed"], row["t"], sample)
            partner.append(row["actions"]["partner"])
    assert len(set(partner)) > 1  # the network's choices depend on the observation (and the draws)


def test_the_pause_is_held_by_both_peers_between_episodes(tmp_path: Path) -> None:
    scene = onnx_scene(tmp_path, pause_s=1.0)
    hosts, _ = play(page_config(scene), NetworkConditions(latency_ms=40, jitter_ms=10, loss=0.05), seed=2)
    held = pause_frames(1.0, 30)
    assert held == 30
    for host in hosts:
        assert host.done
        # 2 episodes of 45 steps plus the 30 frames held between them, all confirmed before the game was done.
        assert host.session.confirmed_frame >= 2 * STEPS + held - 1
    assert_same_trajectories(hosts, STEPS)


def test_a_pause_is_frames_of_the_simulation_and_survives_a_rollback() -> None:
    env = as_multiagent(make_line())
    sim = P2PSimulation(env, player_agents=["h0", "h1", "partner"], codecs=[DiscreteCodec(3)] * 3, input_size=1,
                        policies={}, seeds=[5, 6], max_steps=4, pause_frames=3)
    inputs = [(b"\x01", InputStatus.CONFIRMED)] * 3
    ended = [sim.advance(frame, inputs) for frame in range(4)]
    assert ended == [None, None, None, 0] and (sim.episode, sim.t, sim.pause_left) == (1, 0, 3)
    saved = sim.save_state()
    held = [(sim.advance(frame, inputs), sim.pause_left, frame in sim.rows) for frame in range(4, 7)]
    assert held == [(None, 2, False), (None, 1, False), (None, 0, False)]  # no step, no row
    sim.advance(7, inputs)
    assert sim.rows[7][1]["t"] == 0 and sim.t == 1
    after = copy.deepcopy(sim.rows[7][1]["observation"])
    sim.load_state(saved)  # a rollback into the pause: the same frames are held again
    assert sim.pause_left == 3
    for frame in range(4, 8):
        sim.advance(frame, inputs)
    assert sim.rows[7][1]["observation"] == after and sim.t == 1
    assert sim.checksum(saved) != sim.checksum(sim.save_state())


def test_a_page_config_without_the_model_is_refused(tmp_path: Path) -> None:
    config = page_config(onnx_scene(tmp_path, pause_s=0))
    del config["p2p"]["ai"]
    with pytest.raises(HostConfigError, match="agent 'partner' is an ONNX agent but the p2p config carries no model"):
        P2PGameHost.from_config(config, 0)
