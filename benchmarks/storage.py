"""Storage throughput and latency, printed as JSON.

For each SQLite ``synchronous`` level (FULL, the default, and NORMAL), on a fresh temporary database:

- ``buffered_steps``: a server game loop's path, ``append_steps`` one step at a time, then one ``flush()``:
  steps committed per second, and the event-loop cost of one ``append_steps`` call (encoding included).
- ``awaited_sequential``: one ``await record_event`` at a time: per-call latency (each is its own commit).
- ``awaited_concurrent``: many ``record_event`` calls awaited together: operations per second and commits
  used (group commit).
- ``timer_flush``: with ``flush_interval_s`` as configured, how long after ``append_steps`` a step becomes
  visible to another connection without any explicit flush.
- ``upload``: ``write_episode`` of a whole browser episode: steps per second.

Then ``export``: CSV export speed (steps rows per second) of the buffered-steps database.

Usage: ``.venv/bin/python benchmarks/storage.py [--steps N] [--flush-interval S]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from interactive_gym.export import export_csv
from interactive_gym.server.data_writer import DataWriter, StepRecord


def make_step(t: int) -> StepRecord:
    """A two-agent gridworld-sized step: 2 x 8-float observations, actions, rewards, flags, held keys."""
    observation = {f"agent_{i}": np.full(8, t + i, dtype=np.float32) for i in range(2)}
    agents = ("agent_0", "agent_1")
    return StepRecord(
        t, observation, {a: t % 5 for a in agents}, {a: 0.1 * t for a in agents}, dict.fromkeys(agents, False),
        dict.fromkeys(agents, False), {"score": t}, {"agent_0": ["ArrowUp"], "agent_1": []}, time.time(),
    )  # fmt: skip


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


async def begin(writer: DataWriter, game_id: str) -> int:
    return await writer.begin_episode(
        scene_id="game", game_id=game_id, episode=0, mode="server", source="server", seed=0, agents={}
    )


async def measure(db_path: Path, synchronous: str, steps: int, flush_interval_s: float) -> dict[str, Any]:
    writer = DataWriter(
        db_path, experiment_id="bench", flush_interval_s=flush_interval_s, synchronous=synchronous
    )
    await writer.start()
    result: dict[str, Any] = {}

    episode_id = await begin(writer, "buffered")
    prepared = [make_step(t) for t in range(steps)]
    append_costs = []
    started = time.perf_counter()
    for step in prepared:
        before = time.perf_counter()
        writer.append_steps(episode_id, [step])
        append_costs.append(time.perf_counter() - before)
    await writer.flush()
    elapsed = time.perf_counter() - started
    result["buffered_steps"] = {
        "steps": steps,
        "steps_per_s": round(steps / elapsed),
        "append_call": percentiles(append_costs),
        "commits": writer.stats.commits,
    }

    latencies = []
    for i in range(200):
        before = time.perf_counter()
        await writer.record_event("bench", {"i": i})
        latencies.append(time.perf_counter() - before)
    result["awaited_sequential"] = {"calls": 200, **percentiles(latencies)}

    commits_before = writer.stats.commits
    started = time.perf_counter()
    await asyncio.gather(*(writer.record_event("bench", {"i": i}) for i in range(2000)))
    elapsed = time.perf_counter() - started
    result["awaited_concurrent"] = {
        "calls": 2000,
        "ops_per_s": round(2000 / elapsed),
        "commits": writer.stats.commits - commits_before,
    }

    visible_after = []
    reader = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    timer_episode = await begin(writer, "timer")
    for t in range(10):
        appended = time.perf_counter()
        writer.append_steps(timer_episode, [make_step(t)])
        query = "SELECT COUNT(*) FROM steps WHERE episode_id = ?"
        while reader.execute(query, (timer_episode,)).fetchone()[0] <= t:
            await asyncio.sleep(0.002)
        visible_after.append(time.perf_counter() - appended)
    reader.close()
    result["timer_flush"] = {"flush_interval_s": flush_interval_s, **percentiles(visible_after)}

    upload_steps = [make_step(t) for t in range(3000)]
    started = time.perf_counter()
    await writer.write_episode(
        scene_id="game", game_id="upload", episode=0, mode="browser", source="p1", seed=0, agents={},
        steps=upload_steps, status="complete",
    )  # fmt: skip
    result["upload"] = {"steps": 3000, "steps_per_s": round(3000 / (time.perf_counter() - started))}
    await writer.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="steps for the buffered-steps test")
    parser.add_argument("--flush-interval", type=float, default=0.25, help="DataWriter flush_interval_s")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpu": platform.machine(),
        },
    }
    with tempfile.TemporaryDirectory() as folder:
        for synchronous in ("FULL", "NORMAL"):
            db_path = Path(folder) / f"{synchronous}.sqlite"
            report[synchronous] = asyncio.run(measure(db_path, synchronous, args.steps, args.flush_interval))
        started = time.perf_counter()
        written = dict(
            (path.name, rows) for path, rows in export_csv(Path(folder) / "FULL.sqlite", Path(folder) / "csv")
        )
        elapsed = time.perf_counter() - started
        report["export"] = {
            "step_rows": written["steps.csv"],
            "rows_per_s": round(written["steps.csv"] / elapsed),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
