"""Rejoin after a reload or a crash: one page's simulation is lost mid-game, a new page resumes from a snapshot.

Two real P2PGameHosts (the Python half of two pages) over the seeded in-memory network. At a chosen frame peer 1's
page goes away (a reload says goodbye; a crash just goes silent); peer 0 plays on with the default input for it.
Later a new page for player 1 asks peer 0 for a snapshot over the reliable channel, loads it and plays the rest.
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
from interactive_gym.netcode.input_delay import AutoInputDelay
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork
from interactive_gym.netcode.rejoin import SnapshotError, decode_snapshot, split_chunks
from interactive_gym.server.parity import compare_trajectories

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))

MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
FRAME_MS = 1000 / 30


def config(max_steps: int = 150, episodes: int = 2) -> dict[str, Any]:
    return {
        "scene_id": "pair", "mode": "p2p", "fps": 30, "num_episodes": episodes, "max_steps": max_steps,
        "canvas": {"width": 432, "height": 376, "background": "#000000"},
        "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render", "env_kwargs": {}},
        "controls": MAPPING.to_config(),
        "agents": {"agent_0": {"kind": "human", "player": 0}, "agent_1": {"kind": "human", "player": 1}},
        "seeds": [1000 + i for i in range(episodes)],
        "p2p": {"input_delay": 2, "prediction_window": 8, "num_players": 2, "disconnect_timeout_ms": 1000,
                "checksum_interval": 10, "faults": None, "takeover": None},
    }


class Game:
    """Two pages; page 1 can be lost and replaced by a new page that rejoins."""

    def __init__(self, cfg: dict[str, Any], conditions: NetworkConditions, seed: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(seed)
        self.network = SimulatedNetwork(conditions, seed)
        self.hosts = [P2PGameHost.from_config(cfg, p, isolate_global_random=True) for p in (0, 1)]
        self.old: P2PGameHost | None = None  # page 1 before the reload
        self.keys: list[list[str]] = [[], []]
        self.clocks = [0.0, self.rng.uniform(0, 30)]
        self.gone = False
        self.waiting_snapshot = False
        self.answers: list[dict[str, Any]] = []
        self.resumed_at_ms: float | None = None
        self.lost_at_ms: float | None = None
        self.served: dict[str, Any] = {}

    def lose_page_1(self, goodbye: bool) -> None:
        self.old = self.hosts[1]
        if goodbye:
            for peer, packet in json.loads(self.old.close_packets()):
                self.network.send(self.clocks[1], 1, peer, base64.b64decode(packet))
        self.gone = True
        self.lost_at_ms = self.clocks[1]

    def new_page_1(self) -> None:
        """The reloaded page: a fresh host from the same config, asking page 0 for a snapshot."""
        self.hosts[0].expect_rejoin(1)  # the server's notice comes before the new page's request
        self.hosts[1] = P2PGameHost.from_config(self.cfg, 1, isolate_global_random=True)
        self.gone = False
        self.waiting_snapshot = True
        self.clocks[1] = max(self.clocks[1], self.clocks[0])
        self.answers.append(json.loads(self.hosts[0].request_rejoin(1)))

    def deliver_snapshot(self, served: dict[str, Any], now: float) -> None:
        self.served = served
        chunks = served["chunks"]
        order = list(range(len(chunks)))
        for index in [*order, 0]:  # the last chunk twice: a duplicate is harmless
            answer = json.loads(self.hosts[1].add_snapshot_chunk(served["id"], index, len(chunks), chunks[index],
                                                                  now))
            assert answer["ok"], answer
        assert answer["loaded"]
        self.waiting_snapshot = False
        self.resumed_at_ms = now

    def step(self, lose_at: int | None, goodbye: bool, away_ms: float) -> bool:
        alive = [0] if (self.gone or self.waiting_snapshot) else [0, 1]
        i = min(alive, key=lambda k: self.clocks[k])
        now = self.clocks[i]
        host = self.hosts[i]
        if i == 1 and lose_at is not None and self.old is None and host.session.current_frame >= lose_at:
            self.lose_page_1(goodbye)
            return True
        if self.gone and self.lost_at_ms is not None and now - self.lost_at_ms >= away_ms:
            self.new_page_1()
        if self.gone or self.waiting_snapshot:
            self.network.receive(1, now)  # packets to a page that is not there are lost
        if self.rng.random() < 0.15:
            self.keys[i] = self.rng.sample(self.cfg["controls"]["keys"], self.rng.randrange(0, 3))
        for source, data in self.network.receive(i, now):
            host.receive(source, base64.b64encode(data).decode())
        result = json.loads(host.tick(now, "\n".join(self.keys[i])))
        for peer, packet in result["out"]:
            self.network.send(now, i, peer, base64.b64decode(packet))
        if i == 0 and "1" in result["rejoin"]:
            served = result["rejoin"]["1"]
            assert served["ok"], served
            self.deliver_snapshot(served, now + 20)  # the reliable channel: a little later, in order
        self.clocks[i] += FRAME_MS
        return not (self.hosts[0].done and self.hosts[1].done and not self.waiting_snapshot)

    def play(self, lose_at: int | None = None, goodbye: bool = True, away_ms: float = 2000.0) -> None:
        for _ in range(60_000):
            if not self.step(lose_at, goodbye, away_ms):
                # Both finished: a little longer so the last inputs reach everyone.
                return
        raise AssertionError("the game did not finish")


def payload(host: P2PGameHost, episode: int, partial: bool = False) -> dict[str, Any]:
    return json.loads(host.episode_payload_json(episode, partial=partial))


def final_checksum(host: P2PGameHost) -> int:
    return host.sim.snapshot_checksum(host.sim.save_state())


@pytest.mark.parametrize("goodbye", [True, False], ids=["reload", "crash"])
@pytest.mark.parametrize("conditions", [NetworkConditions(), NetworkConditions(latency_ms=50, jitter_ms=15,
                                                                              loss=0.1)],
                         ids=["perfect", "rtt100-loss10"])
def test_a_reloaded_page_rejoins_and_both_agree_on_every_frame_both_played(conditions: NetworkConditions,
                                                                         goodbye: bool) -> None:
    game = Game(config(), conditions, seed=3)
    game.play(lose_at=40, goodbye=goodbye, away_ms=1500)
    survivor, rejoined, old = game.hosts[0], game.hosts[1], game.old
    assert old is not None and rejoined.rejoined is not None
    assert game.answers == [{"ok": True, "pending": True}]
    place = rejoined.rejoined
    assert place["episode"] == 0 and place["t"] > 40  # resumed mid-episode, after the gap
    # The whole game was played by the survivor, the rest of it by the new page, with no desync.
    assert survivor.completed == [0, 1] and rejoined.completed == [0, 1]
    for host in (survivor, rejoined):
        assert host.desyncs == [] and host.row_mismatches == 0
    assert final_checksum(survivor) == final_checksum(rejoined)
    # The rejoined page's upload of episode 0 starts at the step it resumed at; it agrees with the survivor's
    # on every step from there (checksums included), and so does the old page's on the steps it confirmed.
    full = payload(survivor, 0)["steps"]
    suffix = payload(rejoined, 0)
    assert suffix["first_t"] == place["t"] and [s["t"] for s in suffix["steps"]] == list(range(place["t"], 150))
    prefix = payload(old, 0, partial=True)["steps"]
    assert prefix and prefix[-1]["t"] < place["t"]
    for mine in (suffix["steps"], prefix):
        assert mine == [{**full[s["t"]], "keys": s["keys"], "client_ts": s["client_ts"]} for s in mine]
    assert any(s["checksum"] for s in suffix["steps"])
    verdict = compare_trajectories({"p0": full, "p1": prefix + suffix["steps"]}, overlap=True)
    assert verdict.agree and verdict.frames_compared == len(prefix) + len(suffix["steps"])
    tampered = [*prefix, {**suffix["steps"][0], "rewards": {"agent_0": 99}}, *suffix["steps"][1:]]
    assert not compare_trajectories({"p0": full, "p1": tampered}, overlap=True).agree
    assert payload(survivor, 1)["steps"] == [{**s, "keys": m["keys"], "client_ts": m["client_ts"]}
                                             for s, m in zip(payload(rejoined, 1)["steps"],
                                                             payload(survivor, 1)["steps"], strict=True)]
    # The gap: from the first step after the old page's last input to the step before the new page's first,
    # agent_1 played the default action, and the survivor's upload says so; nobody else has gap steps.
    (gap,) = payload(survivor, 0)["gaps"]
    assert gap["agent"] == "agent_1" and gap["to_t"] == place["t"] - 1
    assert prefix[-1]["t"] < gap["from_t"] <= prefix[-1]["t"] + 1 + 2 + (0 if goodbye else 8)
    assert all(full[t]["actions"]["agent_1"] == 0 for t in range(gap["from_t"], gap["to_t"] + 1))
    assert "gaps" not in payload(survivor, 1) and "gaps" not in suffix
    assert json.loads(rejoined.stats_json())["rejoined"] == place


def test_a_repeated_request_gets_the_same_snapshot_and_a_second_reload_a_new_one() -> None:
    game = Game(config(max_steps=300, episodes=1), NetworkConditions(), seed=5)
    for _ in range(400):
        game.step(lose_at=30, goodbye=True, away_ms=500)
        if game.hosts[1].rejoined is not None:
            break
    survivor = game.hosts[0]
    first = survivor.rejoins.served[1]
    again = json.loads(survivor.request_rejoin(1))
    assert (again["id"], again["chunks"]) == first  # the new page asked twice: same snapshot, no new cut
    # A second reload later: the server's notice makes the old snapshot stale; a new one is served.
    for _ in range(200):
        game.step(lose_at=None, goodbye=True, away_ms=500)
    game.old = None
    game.play(lose_at=game.hosts[1].session.current_frame + 5, goodbye=True, away_ms=500)
    assert survivor.rejoins.served[1][0] == first[0] + 1
    assert survivor.desyncs == [] and game.hosts[1].desyncs == []
    assert final_checksum(survivor) == final_checksum(game.hosts[1])
    gaps = payload(survivor, 0)["gaps"]
    assert len(gaps) == 2 and all(g["agent"] == "agent_1" for g in gaps) and gaps[0]["to_t"] < gaps[1]["from_t"]


def test_requests_that_cannot_be_served_are_refused() -> None:
    host = P2PGameHost.from_config(config(), 0, isolate_global_random=True)
    assert json.loads(host.request_rejoin(0))["ok"] is False  # oneself
    assert json.loads(host.request_rejoin(7))["ok"] is False
    fresh = P2PGameHost.from_config(config(), 1, isolate_global_random=True)
    bad = json.loads(fresh.add_snapshot_chunk(1, 0, 1, "{not json", 0.0))
    assert bad["ok"] is False and "JSON" in bad["error"]
    assert fresh.rejoined is None and fresh.session.current_frame == 0


def test_a_snapshot_for_another_player_or_with_a_wrong_checksum_is_refused() -> None:
    game = Game(config(max_steps=300, episodes=1), NetworkConditions(), seed=2)
    for _ in range(2000):
        game.step(lose_at=40, goodbye=True, away_ms=300)
        if game.served:
            break
    snapshot = json.loads("".join(game.served["chunks"]))
    swapped = {"player": 0, "inputs": [[], snapshot["inputs"][0]]}
    for change, message in [(swapped, "for player 0"), ({"checksum": "0" * 16}, "checksum")]:
        page = P2PGameHost.from_config(config(max_steps=300, episodes=1), 1, isolate_global_random=True)
        chunks = split_chunks(json.dumps({**snapshot, **change}))
        for index, chunk in enumerate(chunks):
            answer = json.loads(page.add_snapshot_chunk(1, index, len(chunks), chunk, 0.0))
        assert answer["ok"] is False and message in answer["error"]
        assert page.rejoined is None and page.session.current_frame == 0
    with pytest.raises(SnapshotError):
        decode_snapshot(json.dumps({**snapshot, "inputs": [["AAA="], []]}), 2, 1)  # 2 bytes, not 1


@pytest.mark.parametrize("latency_ms", [0, 120], ids=["delay0", "delay-grows"])
def test_an_auto_delay_game_rejoins_with_the_delays_every_peer_plays(latency_ms: float) -> None:
    cfg = config()
    cfg["p2p"] = {**cfg["p2p"], "input_delay": "auto", "auto_input_delay": AutoInputDelay().to_config()}
    game = Game(cfg, NetworkConditions(latency_ms=latency_ms), seed=11)
    game.play(lose_at=60, goodbye=True, away_ms=1000)
    survivor, rejoined, old = game.hosts[0], game.hosts[1], game.old
    assert old is not None and rejoined.rejoined is not None and rejoined.rejoined["episode"] == 0
    assert survivor.completed == [0, 1] and rejoined.completed == [0, 1]
    assert survivor.desyncs == [] and rejoined.desyncs == [] and rejoined.row_mismatches == 0
    assert final_checksum(survivor) == final_checksum(rejoined)
    played = json.loads(survivor.stats_json())["input_delays"]
    # The new page played the rest of episode 0 and all of episode 1 with the delays the leader announced.
    assert json.loads(rejoined.stats_json())["input_delays"] == played
    assert json.loads(old.stats_json())["input_delays"][0] == played[0]
    assert (played[0] > 0) == (latency_ms > 0)
    full = payload(survivor, 0)["steps"]
    suffix = payload(rejoined, 0)["steps"]
    assert suffix and suffix == [{**full[s["t"]], "keys": s["keys"], "client_ts": s["client_ts"]} for s in suffix]


def test_a_snapshot_with_malformed_delays_is_refused() -> None:
    game = Game(config(max_steps=300, episodes=1), NetworkConditions(), seed=5)
    for _ in range(400):
        game.step(lose_at=30, goodbye=True, away_ms=500)
        if game.hosts[1].rejoined is not None:
            break
    text = "".join(game.served["chunks"])
    document = json.loads(text)
    for bad in ({"input_delay": -1}, {"input_delay": True}, {"delays": [[0, 99]]}, {"delays": [[0]]},
                {"delays": "x"}, {"delays": [[0, 1]] * 2000}):
        with pytest.raises(SnapshotError):
            decode_snapshot(json.dumps({**document, **bad}), 2, 1)
