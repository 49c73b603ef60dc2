"""What a server-side replay of a demo episode costs, and what it does to the event loop; prints one JSON document.

Records one 450-step Fruit Gatherers episode (examples/demo, the human playing random keys, the greedy partner)
and measures:

* ``replay_ms``: one replay in this process (median and max of ``--runs``);
* ``loop_lag_ms``: how late a 5 ms ``asyncio.sleep`` wakes up while ``--replays`` replays run, when they run
  ``inline`` on the event loop, in a ``thread`` (``asyncio.to_thread``), or in a ``process``
  (``HashSeededPool``, one spawned worker, as ``EpisodeVerifier`` does), plus each variant's wall time.

Usage: ``.venv/bin/python benchmarks/replay_verifier.py [--runs 10] [--replays 8]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
sys.path.insert(0, str(DEMO))

import gatherers  # noqa: E402

from interactive_gym.browser.host import BrowserGameHost  # noqa: E402
from interactive_gym.controls import KeyMapping  # noqa: E402
from interactive_gym.rendering import Surface  # noqa: E402
from interactive_gym.replay import replay_episode  # noqa: E402
from interactive_gym.replay_worker import EnvSource, HashSeededPool, ReplayJob, run_job  # noqa: E402

STEPS = 450


def record(seed: int) -> list[dict[str, Any]]:
    mapping = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
    width, height = gatherers.canvas_size()
    host = BrowserGameHost(env_factory=gatherers.make_env, render_fn=gatherers.render, env_kwargs={},
                           agents={"agent_0": {"kind": "human"},
                                   "agent_1": {"kind": "python", "fn": gatherers.greedy_policy}},
                           key_mapping=mapping, surface=Surface(width, height), max_steps=STEPS)
    host.reset(seed)
    rng = random.Random(seed)
    while not host.episode_over:
        host.frame(rng.choice(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", ""]))
    return host.steps


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(ordered[len(ordered) // 2] * 1000, 2),
            "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
            "max": round(ordered[-1] * 1000, 2), "samples": len(ordered)}


async def lag_while(work: Any) -> tuple[list[float], float]:
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    await work()
    wall = time.perf_counter() - started
    done.set()
    await task
    return lags, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--replays", type=int, default=8)
    args = parser.parse_args()
    steps = record(7)
    assert len(steps) == STEPS
    costs = []
    for _ in range(args.runs):
        started = time.perf_counter()
        assert replay_episode(gatherers.make_env, {}, 7, steps, STEPS).match
        costs.append(time.perf_counter() - started)
    job = ReplayJob(EnvSource(factory="gatherers:make_env", max_steps=STEPS), seed=7, steps=steps)
    pool = HashSeededPool(1)
    pool.submit(run_job, job).result()  # warm: the worker has imported the env

    async def inline() -> None:
        for _ in range(args.replays):
            run_job(job)

    async def thread() -> None:
        await asyncio.gather(*(asyncio.to_thread(run_job, job) for _ in range(args.replays)))

    async def process() -> None:
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(run_job, job)) for _ in range(args.replays)))

    lag = {}
    for name, work in (("inline", inline), ("thread", thread), ("process", process)):
        lags, wall = asyncio.run(lag_while(work))
        lag[name] = {**percentiles(lags), "wall_s": round(wall, 3)}
    pool.shutdown()
    print(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "episode_steps": STEPS,
        "replay_ms": {"median": round(statistics.median(costs) * 1000, 2), "max": round(max(costs) * 1000, 2),
                      "runs": args.runs},
        "replays": args.replays,
        "loop_lag_ms": lag,
    }, indent=2))


if __name__ == "__main__":
    main()
