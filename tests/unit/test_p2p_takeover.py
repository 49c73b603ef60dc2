"""p2p partner drop: one peer stops, the other takes its player over with the partner-drop policy and plays on.

Two real P2PGameHosts (the Python half of two pages) over the seeded in-memory network: peer 1 goes silent
(its tab closed), the server's p2p_takeover reaches peer 0, which plays the rest of the game alone.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.browser.p2p_host import P2PGameHost
from interactive_gym.controls import KeyMapping
from interactive_gym.envs.agent_runtime import agent_rng
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork
from interactive_gym.server.parity import compare_trajectories
from interactive_gym.server.pyodide_game_coordinator import takeover_bounds

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))


MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
FRAME_MS = 1000 / 30
CONTROLLER = "ai-takeover:rng_walk"


def rng_walk(observation: Any, agent_id: str, rng: random.Random) -> int:
    return rng.randrange(5)


def config(max_steps: int = 80, episodes: int = 2, takeover: bool = True) -> dict[str, Any]:
    return {
        "scene_id": "pair", "mode": "p2p", "fps": 30, "num_episodes": episodes, "max_steps": max_steps,
        "canvas": {"width": 432, "height": 376, "background": "#000000"},
        "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render", "env_kwargs": {}},
        "controls": MAPPING.to_config(),
        "agents": {"agent_0": {"kind": "human", "player": 0}, "agent_1": {"kind": "human", "player": 1}},
        "seeds": [1000 + i for i in range(episodes)],
        "p2p": {"input_delay": 2, "prediction_window": 8, "num_players": 2, "disconnect_timeout_ms": 1000,
                "checksum_interval": 20, "faults": None,
                "takeover": {"ref": "test_p2p_takeover:rng_walk", "frame_skip": 1, "name": "rng_walk",
                             "controller": CONTROLLER} if takeover else None},
    }


def play_with_drop(cfg: dict[str, Any], conditions: NetworkConditions, drop_at_frame: int, seed: int = 1,
                   takeover_after_ms: float = 1500.0) -> tuple[list[P2PGameHost], list[str]]:
    """Peer 1 stops at ``drop_at_frame``; ``takeover_after_ms`` later peer 0 gets the server's takeover."""
    rng = random.Random(seed)
    network = SimulatedNetwork(conditions, seed)
    hosts = [P2PGameHost.from_config(cfg, p, isolate_global_random=True) for p in (0, 1)]
    keys: list[list[str]] = [[], []]
    clocks = [0.0, rng.uniform(0, 30)]
    dropped_at: float | None = None
    answers: list[str] = []
    for _ in range(40_000):
        alive = [0] if dropped_at is not None else [0, 1]
        i = min(alive, key=lambda k: clocks[k])
        now = clocks[i]
        host = hosts[i]
        if i == 1 and host.session.current_frame >= drop_at_frame:
            dropped_at = now  # the tab is closed: no goodbye, no more packets
            continue
        if dropped_at is not None and not answers and now - dropped_at >= takeover_after_ms:
            answers.append(host.take_over(1))
            answers.append(host.take_over(1))  # the event can arrive twice: harmless
        if rng.random() < 0.15:
            keys[i] = rng.sample(cfg["controls"]["keys"], rng.randrange(0, 3))
        for source, data in network.receive(i, now):
            host.receive(source, base64.b64encode(data).decode())
        result = json.loads(host.tick(now, "\n".join(keys[i])))
        for peer, packet in result["out"]:
            network.send(now, i, peer, base64.b64decode(packet))
        clocks[i] += FRAME_MS
        if hosts[0].done:
            break
    return hosts, answers


def payloads(host: P2PGameHost) -> list[dict[str, Any]]:
    return [json.loads(host.episode_payload_json(e, partial=e not in host.completed))
            for e in range(len(host.seeds))]


@pytest.mark.parametrize("conditions", [NetworkConditions(), NetworkConditions(latency_ms=60, jitter_ms=20,
                                                                              loss=0.1)],
                         ids=["perfect", "rtt120-loss10"])
def test_the_last_peer_plays_the_dropped_player_with_the_policy_to_the_end(conditions: NetworkConditions) -> None:
    hosts, answers = play_with_drop(config(), conditions, drop_at_frame=30)
    survivor, gone = hosts
    first = json.loads(answers[0])
    assert first["ok"] is True and json.loads(answers[1]) == {"ok": True, "frame": first["frame"], "duplicate": True}
    assert survivor.done and survivor.completed == [0, 1]  # the whole game was played
    (record,) = json.loads(survivor.stats_json())["takeovers"]
    assert (record["player"], record["agent"], record["controller"], record["frame"]) == (
        1, "agent_1", CONTROLLER, first["frame"])
    episode, t = record["episode"], record["t"]
    assert (episode, t) == divmod(first["frame"], 80) and episode == 0  # episodes are 80 frames long
    # From t on the policy plays agent_1, drawing from the generator any AI agent_1 would have (seeded from the
    # episode seed and the agent when the takeover starts, and afresh at the next episode).
    first_episode, second_episode = (p["steps"] for p in payloads(survivor))
    rng = agent_rng(1000, "agent_1")
    assert [s["actions"]["agent_1"] for s in first_episode[t:]] == [rng.randrange(5) for _ in first_episode[t:]]
    rng = agent_rng(1001, "agent_1")
    assert [s["actions"]["agent_1"] for s in second_episode] == [rng.randrange(5) for _ in second_episode]
    assert all("controllers" not in s for s in first_episode + second_episode)  # reported per game, in stats
    # Where the partner's own inputs stopped (after its last input, frame 31 with 2 frames of input delay).
    assert record["drop_episode"] == 0 and record["drop_t"] <= 32 < t
    assert survivor.desyncs == [] and survivor.row_mismatches == 0
    # Parity with what the gone peer had confirmed, bounded at the drop: no false mismatch.
    gone_first = json.loads(gone.episode_payload_json(0, partial=True, end_reason="page_closed"))
    bounds = takeover_bounds(json.loads(survivor.stats_json())["takeovers"])
    verdict = compare_trajectories({"p0": payloads(survivor)[0]["steps"], "p1": gone_first["steps"]},
                                   allow_prefix=True, until=bounds.get(0))
    assert verdict.agree and verdict.frames_compared > 0


def test_a_takeover_is_refused_without_a_policy_or_for_oneself() -> None:
    host = P2PGameHost.from_config(config(takeover=False), 0)
    assert json.loads(host.take_over(1)) == {"ok": False, "error": "this scene has no partner_drop_policy"}
    host = P2PGameHost.from_config(config(), 0)
    assert json.loads(host.take_over(0))["ok"] is False
    assert json.loads(host.take_over(7))["ok"] is False
    assert host.takeovers == {} and host.sim.takeovers == {}


def test_a_takeover_changes_no_frame_already_shown() -> None:
    hosts, answers = play_with_drop(config(max_steps=200, episodes=1), NetworkConditions(), drop_at_frame=40,
                                    takeover_after_ms=2000)
    survivor = hosts[0]
    frame = json.loads(answers[0])["frame"]
    (steps,) = [p["steps"] for p in payloads(survivor)]
    before = steps[:frame]
    # Up to the takeover the dropped player's agent got the default action once its inputs stopped.
    assert all(s["actions"]["agent_1"] == 0 for s in before[45:])
    assert len(steps) == 200 and steps[-1]["truncated"]["agent_0"]
