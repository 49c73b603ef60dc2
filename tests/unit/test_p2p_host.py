"""P2PGameHost in CPython: two hosts (the Python half of two p2p pages) over the seeded in-memory network.

They must produce identical confirmed trajectories, also when latency, jitter and loss force rollbacks, and the rows
they upload must be the rollback-corrected ones (each peer's keys explain its own agent's actions).
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.browser.host import HostConfigError
from interactive_gym.browser.p2p_host import P2PGameHost
from interactive_gym.controls import KeyMapping
from interactive_gym.envs.spaces import Discrete
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))  # gatherers.py, as the bundle ships it into Pyodide

KEYS = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]
MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
FRAME_MS = 1000 / 30


class Trio:
    """Three agents on a line: two humans and a random-walking AI (draws from the policy's own rng)."""

    def __init__(self) -> None:
        self.possible_agents = ["h0", "h1", "bot"]
        self.agents = list(self.possible_agents)
        self.pos = {a: 0 for a in self.possible_agents}

    def action_space(self, agent: str) -> Discrete:
        return Discrete(3)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        self.pos = {a: (seed or 0) % 5 for a in self.possible_agents}
        return self._obs(), {a: {} for a in self.possible_agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        for agent, action in actions.items():
            self.pos[agent] += (0, 1, -1)[action]
        rewards = {a: float(self.pos[a]) for a in self.possible_agents}
        done = {a: False for a in self.possible_agents}
        return self._obs(), rewards, done, dict(done), {a: {} for a in self.possible_agents}

    def _obs(self) -> dict[str, list[int]]:
        return {a: [self.pos[b] for b in self.possible_agents] for a in self.possible_agents}


def make_trio() -> Trio:
    return Trio()


def render_trio(env: Trio, surface: Any) -> None:
    for i, agent in enumerate(env.possible_agents):
        surface.rect(10 * env.pos[agent] + 200, 20 * i, 8, 8, color="#ffffff", id=agent)


def random_bot(observation: list[int], agent: str, rng: random.Random) -> int:
    return rng.randrange(3)


def gatherers_config(max_steps: int = 60, episodes: int = 2, delay: int = 2, window: int = 8) -> dict[str, Any]:
    return {
        "scene_id": "pair", "mode": "p2p", "fps": 30, "num_episodes": episodes, "max_steps": max_steps,
        "canvas": {"width": 432, "height": 376, "background": "#000000"},
        "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render", "env_kwargs": {}},
        "controls": MAPPING.to_config(),
        "agents": {"agent_0": {"kind": "human", "player": 0}, "agent_1": {"kind": "human", "player": 1}},
        "seeds": [1000 + i for i in range(episodes)],
        "p2p": {"input_delay": delay, "prediction_window": window, "num_players": 2, "disconnect_timeout_ms": 5000,
                "checksum_interval": 20, "faults": None},
    }


def trio_config() -> dict[str, Any]:
    config = gatherers_config(max_steps=45, episodes=2)
    config["bundle"].update(factory="test_p2p_host:make_trio", render="test_p2p_host:render_trio")
    config["controls"] = KeyMapping({"ArrowUp": 1, "ArrowDown": 2}, default_action=0).to_config()
    config["agents"] = {"h0": {"kind": "human", "player": 0}, "h1": {"kind": "human", "player": 1},
                        "bot": {"kind": "python", "ref": "test_p2p_host:random_bot", "frame_skip": 2}}
    return config


def play(config: dict[str, Any], conditions: NetworkConditions, seed: int = 1,
         stop_after_frames: int | None = None) -> tuple[list[P2PGameHost], list[dict[str, Any]]]:
    """Drives two hosts frame by frame with random held keys until both have every episode confirmed."""
    rng = random.Random(seed)
    network = SimulatedNetwork(conditions, seed)
    hosts = [P2PGameHost.from_config(config, p, isolate_global_random=True) for p in (0, 1)]
    keys = [[], []]
    clocks = [0.0, rng.uniform(0, 40)]
    results: list[dict[str, Any]] = [{}, {}]
    for _ in range(20_000):
        i = 0 if clocks[0] <= clocks[1] else 1
        now = clocks[i]
        host = hosts[i]
        if rng.random() < 0.15:
            keys[i] = rng.sample(config["controls"]["keys"], rng.randrange(0, 3))
        for source, data in network.receive(i, now):
            host.receive(source, base64.b64encode(data).decode())
        result = json.loads(host.tick(now, "\n".join(keys[i])))
        results[i] = result
        for peer, packet in result["out"]:
            network.send(now, i, peer, base64.b64decode(packet))
        clocks[i] += FRAME_MS
        if stop_after_frames is not None and min(h.session.current_frame for h in hosts) >= stop_after_frames:
            break
        if all(h.done for h in hosts):
            break
    return hosts, results


def uploads(host: P2PGameHost) -> list[dict[str, Any]]:
    return [json.loads(host.episode_payload_json(e)) for e in range(len(host.seeds))]


COMPARED = ("t", "observation", "actions", "rewards", "terminated", "truncated", "info", "checksum")


def assert_same_trajectories(hosts: list[P2PGameHost], max_steps: int) -> None:
    a, b = uploads(hosts[0]), uploads(hosts[1])
    for ep_a, ep_b in zip(a, b, strict=True):
        assert [r["t"] for r in ep_a["steps"]] == list(range(max_steps))
        assert len(ep_b["steps"]) == max_steps
        for row_a, row_b in zip(ep_a["steps"], ep_b["steps"], strict=True):
            assert {f: row_a[f] for f in COMPARED} == {f: row_b[f] for f in COMPARED}
        assert all(ep_a["steps"][-1]["truncated"].values())
        assert [r["t"] for r in ep_a["steps"] if r["checksum"]], "some frames must carry checksums"
    for host in hosts:
        assert host.row_mismatches == 0 and host.desyncs == []


def assert_keys_explain_actions(host: P2PGameHost, mapping: KeyMapping) -> None:
    agent = host.my_agent
    for payload in uploads(host):
        for row in payload["steps"]:
            assert list(row["keys"]) == [agent]  # each peer knows only its own keys
            assert row["actions"][agent] == mapping.action_for(row["keys"][agent])


@pytest.mark.parametrize("conditions", [
    NetworkConditions(),
    NetworkConditions(latency_ms=50, jitter_ms=15, loss=0.1),
    NetworkConditions(latency_ms=100, jitter_ms=30, loss=0.2, duplicate=0.05, reorder=0.1),
], ids=["perfect", "rtt100-loss10", "rtt200-loss20-dup-reorder"])
def test_two_hosts_agree_on_every_confirmed_row(conditions: NetworkConditions) -> None:
    hosts, results = play(gatherers_config(), conditions)
    assert all(h.done for h in hosts) and all(r["done"] for r in results)
    assert_same_trajectories(hosts, 60)
    for host in hosts:
        assert host.completed == [0, 1]
        assert_keys_explain_actions(host, MAPPING)
    if conditions.latency_ms:
        stats = json.loads(hosts[0].stats_json())
        assert stats["rollbacks"]["count"] > 0  # predictions were wrong and corrected, yet the data agree
        assert stats["rtt_ms"]["samples"] > 0 and stats["rtt_ms"]["p50"] >= conditions.latency_ms


def test_python_ai_agent_is_computed_identically_on_both_peers() -> None:
    config = trio_config()
    hosts, _ = play(config, NetworkConditions(latency_ms=60, jitter_ms=20, loss=0.1), seed=5)
    assert_same_trajectories(hosts, 45)
    bot_actions = [r["actions"]["bot"] for r in uploads(hosts[0])[0]["steps"]]
    assert len(set(bot_actions)) > 1  # the bot really draws from its generator
    assert all(bot_actions[i] == bot_actions[i + 1] for i in range(0, 44, 2))  # frame_skip=2 holds pairs


def test_rows_overwritten_by_rollback_until_confirmed() -> None:
    # With latency, a frame is first simulated with a predicted remote input, then re-simulated.
    hosts, _ = play(gatherers_config(max_steps=90, episodes=1), NetworkConditions(latency_ms=80, jitter_ms=20), seed=3)
    host = hosts[0]
    assert json.loads(host.stats_json())["rollbacks"]["count"] > 0
    remote_actions = [r["actions"]["agent_1"] for r in uploads(host)[0]["steps"]]
    partner_actions = [r["actions"]["agent_1"] for r in uploads(hosts[1])[0]["steps"]]
    assert remote_actions == partner_actions  # the partner's real inputs, not the predictions
    assert host.sim.rows == {}  # nothing confirmed is left behind


def test_episode_boundary_resets_with_the_next_seed() -> None:
    hosts, _ = play(gatherers_config(max_steps=30, episodes=2), NetworkConditions())
    first, second = uploads(hosts[0])
    assert first["seed"] == 1000 and second["seed"] == 1001
    assert second["steps"][0]["t"] == 0
    assert second["steps"][0]["observation"] != first["steps"][-1]["observation"]


def test_partner_left_keeps_confirmed_rows_as_partial() -> None:
    config = gatherers_config(max_steps=500, episodes=1)
    hosts, _ = play(config, NetworkConditions(latency_ms=20), stop_after_frames=50)
    host = hosts[0]
    host.partner_left(1)
    for k in range(10):  # the game goes on with the partner's default input until the page ends it
        json.loads(host.tick(10_000 + k * FRAME_MS, "ArrowUp"))
    payload = json.loads(host.episode_payload_json(host.current_episode, partial=True, end_reason="partner_left"))
    assert payload["partial"] is True and payload["end_reason"] == "partner_left"
    assert len(payload["steps"]) >= 40
    assert [r["t"] for r in payload["steps"]] == list(range(len(payload["steps"])))
    assert any(e["type"] == "Disconnected" for e in host.events)


def test_bad_packets_are_dropped_and_counted() -> None:
    host = P2PGameHost.from_config(gatherers_config(), 0, isolate_global_random=True)
    host.receive(1, "***not base64***")
    host.receive(1, base64.b64encode(b"\x07garbage").decode())
    host.receive(1, b"\x00")
    result = json.loads(host.tick(0.0, ""))
    stats = json.loads(host.stats_json())
    assert stats["bad_packets"] == 1
    assert sum(stats["dropped_packets"].values()) == 2
    assert result["status"] == "not_synchronized"  # nothing valid from the partner yet
    assert result["render"] is not None  # the first frame is drawn while waiting


def test_goodbye_packets_and_render_packet() -> None:
    host = P2PGameHost.from_config(gatherers_config(), 1, isolate_global_random=True)
    packets = json.loads(host.close_packets())
    assert [p for p, _ in packets] == [0] and base64.b64decode(packets[0][1])
    packet = host.render()
    assert json.dumps(packet).count('"agent_') >= 2  # both avatars drawn, addressable by agent id


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("p2p"), "no 'p2p' settings"),
    (lambda c: c["agents"].update(agent_1={"kind": "onnx", "url": "x"}), "ONNX"),
    (lambda c: c["agents"].update(agent_1={"kind": "human", "player": 5}), "players 0..1"),
])
def test_config_errors_say_what_to_change(change, message: str) -> None:
    config = gatherers_config()
    change(config)
    with pytest.raises(HostConfigError, match=message):
        P2PGameHost.from_config(config, 0)


def test_unknown_player_is_refused() -> None:
    with pytest.raises(HostConfigError, match="player 3"):
        P2PGameHost.from_config(gatherers_config(), 3)


def test_a_tap_during_an_uncommitted_tick_is_carried_to_the_next_committed_input() -> None:
    network = SimulatedNetwork(NetworkConditions(latency_ms=30), 1)
    hosts = [P2PGameHost.from_config(gatherers_config(max_steps=30, episodes=1), p, isolate_global_random=True)
             for p in (0, 1)]
    first = json.loads(hosts[0].tick(0.0, "ArrowDown"))  # the partner was never heard from: nothing committed
    assert first["status"] == "not_synchronized"
    for source, packet in ((0, p) for _, p in first["out"]):
        network.send(0.0, source, 1, base64.b64decode(packet))
    now = 0.0
    for _ in range(2000):
        now += FRAME_MS / 2
        for i, host in enumerate(hosts):
            for source, data in network.receive(i, now):
                host.receive(source, data)
            result = json.loads(host.tick(now, ""))
            for peer, packet in result["out"]:
                network.send(now, i, peer, base64.b64decode(packet))
        if all(h.done for h in hosts):
            break
    rows = uploads(hosts[0])[0]["steps"]
    pressed = [r["t"] for r in rows if r["keys"]["agent_0"]]
    assert len(pressed) == 1 and rows[pressed[0]]["keys"]["agent_0"] == ["ArrowDown"]
    assert rows[pressed[0]]["actions"]["agent_0"] == 2  # the tap moved the avatar once, on both peers
    assert uploads(hosts[1])[0]["steps"][pressed[0]]["actions"]["agent_0"] == 2


def test_rows_reopened_by_an_earlier_disconnection_cut_are_unfinalized() -> None:
    # With 3+ players, survivors may agree on a cut before this peer's confirmed frame; those rows reopen.
    hosts, _ = play(gatherers_config(max_steps=60, episodes=1), NetworkConditions())
    host = hosts[0]
    rows = uploads(host)[0]["steps"]
    host.trajectory.reopen_from(50)
    assert host.step_count(0) == 50 and host.completed == [] and not host.done
    assert host.trajectory.collected == 49
    assert host.trajectory.keys_by_frame[55] == rows[55]["keys"]["agent_0"]  # the frame's own keys are kept for re-collection


def test_a_partner_gone_silent_gives_two_partial_uploads_that_agree() -> None:
    # Peer 1 goes offline (every packet both ways lost) mid-episode; each netcode declares the other
    # disconnected after disconnect_timeout_ms and the pages end the game as partner_left. The partial uploads
    # hold only rows confirmed with real inputs, so the parity check (allow_prefix) agrees on the common prefix.
    from interactive_gym.server.parity import compare_trajectories

    config = gatherers_config(max_steps=400, episodes=1, delay=2)
    config["p2p"]["disconnect_timeout_ms"] = 500
    rng = random.Random(5)
    network = SimulatedNetwork(NetworkConditions(latency_ms=30, jitter_ms=10), 5)
    hosts = [P2PGameHost.from_config(config, p, isolate_global_random=True) for p in (0, 1)]
    keys: list[list[str]] = [["ArrowUp"], ["ArrowDown"]]
    clocks = [0.0, 7.0]
    offline_from = 60 * FRAME_MS
    drops: dict[int, int] = {}
    while len(drops) < 2 and min(clocks) < 20_000:
        i = 0 if clocks[0] <= clocks[1] else 1
        now = clocks[i]
        if rng.random() < 0.3:
            keys[i] = rng.sample(KEYS, rng.randrange(1, 3))  # never the default input: a lost input shows
        for source, data in network.receive(i, now):
            hosts[i].receive(source, base64.b64encode(data).decode())
        if i not in drops:
            result = json.loads(hosts[i].tick(now, "\n".join(keys[i])))
            for event in result["events"]:
                if event["type"] == "Disconnected" and event["player"] != i:
                    drops[i] = event["frame"]  # here the page ends the game (p2p_game.js)
            if now < offline_from:
                for peer, packet in result["out"]:
                    network.send(now, i, peer, base64.b64decode(packet))
        clocks[i] += FRAME_MS
    assert sorted(drops) == [0, 1], "both netcodes declare the other disconnected"
    payloads = [json.loads(h.episode_payload_json(h.current_episode, partial=True, end_reason="partner_left"))
                for h in hosts]
    for host, payload in zip(hosts, payloads, strict=True):
        assert host.current_episode == 0 and not host.done  # the episode was not completed alone
        assert payload["steps"], "what was played before the silence is kept"
        assert len(payload["steps"]) <= drops[host.my_player]  # no row from the disconnect frame on
    verdict = compare_trajectories({f"p{i}": p["steps"] for i, p in enumerate(payloads)}, allow_prefix=True)
    assert verdict.agree, verdict.first_mismatch
    assert verdict.frames_compared > 30
