"""The runner facade: executes requests, records confirmed history, reports confirmed episode ends."""

from __future__ import annotations

from envs_for_tests import TagEnv

from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.requests import AdvanceStatus, EpisodeAgreed
from interactive_gym.netcode.runner import P2PRunner
from interactive_gym.netcode.settings import p2p_settings


def test_two_runners_over_a_lossy_network() -> None:
    net = SimulatedNetwork(NetworkConditions(latency_ms=45, jitter_ms=10, loss=0.1), seed=2)
    runners = []
    for me in (0, 1):
        settings = p2p_settings(2, me, {1 - me: 1 - me}, checksum_interval=30)
        env = EnvStateAdapter(TagEnv(episode_length=100), seed=9, isolate_global_random=True)
        runners.append(P2PRunner(P2PSession(settings), env))
    agreed: list[list[EpisodeAgreed]] = [[], []]
    statuses = set()
    for tick in range(420):
        now = tick * 1000 / 60
        for me, runner in enumerate(runners):
            action = bytes([(tick // (7 + me)) % 5])
            result = runner.tick(now, {me: action}, net.receive(me, now), advance=runner.session.current_frame < 360)
            statuses.add(result.status)
            agreed[me].extend(e for e in result.events if isinstance(e, EpisodeAgreed))
            for destination, data in result.outgoing:
                net.send(now, me, destination, data)
    a, b = runners
    assert AdvanceStatus.ADVANCED in statuses
    assert a.history[:360] == b.history[:360] and len(a.history) >= 359
    assert a.env.checksum(a.env.save_state()) == b.env.checksum(b.env.save_state())
    # Episodes of 100 frames end on frames 99, 199, 299; both peers agree on each.
    assert [e.frame for e in agreed[0]] == [99, 199, 299] == [e.frame for e in agreed[1]]
    assert a.frames_simulated > 360  # rollbacks re-simulated frames
