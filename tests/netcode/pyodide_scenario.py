"""A seeded two-peer game over the simulated network, run identically in CPython and in Pyodide (Node).

``run()`` returns plain JSON-ready data: digests of every peer's confirmed input history, final checksums and the
session counters. Everything is seeded, so the two runtimes must produce exactly the same dictionary.
"""

from __future__ import annotations

import hashlib
import platform
import sys

from envs_for_tests import TagEnv

from interactive_gym.envs.state import EnvStateAdapter
from interactive_gym.netcode.netsim import NetworkConditions
from interactive_gym.netcode.runner import P2PRunner
from interactive_gym.netcode.simulation import SimulationConfig, run_simulation

CONFIG = SimulationConfig(
    players=2,
    frames=900,
    conditions=NetworkConditions(latency_ms=60.0, jitter_ms=25.0, loss=0.15, duplicate=0.05, reorder=0.05),
    seed=11,
    checksum_interval=30,
)


def _history_digest(runner: P2PRunner) -> str:
    digest = hashlib.sha256()
    for frame_inputs in runner.history:
        for data, status in frame_inputs:
            digest.update(bytes(data) + bytes([int(status)]))
    return digest.hexdigest()


def run() -> dict:
    """Plays the game and summarises it."""
    runners: list[P2PRunner] = []

    def make_env(peer: int) -> EnvStateAdapter:
        return EnvStateAdapter(TagEnv(players=2, episode_length=240), seed=5, isolate_global_random=True)

    original_init = P2PRunner.__init__

    def capture(self: P2PRunner, *args: object, **kwargs: object) -> None:
        original_init(self, *args, **kwargs)  # type: ignore[arg-type]
        runners.append(self)

    P2PRunner.__init__ = capture  # type: ignore[method-assign]
    try:
        report = run_simulation(make_env, CONFIG)
    finally:
        P2PRunner.__init__ = original_init  # type: ignore[method-assign]
    data = report.to_dict()
    return {
        "ok": report.ok,
        "history_digests": [_history_digest(r) for r in runners],
        "history_lengths": [len(r.history) for r in runners],
        "final_checksums": [p["final_checksum"] for p in data["peers"]],
        "peers": [
            {k: p[k] for k in ("frames", "rollbacks", "rollback_frames", "max_rollback_depth", "stalls",
                                "waited_frames", "episodes_agreed", "frames_simulated")}
            for p in data["peers"]
        ],
        "network": data["network"],
        "runtime": f"{platform.python_implementation()} {sys.version.split()[0]} {sys.platform}",
    }


if __name__ == "__main__":
    import json

    print(json.dumps(run()))
