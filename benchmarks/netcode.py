"""Netcode benchmark: what rollback costs on top of simply stepping the environment.

For a light env (the demo, Fruit Gatherers) and a heavier one (a 400-particle swarm), measures in one run:

(a) the pure cost of stepping the env F times;
(b) one peer's total time in its per-frame runner call (session + env work, re-simulation included) for F frames
    of a two-peer rollback game over the simulated network at 0, 100 and 200 ms round trip with 10% loss (the
    simulator's own clock and network are reported separately, not counted);

and reports (b)/(a), the re-simulation actually needed ((F + re-simulated frames) / F), rollbacks per frame,
mean rollback depth, and the netcode bookkeeping per frame: (b) minus env steps, saves, loads and checksums
(in situ, so it includes cache effects of interleaving with the env and the timers' own overhead), plus the same
game with a null env, where the runner's time is bookkeeping alone. Prints JSON. With ``--pyodide`` it also runs the same measurement
inside Pyodide under Node (``benchmarks/netcode_pyodide.mjs``) and includes those figures.

Usage: .venv/bin/python benchmarks/netcode.py [--frames 2000] [--pyodide]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "benchmarks"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from interactive_gym.envs.state import EnvStateAdapter  # noqa: E402
from interactive_gym.netcode.netsim import NetworkConditions  # noqa: E402
from interactive_gym.netcode.requests import StateCell  # noqa: E402
from interactive_gym.netcode.runner import P2PRunner  # noqa: E402
from interactive_gym.netcode.simulation import SimulationConfig, run_simulation  # noqa: E402

RTTS_MS = (0.0, 100.0, 200.0)
LOSS = 0.10


def _envs() -> dict[str, Any]:
    from netcode_heavy_env import make_env as make_swarm

    from examples.demo.gatherers import make_env as make_demo

    return {"demo (Fruit Gatherers)": make_demo, "heavy (400-particle swarm)": make_swarm}


class TimedAdapter(EnvStateAdapter):
    """Adapter that accumulates the time spent in env work (step, save, load, checksum)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times = {"step": 0.0, "save": 0.0, "load": 0.0, "checksum": 0.0}
        self.counts = {"step": 0, "save": 0, "load": 0, "checksum": 0}

    def _timed(self, name: str, fn: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self.times[name] += time.perf_counter() - start
            self.counts[name] += 1

    def advance(self, frame: int, inputs: Any) -> int | None:
        return self._timed("step", super().advance, frame, inputs)

    def save_state(self) -> tuple:
        return self._timed("save", super().save_state)

    def load_state(self, state: tuple) -> None:
        self._timed("load", super().load_state, state)

    def checksum(self, state: tuple) -> int:
        return self._timed("checksum", super().checksum, state)


class MethodTimer:
    """Accumulates the time spent in one method of a class while active (a context manager)."""

    def __init__(self, cls: type, name: str) -> None:
        self.seconds = 0.0
        self._cls = cls
        self._name = name
        self._original = getattr(cls, name)

    def __enter__(self) -> MethodTimer:
        original = self._original
        timer = self

        def timed(obj: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(obj, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - start

        setattr(self._cls, self._name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self._cls, self._name, self._original)


class NullEnv:
    """No environment at all: the runner's time is then pure session bookkeeping."""

    input_size = 1

    def save_state(self) -> None:
        return None

    def load_state(self, state: Any) -> None:
        return None

    def checksum(self, state: Any) -> int:
        return 0

    def advance(self, frame: int, inputs: Any) -> None:
        return None

    def random_input(self, rng: Any, player: int) -> bytes:
        return bytes([rng.randrange(5)])


def bookkeeping_only(frames: int, rtt_ms: float, seed: int, repeats: int) -> float:
    """Microseconds per frame per peer spent in the runner with a null env (best of ``repeats``)."""
    config = SimulationConfig(
        players=2, frames=frames, conditions=NetworkConditions(latency_ms=rtt_ms / 2, loss=LOSS), seed=seed,
        clock_drift=0.0, clock_offset_ms=0.0,
    )
    best = float("inf")
    for _ in range(repeats):
        with MethodTimer(P2PRunner, "tick") as ticks:
            run_simulation(lambda peer: NullEnv(), config)
        best = min(best, ticks.seconds / 2 / frames * 1e6)
    return round(best, 1)


def pure_steps(make_env: Any, frames: int, seed: int) -> float:
    """Seconds to reset once and step ``frames`` times with changing actions (no netcode at all)."""
    env = make_env()
    env.reset(seed=seed)
    agents = list(env.possible_agents)
    actions = [{a: (f // (5 + i)) % 5 for i, a in enumerate(agents)} for f in range(frames)]
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return time.perf_counter() - start


def session_run(make_env: Any, frames: int, rtt_ms: float, seed: int) -> dict[str, Any]:
    """One two-peer game; figures per peer (averaged over both)."""
    adapters: list[TimedAdapter] = []

    def build(peer: int) -> TimedAdapter:
        # No global-random isolation: in a browser each peer has its own interpreter, and these envs draw only
        # from their own seeded RNGs (isolation would add two getstate/setstate pairs per step).
        adapter = TimedAdapter(make_env(), seed=seed, isolate_global_random=False)
        adapters.append(adapter)
        return adapter

    config = SimulationConfig(
        players=2, frames=frames, conditions=NetworkConditions(latency_ms=rtt_ms / 2, loss=LOSS), seed=seed,
        clock_drift=0.0, clock_offset_ms=0.0,
    )
    # Tick time is the session plus the runner (what a browser pays per frame), without the simulator's own
    # clock and network. Storing a snapshot in its cell frees the one it replaces: that is part of saving.
    with MethodTimer(P2PRunner, "tick") as ticks, MethodTimer(StateCell, "save") as cells:
        start = time.perf_counter()
        report = run_simulation(build, config)
        wall = time.perf_counter() - start
    total = ticks.seconds
    peers = len(adapters)
    env_work = sum(sum(a.times.values()) for a in adapters) + cells.seconds
    steps = sum(a.counts["step"] for a in adapters) / peers
    rollbacks = sum(p.rollbacks for p in report.peers) / peers
    rollback_frames = sum(p.rollback_frames for p in report.peers) / peers
    per_peer = total / peers
    return {
        "rtt_ms": rtt_ms,
        "loss": LOSS,
        "ok": report.ok,
        "session_s_per_peer": round(per_peer, 4),
        "env_step_s_per_peer": round(sum(a.times["step"] for a in adapters) / peers, 4),
        "save_load_checksum_s_per_peer": round(
            (sum(a.times["save"] + a.times["load"] + a.times["checksum"] for a in adapters) + cells.seconds) / peers,
            4),
        "simulator_s_per_peer": round((wall - total) / peers, 4),
        "bookkeeping_us_per_frame": round((total - env_work) / peers / frames * 1e6, 1),
        "steps_per_frame": round(steps / frames, 3),
        "rollbacks_per_frame": round(rollbacks / frames, 3),
        "mean_rollback_depth": round(rollback_frames / rollbacks, 2) if rollbacks else 0.0,
        "stalls_per_peer": sum(p.stalls for p in report.peers) / peers,
    }


def measure(frames: int, seed: int, repeats: int = 3) -> dict[str, Any]:
    """Every figure for both envs; each timing is the best of ``repeats`` runs (the machine is shared)."""
    results: dict[str, Any] = {
        "bookkeeping_only_us_per_frame": {
            f"{rtt:g} ms": bookkeeping_only(frames, rtt, seed, repeats) for rtt in RTTS_MS
        }
    }
    for name, make_env in _envs().items():
        pure = min(pure_steps(make_env, frames, seed) for _ in range(repeats))
        runs = []
        for rtt in RTTS_MS:
            run = min((session_run(make_env, frames, rtt, seed) for _ in range(repeats)),
                      key=lambda r: r["session_s_per_peer"])
            run["ratio_to_pure_steps"] = round(run["session_s_per_peer"] / pure, 2)
            # What re-simulation alone would cost: (frames + re-simulated frames) steps.
            run["necessary_ratio"] = run["steps_per_frame"]
            run["ratio_over_necessary"] = round(run["ratio_to_pure_steps"] / run["steps_per_frame"], 2)
            # The same, counting the saves and loads rollback needs as necessary work too.
            env_work = run["env_step_s_per_peer"] + run["save_load_checksum_s_per_peer"]
            run["ratio_over_env_work"] = round(run["session_s_per_peer"] / env_work, 2)
            runs.append(run)
        results[name] = {"pure_steps_s": round(pure, 4), "pure_step_us": round(pure / frames * 1e6, 1),
                         "runs": runs}
    return results


def machine() -> dict[str, Any]:
    """CPU model, cores and Python version."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "implementation": platform.python_implementation(), "platform": sys.platform}


def pyodide_figures(frames: int, seed: int, repeats: int) -> dict[str, Any]:
    """Runs :func:`measure` inside Pyodide under Node and returns its JSON."""
    completed = subprocess.run(
        ["node", str(ROOT / "benchmarks" / "netcode_pyodide.mjs"), str(ROOT), str(frames), str(seed), str(repeats)],
        capture_output=True, text=True, timeout=1800, check=False,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr.strip()[-500:]}
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs per figure")
    parser.add_argument("--pyodide", action="store_true", help="also measure inside Pyodide (Node)")
    args = parser.parse_args()
    output = {"machine": machine(), "frames": args.frames, "results": measure(args.frames, args.seed, args.repeats)}
    if args.pyodide:
        output["pyodide"] = pyodide_figures(args.frames, args.seed, args.repeats)
    print(json.dumps(output, indent=2))


if __name__ == "__main__":
    main()
