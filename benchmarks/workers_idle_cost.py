"""What the server costs with nobody connected: one process against ``--workers 2``, in one run.

The fixed part of the multi-process path (a second interpreter's event loop and housekeeping, the front,
each worker's Redis heartbeat, handover listener and Socket.IO manager) is paid whatever the load; this
measures it apart from the games. For each of ``--runs`` runs (default 3), alternating, the real CLI serves
the capacity benchmark's experiment (``workers_capacity_experiment.py``) with no participant; after
``--settle`` seconds the CPU of its whole process tree (``workers_capacity_server.TreeCpu``) and of Redis is
read over ``--duration`` seconds. Printed as JSON and written to ``--out`` (default
``benchmarks/results/workers_idle_cost.json``) with the machine and its load.

Usage::

    .venv/bin/python benchmarks/workers_idle_cost.py                  # 3 runs, 20 s each
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from server_capacity import RESULTS, free_port, load_average, machine
from workers_capacity_server import TreeCpu, redis_cpu_s, start_cli

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(ROOT / "tests"))

from redis_server import running_redis  # noqa: E402
from worker_cluster import answers_healthz  # noqa: E402

START_TIMEOUT_S = 60.0


def _wait_serving(port: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers_healthz(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server on port {port} did not answer /healthz")
        time.sleep(0.2)


def measure(workers: int, settle_s: float, duration_s: float, folder: Path) -> dict[str, Any]:
    """One idle server: its process tree's CPU (% of one core) and Redis's, over ``duration_s``."""
    port = free_port()
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(running_redis()) if workers > 1 else None
        log = stack.enter_context((folder / f"idle_{workers}_{port}.log").open("wb"))
        process = start_cli(port, folder / f"idle_{workers}_{port}.sqlite", workers,
                            redis.url if redis else None, "demo", 30, 600, log)
        try:
            _wait_serving(port)
            time.sleep(settle_s)
            tree = TreeCpu(psutil.Process(process.pid))
            redis_before = redis_cpu_s(redis.port) if redis else None
            load = load_average()
            time.sleep(duration_s)
            server_s = tree.seconds()
            redis_after = redis_cpu_s(redis.port) if redis else None
        finally:
            process.terminate()
            process.wait(timeout=30)
    redis_s = None if redis_before is None or redis_after is None else redis_after - redis_before
    return {"workers": workers, "processes": tree.count, "server_cpu_pct_one_core": round(100 * server_s / duration_s, 2),
            "redis_cpu_pct_one_core": None if redis_s is None else round(100 * redis_s / duration_s, 2),
            "load_avg_at_start": load}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after start-up before measuring")
    parser.add_argument("--out", type=Path, default=RESULTS / "workers_idle_cost.json")
    args = parser.parse_args(argv)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="ig-idle-") as folder:
        for run in range(1, args.runs + 1):
            for workers in (1, 2):
                print(f"workers_idle_cost: run {run}/{args.runs}, {workers} worker(s)", file=sys.stderr)
                runs.append({"run": run, **measure(workers, args.settle, args.duration, Path(folder))})
    summary = {}
    for workers in (1, 2):
        values = [r["server_cpu_pct_one_core"] for r in runs if r["workers"] == workers]
        summary[f"{workers}_worker_cpu_pct_one_core"] = {"median": statistics.median(values), "min": min(values),
                                                         "max": max(values), "n": len(values)}
    report = {"benchmark": "workers_idle_cost", "machine": machine(), "load": "nobody connected; nothing else "
              "running but this benchmark", "settings": vars(args) | {"out": str(args.out)}, "runs": runs,
              "summary": summary}
    text = json.dumps(report, indent=2, default=str)
    args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
