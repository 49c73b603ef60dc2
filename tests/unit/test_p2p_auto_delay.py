"""input_delay="auto" in two P2PGameHosts over the seeded in-memory network.

Both peers must play every episode with the same delay (the one player 0 announced), a smaller one on a fast link
than on a slow one, with identical confirmed trajectories and no desync, also when the peers' own RTT estimates
disagree. A peer's delay only decides which frame its own inputs land on, so even different delays cannot desync.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from test_p2p_host import FRAME_MS, assert_same_trajectories, gatherers_config

from interactive_gym.browser.p2p_host import P2PGameHost
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork

MAX_STEPS = 60
EPISODES = 3


def auto_config(low: int = 0, high: int = 6, budget: int = 2) -> dict[str, Any]:
    config = gatherers_config(max_steps=MAX_STEPS, episodes=EPISODES)
    config["p2p"].update(input_delay="auto", auto_input_delay={"min": low, "max": high, "rollback_budget": budget})
    return config


def play(configs: list[dict[str, Any]], conditions: NetworkConditions, seed: int = 3,
         prepare: Callable[[list[P2PGameHost]], None] | None = None) -> list[P2PGameHost]:
    """Two hosts, random held keys, until both have every episode confirmed (as the page drives them)."""
    rng = random.Random(seed)
    network = SimulatedNetwork(conditions, seed)
    hosts = [P2PGameHost.from_config(configs[p], p, isolate_global_random=True) for p in (0, 1)]
    if prepare is not None:
        prepare(hosts)
    keys: list[list[str]] = [[], []]
    clocks = [0.0, rng.uniform(0, 40)]
    for _ in range(30_000):
        i = 0 if clocks[0] <= clocks[1] else 1
        now, host = clocks[i], hosts[i]
        if rng.random() < 0.15:
            keys[i] = rng.sample(configs[i]["controls"]["keys"], rng.randrange(0, 3))
        for source, data in network.receive(i, now):
            host.receive(source, base64.b64encode(data).decode())
        result = json.loads(host.tick(now, "\n".join(keys[i])))
        for peer, packet in result["out"]:
            network.send(now, i, peer, base64.b64decode(packet))
        clocks[i] += FRAME_MS
        if all(h.done for h in hosts):
            break
    assert all(h.done for h in hosts), "the game must finish"
    return hosts


def conditions_for_rtt(rtt_ms: float) -> NetworkConditions:
    return NetworkConditions(latency_ms=rtt_ms / 2, jitter_ms=0.15 * rtt_ms / 2, loss=0.1)


@pytest.fixture(scope="module")
def by_rtt() -> dict[int, list[P2PGameHost]]:
    return {rtt: play([auto_config()] * 2, conditions_for_rtt(rtt)) for rtt in (0, 50, 100, 200, 400)}


@pytest.mark.parametrize("rtt", [0, 50, 100, 200, 400])
def test_both_peers_play_every_episode_with_the_announced_delay(by_rtt, rtt: int) -> None:
    hosts = by_rtt[rtt]
    delays = [h.delays.delays() for h in hosts]
    assert delays[0] == delays[1] and None not in delays[0]
    assert delays[0] == [hosts[0].session.announced_input_delay(e) for e in range(EPISODES)]
    assert_same_trajectories(hosts, MAX_STEPS)
    stats = [json.loads(h.stats_json()) for h in hosts]
    assert stats[0]["input_delays"] == stats[1]["input_delays"] == delays[0]
    assert stats[0]["input_delay_rule"] == {"min": 0, "max": 6, "rollback_budget": 2}
    assert all(r is not None and r >= rtt * 0.8 for r in stats[0]["input_delay_rtt_ms"])  # the leader measured
    assert stats[1]["input_delay_rtt_ms"] == [None] * EPISODES  # the other peer decides nothing
    assert all(s["desyncs"] == [] for s in stats)


def test_a_fast_link_gets_a_smaller_delay_than_a_slow_one(by_rtt) -> None:
    first = {rtt: hosts[0].delays.delays()[0] for rtt, hosts in by_rtt.items()}
    assert first[0] == 0 and first[0] < first[200] < first[400], first
    assert first == dict(sorted(first.items(), key=lambda kv: kv[1])), "the delay must not fall as RTT grows"


def test_peers_with_different_rtt_estimates_still_use_the_leaders_delay() -> None:
    def skew(hosts: list[P2PGameHost]) -> None:
        # Player 1's estimate says 900 ms, player 0's says 0 ms: only player 0's counts.
        for host, rtt in zip(hosts, (0.0, 900.0), strict=True):
            host.session.recent_rtt_by_peer = lambda rtt=rtt, host=host: {  # type: ignore[method-assign]
                peer: (rtt,) * 16 for peer in host.session.settings.remote_peers}

    hosts = play([auto_config()] * 2, conditions_for_rtt(100), prepare=skew)
    assert hosts[0].delays.delays() == hosts[1].delays.delays() == [0] * EPISODES
    assert_same_trajectories(hosts, MAX_STEPS)


def test_the_non_leader_waits_for_the_first_delay_and_no_key_of_that_wait_acts() -> None:
    config = auto_config()
    hosts = [P2PGameHost.from_config(config, p, isolate_global_random=True) for p in (0, 1)]
    result = json.loads(hosts[1].tick(0.0, "ArrowUp"))
    assert result["status"] == "idle" and result["frame"] == 0 and result["render"] is not None
    assert hosts[1].delay_wait_ticks == 1 and hosts[1]._carry == []


def test_peers_with_different_fixed_delays_do_not_desync() -> None:
    configs = [gatherers_config(max_steps=MAX_STEPS, episodes=2, delay=d) for d in (0, 5)]
    hosts = play(configs, conditions_for_rtt(150))
    assert [h.input_delay for h in hosts] == [0, 5]
    assert_same_trajectories(hosts, MAX_STEPS)
