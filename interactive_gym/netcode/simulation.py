"""Frame-stepping driver: N peers, each a :class:`P2PRunner` with its own env, over a :class:`SimulatedNetwork`.

Each peer ticks on its own simulated clock (a seeded start offset and a slight rate drift, as real browsers have),
feeds random inputs that change now and then (as held keys do), and sends what its session asks. After the target
frame count the peers stop advancing but keep exchanging packets until every input is confirmed; then their
confirmed input histories and final state checksums are compared. Everything is seeded: same seed, same run.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .netsim import NetworkConditions, NetworkCounters, SimulatedNetwork
from .p2p_session import P2PSession
from .requests import DesyncDetected, EpisodeAgreed, InputStatus
from .runner import P2PRunner, RollbackEnv
from .settings import SettingsError, p2p_settings


class SimulatedEnv(RollbackEnv, Protocol):
    """A rollback env that can also invent inputs (``EnvStateAdapter`` is one)."""

    input_size: int

    def random_input(self, rng: random.Random, player: int) -> bytes:
        """Bytes of a random valid input for ``player``."""


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated game.

    Attributes:
        players: Peers (one player each), 2..8.
        frames: Frames every peer simulates.
        conditions: Network misbehaviour.
        seed: Seeds the network, the inputs, the clocks and the env (``env_seed``).
        input_delay, max_prediction, checksum_interval, fps: Session settings.
        input_change: Probability per frame that a peer's input changes.
        clock_offset_ms: Peers start up to this much apart.
        clock_drift: Peers' frame clocks run up to this fraction fast or slow.
        time_limit_ms: Simulated time after which an unfinished game is abandoned (0: automatic).
        time_sync: Let peers that run ahead wait frames (off only to show what time sync buys).
    """

    players: int = 2
    frames: int = 600
    conditions: NetworkConditions = field(default_factory=NetworkConditions)
    seed: int = 0
    input_delay: int = 2
    max_prediction: int = 8
    checksum_interval: int = 60
    fps: float = 60.0
    input_change: float = 0.2
    clock_offset_ms: float = 100.0
    clock_drift: float = 0.003
    time_limit_ms: float = 0.0
    time_sync: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or self.frames < 1:
            raise SettingsError(f"frames must be a positive integer, got {self.frames!r}")
        if not 0.0 <= self.input_change <= 1.0:
            raise SettingsError(f"input_change must be a probability, got {self.input_change!r}")
        if self.clock_offset_ms < 0 or not 0 <= self.clock_drift < 0.5:
            raise SettingsError("clock_offset_ms must be >= 0 and clock_drift in [0, 0.5)")


@dataclass
class PeerReport:
    """One peer's view of the game."""

    player: int
    frames: int
    confirmed_frame: int
    frames_simulated: int
    rollbacks: int
    rollback_frames: int
    mean_rollback_depth: float
    max_rollback_depth: int
    stalls: int
    waited_frames: int
    desyncs: int
    episodes_agreed: int
    dropped_packets: dict[str, int]
    rtt_ms: dict[str, float | None]
    final_checksum: str


@dataclass
class SimulationReport:
    """Outcome of :func:`run_simulation`."""

    config: dict[str, Any]
    finished: bool
    simulated_ms: float
    peers: list[PeerReport]
    network: NetworkCounters
    histories_identical: bool
    first_history_difference: int | None
    checksums_identical: bool
    desyncs: int

    @property
    def ok(self) -> bool:
        """Finished, identical histories and checksums, and no desync reported."""
        return self.finished and self.histories_identical and self.checksums_identical and self.desyncs == 0

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data."""
        data = asdict(self)
        data["ok"] = self.ok
        return data


def _first_difference(histories: list[list[tuple[tuple[bytes, InputStatus], ...]]], frames: int) -> int | None:
    reference = histories[0]
    for frame in range(frames):
        expected = reference[frame] if frame < len(reference) else None
        for other in histories[1:]:
            if (other[frame] if frame < len(other) else None) != expected:
                return frame
    return None


def run_simulation(make_env: Callable[[int], SimulatedEnv], config: SimulationConfig) -> SimulationReport:
    """Plays one seeded game between ``config.players`` simulated peers.

    Args:
        make_env: Builds peer ``i``'s env (every peer gets its own instance, as every browser does).
        config: The game and network settings.

    Returns:
        The report; ``report.ok`` says whether every peer agreed on everything.
    """
    n = config.players
    if not 2 <= n <= 8:
        raise SettingsError(f"players must be 2..8, got {n!r}")
    master = random.Random(config.seed)
    network = SimulatedNetwork(config.conditions, master.getrandbits(32))
    frame_ms = 1000.0 / config.fps
    envs = [make_env(i) for i in range(n)]
    runners: list[P2PRunner] = []
    for i, env in enumerate(envs):
        settings = p2p_settings(
            n,
            i,
            {j: j for j in range(n) if j != i},
            input_size=env.input_size,
            input_delay=config.input_delay,
            max_prediction=config.max_prediction,
            checksum_interval=config.checksum_interval,
            fps=config.fps,
            disconnect_timeout_ms=max(5000.0, 20 * config.conditions.latency_ms),
            disconnect_notify_ms=max(1000.0, 5 * config.conditions.latency_ms),
        )
        runners.append(P2PRunner(P2PSession(settings, now_ms=0.0), env, time_sync=config.time_sync))
    input_rngs = [random.Random(master.getrandbits(32)) for _ in range(n)]
    periods = [frame_ms * (1.0 + master.uniform(-config.clock_drift, config.clock_drift)) for _ in range(n)]
    clock = [(master.uniform(0.0, config.clock_offset_ms), i) for i in range(n)]
    heapq.heapify(clock)
    inputs = [envs[i].random_input(input_rngs[i], i) for i in range(n)]
    desyncs = [0] * n
    episodes = [0] * n
    # Generous: even lockstep without input delay needs only about one trip per frame.
    worst_trip = 2.0 * (config.conditions.latency_ms + config.conditions.jitter_ms) + 2.0 * frame_ms
    limit = config.time_limit_ms or (config.frames * worst_trip * 2.0 + 30_000.0)
    finished = False
    now = 0.0
    while clock:
        now, i = heapq.heappop(clock)
        if now > limit:
            break
        runner = runners[i]
        rng = input_rngs[i]
        if rng.random() < config.input_change:
            inputs[i] = envs[i].random_input(rng, i)
        advance = runner.session.current_frame < config.frames
        result = runner.tick(now, {i: inputs[i]}, network.receive(i, now), advance=advance)
        for event in result.events:
            if isinstance(event, DesyncDetected):
                desyncs[i] += 1
            elif isinstance(event, EpisodeAgreed):
                episodes[i] += 1
        for destination, data in result.outgoing:
            network.send(now, i, destination, data)
        heapq.heappush(clock, (now + periods[i], i))
        if all(r.session.current_frame >= config.frames and r.confirmed_through >= config.frames - 1 for r in runners):
            finished = True
            break
    return _report(config, runners, envs, network, desyncs, episodes, finished, now)


def _report(
    config: SimulationConfig,
    runners: list[P2PRunner],
    envs: list[SimulatedEnv],
    network: SimulatedNetwork,
    desyncs: list[int],
    episodes: list[int],
    finished: bool,
    now: float,
) -> SimulationReport:
    peers = []
    checksums = []
    for i, (runner, env) in enumerate(zip(runners, envs, strict=True)):
        session = runner.session
        stats = session.stats()
        checksum = f"{env.checksum(env.save_state()):016x}"
        checksums.append(checksum)
        rollbacks = int(stats["rollbacks"])  # type: ignore[call-overload]
        rollback_frames = int(stats["rollback_frames"])  # type: ignore[call-overload]
        peers.append(
            PeerReport(
                player=i,
                frames=session.current_frame,
                confirmed_frame=session.confirmed_frame,
                frames_simulated=runner.frames_simulated,
                rollbacks=rollbacks,
                rollback_frames=rollback_frames,
                mean_rollback_depth=round(rollback_frames / rollbacks, 3) if rollbacks else 0.0,
                max_rollback_depth=int(stats["max_rollback_depth"]),  # type: ignore[call-overload]
                stalls=int(stats["stalls"]),  # type: ignore[call-overload]
                waited_frames=runner.waited_frames,
                desyncs=desyncs[i],
                episodes_agreed=episodes[i],
                dropped_packets=dict(stats["dropped"]),  # type: ignore[call-overload]
                rtt_ms={
                    str(j): (None if (rtt := session.network_stats(j).rtt_ms) is None else round(rtt, 1))
                    for j in range(config.players)
                    if j != i
                },
                final_checksum=checksum,
            )
        )
    histories = [r.history for r in runners]
    difference = _first_difference(histories, config.frames) if finished else None
    config_data = asdict(config)
    return SimulationReport(
        config=config_data,
        finished=finished,
        simulated_ms=round(now, 1),
        peers=peers,
        network=network.counters,
        histories_identical=finished and difference is None,
        first_history_difference=difference,
        checksums_identical=finished and len(set(checksums)) == 1,
        desyncs=sum(desyncs),
    )
