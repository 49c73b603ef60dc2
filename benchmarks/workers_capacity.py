"""One server process against two workers: games held at 30 fps and server CPU per game tick, in one run.

For each size N (``--sizes``: games, two simulated humans each) and each of ``--runs`` runs (default 3), the
real CLI serves the benchmark experiment (``workers_capacity_experiment.py``: the same scene as
``server_capacity.py --env demo``, ``--duration`` seconds at ``--fps``) twice, one variant right after the other:

- ``--workers 1``: plain ``interactive-gym run``, one process, no Redis (the default deployment);
- ``--workers 2``: ``interactive-gym run --workers 2 --redis URL`` with a fresh ``redis-server`` the benchmark
  starts (``tests/redis_server.py``): the front and two worker processes behind one port.

Clients are ``server_capacity_clients.py`` processes (fast keys: a new one every ``--key-interval``, default
0.1 s). They connect through the front with no route, keep the worker the server names (``route``) and follow
``relocate`` when their group formed on the other worker, as the page does. Each run's database, server and
Redis are fresh.

Figures per (size, workers), median and range over the runs: games held at rate (episode rate >= 29.5 ticks/s
at 30 fps) and at target (that and the episode's own p99 tick lateness < 10 ms), the median game's tick rate
and p50/p99 tick lateness (``meta.tick_lateness``), server CPU summed over the CLI's process tree (the front and
every worker; Redis reported apart and added in a second figure), CPU per game tick, and clients relocated.
Ratios 2 workers / 1 worker are taken within each run pair (same run, same size), then summarised. Verdicts
(see ``workers_capacity_stats.py``): (a) at most 20% more CPU per game tick with two workers, (b) two workers
hold more games at target than one; both are refused from fewer than 3 runs.

The machine (CPU, cores, load averages) and the load each variant ran under are in the JSON, which is printed
and written to ``--out`` (default ``benchmarks/results/workers_capacity_<env>.json``).

Usage::

    .venv/bin/python benchmarks/workers_capacity.py                       # N = 30, 45, 60, 75; 20 s; 3 runs
    .venv/bin/python benchmarks/workers_capacity.py --sizes 4 --duration 5 --runs 1 --out /tmp/w.json
    .venv/bin/python benchmarks/workers_capacity.py --quick               # 2 games, 5 s, 1 run, no verdict
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
from server_capacity import (
    RESULTS,
    SAMPLE_S,
    TARGET_MEAN_RATE,
    TARGET_P99_MS,
    ClientProc,
    _cpu,
    free_port,
    load_average,
    machine,
    send_go,
    start_clients,
    summarise,
    wait_for_quiet,
    wait_healthy,
)
from server_capacity_envs import ENVS, bench_env
from server_capacity_stats import across_runs
from workers_capacity_server import TreeCpu, redis_cpu_s, start_cli
from workers_capacity_stats import capacity_verdict, cpu_verdict, games_at, ratio

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from redis_server import running_redis  # noqa: E402

from interactive_gym.server.storage import Storage  # noqa: E402

VARIANTS = (1, 2)
START_TIMEOUT_S = 120.0  # two workers each load the experiment on a machine the clients share
STOP_TIMEOUT_S = 60.0


def _stop(server: subprocess.Popen[bytes]) -> None:
    """SIGINT, as Ctrl-C: one process shuts uvicorn down gracefully; the supervisor stops the front, then its
    workers. Either commits everything before exiting."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def _episodes(db: Path) -> list[dict[str, Any]]:
    with Storage(db, readonly=True) as storage:
        return [{"status": e.status, "started_at": e.started_at, "ended_at": e.ended_at, "meta": e.meta}
                for e in storage.episodes()]


def run_variant(games: int, workers: int, run: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Serves ``games`` games with ``workers`` worker processes (1: one plain process); returns the figures."""
    label = f"{games}g_{workers}w_run{run}"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = workdir / f"{label}.sqlite"
    clients: list[ClientProc] = []
    with contextlib.ExitStack() as stack:
        redis = stack.enter_context(running_redis()) if workers > 1 else None
        log = stack.enter_context((workdir / f"server_{label}.log").open("wb"))
        server = start_cli(port, db, workers, redis.url if redis else None, args.env, args.fps,
                           args.fps * args.duration, log)
        try:
            wait_healthy(url, server, timeout=START_TIMEOUT_S)
            setup_started = time.monotonic()
            start_clients(url, games, args, workdir, clients, label)
            setup_s = time.monotonic() - setup_started
            client_ps = [psutil.Process(c.proc.pid) for c in clients]
            for counted in client_ps:  # the first call starts each CPU counter
                _cpu(counted)
            psutil.cpu_percent(None)
            tree = TreeCpu(psutil.Process(server.pid))
            redis_go = redis_cpu_s(redis.port) if redis else None
            send_go(clients)
            server_cpu: list[tuple[float, float]] = []
            client_cpu: list[tuple[float, float]] = []
            total_cpu: list[tuple[float, float]] = []
            rss: list[tuple[float, float]] = []
            while any(c.proc.poll() is None for c in clients):
                time.sleep(SAMPLE_S)
                now = time.monotonic()
                percent, mib = tree.sample()
                server_cpu.append((now, percent))
                rss.append((now, mib))
                client_cpu.append((now, sum(_cpu(p) for p in client_ps)))
                total_cpu.append((now, psutil.cpu_percent(None) * (os.cpu_count() or 1)))
            cpu_s = tree.seconds()
            redis_s = (redis_cpu_s(redis.port) or 0.0) - (redis_go or 0.0) if redis else None
            results = [c.result() for c in clients]
        finally:
            for client in clients:
                if client.proc.poll() is None:
                    client.proc.kill()
            _stop(server)
    per_client = [c for r in results for c in r["clients"]]
    episodes = _episodes(db)
    detail = summarise(games, args, per_client, episodes, server_cpu, client_cpu, total_cpu, rss)
    return figures(games, workers, run, args, detail, episodes, per_client, cpu_s, redis_s, tree.count, setup_s)


def figures(games: int, workers: int, run: int, args: argparse.Namespace, detail: dict[str, Any],
            episodes: list[dict[str, Any]], per_client: list[dict[str, Any]], cpu_s: float,
            redis_s: float | None, processes: int, setup_s: float) -> dict[str, Any]:
    """One variant run's headline figures, with ``server_capacity.summarise``'s block as ``detail``."""
    min_rate = TARGET_MEAN_RATE * args.fps / 30
    lateness = detail["server_tick_lateness"]
    ticks = lateness.get("ticks") or 0
    return {
        "games": games, "workers": workers, "run": run,
        "episodes_complete": detail["episodes_complete"],
        "clients_without_game_over": detail["clients_without_game_over"],
        "client_errors": detail["client_errors"],
        "games_at_rate": games_at(episodes, min_rate),
        "games_at_target": games_at(episodes, min_rate, TARGET_P99_MS),
        "tick_rate_median": detail["tick_rate_db"].get("median"),
        "lateness_p50_ms": lateness.get("p50_ms_median_game"),
        "lateness_p99_ms": lateness.get("p99_ms_median_game"),
        "lateness_p99_ms_worst_game": lateness.get("p99_ms_worst_game"),
        "game_ticks": ticks,
        "server_processes": processes,
        "server_cpu_s": round(cpu_s, 3),
        "server_cpu_pct_one_core": detail["server_cpu_pct_one_core"],
        "server_cpu_ms_per_game_tick": round(1000 * cpu_s / ticks, 4) if ticks else None,
        "redis_cpu_s": round(redis_s, 3) if redis_s is not None else None,
        "server_and_redis_cpu_ms_per_game_tick": round(1000 * (cpu_s + (redis_s or 0.0)) / ticks, 4)
        if ticks else None,
        "clients_relocated": sum(c.get("relocations", 0) > 0 for c in per_client),
        "relocations": sum(c.get("relocations", 0) for c in per_client),
        # One process names no worker (no route event): its clients count as "unrouted".
        "clients_per_worker": dict(Counter(c.get("route") or "unrouted" for c in per_client)),
        "client_cpu_pct_one_core": detail["client_cpu_pct_one_core"],
        "other_cpu_pct_one_core": detail["other_cpu_pct_one_core"],
        "setup_s": round(setup_s, 2),
        "detail": detail,
    }


HEADLINE = ("games_at_rate", "games_at_target", "tick_rate_median", "lateness_p50_ms", "lateness_p99_ms",
            "server_cpu_pct_one_core", "server_cpu_ms_per_game_tick", "server_and_redis_cpu_ms_per_game_tick",
            "redis_cpu_s", "clients_relocated", "client_cpu_pct_one_core", "other_cpu_pct_one_core")
RATIOS = ("games_at_rate", "games_at_target", "tick_rate_median", "lateness_p99_ms", "server_cpu_pct_one_core",
          "server_cpu_ms_per_game_tick", "server_and_redis_cpu_ms_per_game_tick")


def summary(runs: list[dict[str, Any]], sizes: list[int], run_count: int) -> dict[str, Any]:
    """Per (size, workers) medians and ranges, per-size ratios within run pairs, and the two verdicts."""
    by_key = {(r["games"], r["workers"], r["run"]): r for r in runs}
    variants = []
    ratios = []
    cpu_pairs = []
    for games in sizes:
        for workers in VARIANTS:
            mine = [r for r in runs if r["games"] == games and r["workers"] == workers]
            if mine:
                variants.append({"games": games, "workers": workers, "runs": len(mine),
                                 "figures": {k: across_runs([r.get(k) for r in mine]) for k in HEADLINE}})
        pairs = [(by_key[(games, 1, n)], by_key[(games, 2, n)]) for n in range(1, run_count + 1)
                 if (games, 1, n) in by_key and (games, 2, n) in by_key]
        ratios.append({"games": games, "pairs": len(pairs),
                       "two_over_one": {k: across_runs([ratio(b.get(k), a.get(k)) for a, b in pairs])
                                        for k in RATIOS}})
        cpu_pairs += [{"run": a["run"], "games": games, "eligible": a["games_at_rate"] == games,
                       "ratio": ratio(b["server_cpu_ms_per_game_tick"], a["server_cpu_ms_per_game_tick"])}
                      for a, b in pairs]
    capacity = {w: [max((r["games_at_target"] for r in runs if r["workers"] == w and r["run"] == n), default=0)
                    for n in range(1, run_count + 1)] for w in VARIANTS}
    return {"variants": variants, "ratios": ratios,
            "verdict": {"a_cpu_per_game_tick": cpu_verdict(cpu_pairs, run_count),
                        "b_games_at_target": capacity_verdict(capacity, max(sizes), run_count)}}


def markdown_table(variants: list[dict[str, Any]]) -> str:
    """One row per (size, workers): medians over the runs."""
    columns = [("at rate", "games_at_rate"), ("at target", "games_at_target"), ("rate", "tick_rate_median"),
               ("p50 ms", "lateness_p50_ms"), ("p99 ms", "lateness_p99_ms"),
               ("server CPU %", "server_cpu_pct_one_core"), ("CPU ms/tick", "server_cpu_ms_per_game_tick"),
               ("+ redis ms/tick", "server_and_redis_cpu_ms_per_game_tick"), ("relocated", "clients_relocated")]
    rows = [f"| games | workers | runs | {' | '.join(label for label, _ in columns)} |",
            "|" + "---|" * (len(columns) + 3)]
    for v in variants:
        cells = " | ".join("-" if v["figures"][k]["median"] is None else f"{v['figures'][k]['median']:g}"
                           for _, k in columns)
        rows.append(f"| {v['games']} | {v['workers']} | {v['runs']} | {cells} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="One server process against two workers (see the docstring).")
    # Around one process's limit on a 2-core machine (about 45 demo games, server_capacity_demo*.json), so the
    # smallest size compares CPU per tick unsaturated and the largest finds where each variant stops holding.
    parser.add_argument("--sizes", default="30,45,60,75", help="comma-separated game counts")
    parser.add_argument("--duration", type=int, default=20, help="seconds of game time per game")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--env", choices=sorted(ENVS), default="demo")
    parser.add_argument("--key-interval", type=float, default=0.1,
                        help="mean seconds between a participant's key changes (0.1: a fast game)")
    parser.add_argument("--runs", type=int, default=3, help="run pairs of every size (a verdict needs 3)")
    parser.add_argument("--client-procs", type=int, default=0, help="client processes (default: one per 100 games)")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait for a quiet machine before each variant (0: do not wait)")
    parser.add_argument("--max-other-cores", type=float, default=0.3,
                        help="CPU (in cores) other processes may use for the machine to count as quiet")
    parser.add_argument("--out", type=Path, default=None,
                        help="raw JSON file (default benchmarks/results/workers_capacity_<env>.json)")
    parser.add_argument("--quick", action="store_true", help="2 games for 5 s, 1 run, no verdict: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.duration, args.runs, args.quiet_wait = "2", 5, 1, 0.0
    try:
        args.size_list = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 1:
        parser.error("--sizes needs at least one game count >= 1")
    if args.duration < 1 or args.fps < 1 or args.runs < 1 or args.client_procs < 0:
        parser.error("--duration, --fps and --runs must be >= 1 and --client-procs >= 0")
    if not 0.005 <= args.key_interval <= 60:
        parser.error(f"--key-interval must be from 0.005 to 60 seconds, got {args.key_interval}")
    if args.out is None:
        args.out = RESULTS / f"workers_capacity_{args.env}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report: dict[str, Any] = {
        "benchmark": "workers_capacity", "machine": machine(),
        "settings": {"sizes": args.size_list, "runs": args.runs, "duration_s": args.duration, "fps": args.fps,
                     "env": bench_env(args.env).description, "key_interval_s": args.key_interval,
                     "players_per_game": 2, "variants": {"1": "interactive-gym run (one process, no Redis)",
                                                         "2": "interactive-gym run --workers 2 --redis URL"},
                     "order": "per run, per size: 1 worker, then 2 workers",
                     "server_cpu": "user + system of the CLI's process tree (front and workers); redis apart",
                     "targets": {"rate_at_least": round(TARGET_MEAN_RATE * args.fps / 30, 2),
                                 "p99_lateness_below_ms": TARGET_P99_MS},
                     "clients": "server_capacity_clients.py processes (python-socketio), following route/relocate"},
        "runs": [],
    }
    workdir = Path(tempfile.mkdtemp(prefix="ig_workers_capacity_"))
    try:
        for run in range(1, args.runs + 1):
            for games in args.size_list:
                for workers in VARIANTS:
                    load = wait_for_quiet(args.max_other_cores, args.quiet_wait) if args.quiet_wait > 0 else {}
                    print(f"workers_capacity: run {run}/{args.runs}, {games} games, {workers} worker(s), "
                          f"{args.duration} s ...", file=sys.stderr, flush=True)
                    before = load_average()
                    result = run_variant(games, workers, run, args, workdir)
                    report["runs"].append({**result, "machine_load": load, "load_avg_before": before,
                                           "load_avg_after": load_average()})
    finally:
        report["machine"]["load_avg_at_end"] = load_average()
        if args.keep:
            print(f"workers_capacity: files kept in {workdir}", file=sys.stderr)
        else:
            for item in workdir.iterdir():
                item.unlink()
            workdir.rmdir()
    report["summary"] = summary(report["runs"], args.size_list, args.runs)
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"workers_capacity: raw JSON in {args.out}", file=sys.stderr)
    print(markdown_table(report["summary"]["variants"]), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
