"""Property tests over the simulated network: every peer ends with identical confirmed inputs and checksums, and
no request sequence ever advances a frame twice without a load in between."""

from __future__ import annotations

import random

from envs_for_tests import TagEnv
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.netcode.netsim import NetworkConditions, SimulatedNetwork
from interactive_gym.netcode.requests import InputStatus
from interactive_gym.netcode.simulation import SimulationConfig, run_simulation


class SequenceCheckedEnv(EnvStateAdapter):
    """An adapter that asserts the request discipline: advance frame F only when the present is F."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.present = 0
        self.loads = 0

    def save_state(self) -> tuple:
        return (super().save_state(), self.present)

    def load_state(self, state: tuple) -> None:
        inner, frame = state
        assert frame <= self.present, "a load must go back in time"
        super().load_state(inner)
        self.present = frame
        self.loads += 1

    def checksum(self, state: tuple) -> int:
        return super().checksum(state[0])

    def advance(self, frame: int, inputs: tuple[tuple[bytes, InputStatus], ...]) -> int | None:
        assert frame == self.present, f"advanced frame {frame} while the present is {self.present}"
        self.present += 1
        return super().advance(frame, inputs)


conditions = st.builds(
    NetworkConditions,
    latency_ms=st.floats(0, 150),  # one way: round trips up to 300 ms
    jitter_ms=st.floats(0, 100),
    loss=st.floats(0, 0.3),
    duplicate=st.floats(0, 0.2),
    reorder=st.floats(0, 0.2),
)


@settings(max_examples=25, deadline=None)
@given(
    conditions=conditions,
    seed=st.integers(0, 2**32 - 1),
    players=st.integers(2, 3),
    input_delay=st.integers(0, 3),
    max_prediction=st.integers(0, 10),
)
def test_peers_agree_under_bad_networks(
    conditions: NetworkConditions, seed: int, players: int, input_delay: int, max_prediction: int
) -> None:
    envs: list[SequenceCheckedEnv] = []

    def make_env(peer: int) -> SequenceCheckedEnv:
        env = SequenceCheckedEnv(TagEnv(players=players, episode_length=97), seed=seed % 1000,
                                 isolate_global_random=True)
        envs.append(env)
        return env

    config = SimulationConfig(
        players=players, frames=240, conditions=conditions, seed=seed, input_delay=input_delay,
        max_prediction=max_prediction, checksum_interval=20,
    )
    report = run_simulation(make_env, config)
    assert report.finished, report
    assert report.histories_identical, report.first_history_difference
    assert report.checksums_identical
    assert report.desyncs == 0
    assert all(p.dropped_packets == {} for p in report.peers)  # an honest network never produces bad packets
    assert all(p.episodes_agreed == 2 for p in report.peers)  # episodes end at frames 96 and 193


def test_rollbacks_really_happen_under_latency() -> None:
    config = SimulationConfig(frames=600, conditions=NetworkConditions(latency_ms=100, jitter_ms=20, loss=0.1),
                              seed=3, input_change=0.5)
    report = run_simulation(lambda i: EnvStateAdapter(TagEnv(), seed=1, isolate_global_random=True), config)
    assert report.ok
    assert all(p.rollbacks > 20 and p.max_rollback_depth >= 4 for p in report.peers)
    assert all(p.frames_simulated > p.frames for p in report.peers)
    rtts = [v for p in report.peers for v in p.rtt_ms.values()]
    assert all(v is not None and 200 <= v <= 280 for v in rtts)  # 2 x 100 ms, plus jitter and frame ticks


def test_same_seed_same_run() -> None:
    config = SimulationConfig(frames=300, conditions=NetworkConditions(latency_ms=40, jitter_ms=30, loss=0.2), seed=9)
    make = lambda i: EnvStateAdapter(TagEnv(), seed=2, isolate_global_random=True)  # noqa: E731
    assert run_simulation(make, config).to_dict() == run_simulation(make, config).to_dict()


def test_time_sync_makes_the_faster_peer_wait_instead_of_running_ahead() -> None:
    def play(time_sync: bool):
        config = SimulationConfig(frames=1800, conditions=NetworkConditions(latency_ms=40, jitter_ms=5), seed=1,
                                  clock_drift=0.05, time_sync=time_sync)
        return run_simulation(lambda i: EnvStateAdapter(TagEnv(), seed=1, isolate_global_random=True), config)

    synced, unsynced = play(True), play(False)
    assert synced.ok and unsynced.ok
    # One clock runs up to 5% fast. Without time sync its peer runs ahead until the prediction window stops it
    # (stalls) and rolls back deep; with time sync it waits a frame now and then and rolls back far less.
    assert sum(p.stalls for p in unsynced.peers) > 50
    assert sum(p.stalls for p in synced.peers) < sum(p.stalls for p in unsynced.peers) / 10
    assert sum(p.waited_frames for p in synced.peers) > 50
    assert sum(p.rollback_frames for p in synced.peers) < 0.7 * sum(p.rollback_frames for p in unsynced.peers)


def test_simulated_network_misbehaves_as_configured() -> None:
    net = SimulatedNetwork(NetworkConditions(latency_ms=50, jitter_ms=10, loss=0.25, duplicate=0.1), seed=1)
    for i in range(2000):
        net.send(float(i), "a", "b", i.to_bytes(2, "little"))
    early = net.receive("b", 39.0)
    assert early == []  # nothing arrives before latency - jitter
    got = net.receive("b", 10_000.0)
    counters = net.counters
    assert counters.lost + len(got) == 2000 + counters.duplicated
    assert 400 <= counters.lost <= 600 and 100 <= counters.duplicated <= 300
    order = [int.from_bytes(d, "little") for _, d in got]
    assert order != sorted(order)  # jitter reorders
    assert net.in_flight() == 0


def test_invalid_conditions_are_rejected() -> None:
    import pytest

    from interactive_gym.netcode.settings import SettingsError

    with pytest.raises(SettingsError, match="loss"):
        NetworkConditions(loss=1.5)
    with pytest.raises(SettingsError, match="latency_ms"):
        NetworkConditions(latency_ms=-1)
    with pytest.raises(SettingsError, match="players"):
        run_simulation(lambda i: None, SimulationConfig(players=1))  # type: ignore[arg-type,return-value]
    assert random.Random(0).random() < 1
