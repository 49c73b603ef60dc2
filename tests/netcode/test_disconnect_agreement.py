"""A peer vanishes mid-game: the survivors agree on where its inputs stop and keep playing identically."""

from __future__ import annotations

import pytest
from envs_for_tests import TagEnv

from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.requests import Disconnected, InputStatus
from interactive_gym.netcode.runner import P2PRunner
from interactive_gym.netcode.settings import p2p_settings


@pytest.mark.parametrize(("seed", "one_sided"), [(1, False), (2, False), (1, True), (2, True), (3, True)])
def test_survivors_agree_after_a_peer_vanishes(seed: int, one_sided: bool) -> None:
    """With ``one_sided``, peer 2's last 20 frames of packets reach peer 0 only, so the survivors hold different
    amounts of its input when it vanishes and must agree on the earlier cut."""
    players = 3
    net = SimulatedNetwork(NetworkConditions(latency_ms=40, jitter_ms=20, loss=0.1), seed=seed)
    runners = []
    for me in range(players):
        settings = p2p_settings(players, me, {p: p for p in range(players) if p != me}, checksum_interval=20,
                                disconnect_notify_ms=200.0, disconnect_timeout_ms=600.0)
        env = EnvStateAdapter(TagEnv(players=players, episode_length=10_000), seed=4, isolate_global_random=True)
        runners.append(P2PRunner(P2PSession(settings), env))
    vanish_tick, frames = 150, 500
    disconnects: dict[int, list[Disconnected]] = {0: [], 1: []}
    for tick in range(1200):
        now = tick * 1000 / 60
        for me, runner in enumerate(runners):
            if me == 2 and tick >= vanish_tick:
                continue  # peer 2's browser tab is gone: it neither sends nor receives
            packets = net.receive(me, now)
            action = bytes([(tick // (5 + 2 * me)) % 5])
            result = runner.tick(now, {me: action}, packets, advance=runner.session.current_frame < frames)
            if me in disconnects:
                disconnects[me].extend(e for e in result.events if isinstance(e, Disconnected))
            for destination, data in result.outgoing:
                if one_sided and me == 2 and destination == 1 and tick >= vanish_tick - 20:
                    continue
                net.send(now, me, destination, data)
        survivors = runners[:2]
        if all(r.session.current_frame >= frames and r.confirmed_through >= frames - 1 for r in survivors):
            break
    a, b = runners[0], runners[1]
    assert a.session.current_frame == b.session.current_frame == frames
    assert disconnects[0] and disconnects[1]
    assert all(e.player == 2 for e in disconnects[0] + disconnects[1])
    # Both survivors agree on the last real frame of player 2 and on everything else.
    assert disconnects[0][-1].frame == disconnects[1][-1].frame
    cut = disconnects[0][-1].frame
    assert a.history[:frames] == b.history[:frames]
    assert a.history[cut][2] == (b"\x00", InputStatus.DISCONNECTED)
    assert a.history[cut - 1][2][1] == InputStatus.CONFIRMED
    held_by_1_only = vanish_tick - 20 if one_sided else vanish_tick
    assert cut <= held_by_1_only + 2  # input delay 2: frames up to tick + 1 had been sent
    assert a.env.checksum(a.env.save_state()) == b.env.checksum(b.env.save_state())
    assert a.session.stats()["desyncs"] == 0 and b.session.stats()["desyncs"] == 0
