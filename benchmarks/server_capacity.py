"""Server-mode capacity: how many concurrent two-player games one server holds at 30 fps.

For each size N, a fresh experiment server (``server_capacity_server.py``) runs alone in its own process on
a free loopback port with a temporary database, and ``2 N`` simulated participants (python-socketio
clients, ``server_capacity_clients.py``, in their own processes, never the server's) connect, join at the
same moment, play the chosen env (``--env``: ``demo`` Fruit Gatherers, ``grid`` CoinGrid with dict
observations; see ``server_capacity_envs.py``) by pressing a new arrow every ``--key-interval`` seconds
(default 0.1 s: a fast game), and record every render packet's arrival. The orchestrator samples CPU and
memory of the server and of the clients while the games run.

The server also reports its garbage collections (count, total and longest pause per generation; ``--gc-freeze``
makes it call ``gc.freeze()`` before serving, for comparison). For decisions on a shared machine, use CPU per
game tick (below) or the load-independent instruction counts of ``server_capacity_hotpath.py`` under callgrind,
not the rates and lateness, which move with other processes' load.

Every size runs ``--runs`` times (default 3; run 1 of every size, then run 2, ...) and the report gives the
median and range of each headline figure over the runs. A "target met" verdict needs at least three runs and
every run meeting the target; from fewer the verdict is refused. The raw JSON (every run, the machine: CPU
model, cores, load average at start and end) is written to ``--out`` (default
``benchmarks/results/server_capacity_<env>.json``) and printed.

Figures per N (printed as JSON, with the machine's description):

- achieved tick rate per game, from the database (``meta.steps / (ended_at - started_at)``) and from the
  clients (ticks / time between first and last render packet): mean, min, median, max;
- server tick lateness from the game clock (``meta.tick_lateness`` of every episode) and, as a second view,
  client-side delivery lateness (arrival against the best-case schedule) and inter-arrival jitter;
- server CPU (% of one core) and RSS while every game is running; client CPU and other load on the machine;
- render packets per client per second and render payload size;
- whether accepted server sockets have TCP_NODELAY set (read from the sockets themselves).

Usage::

    .venv/bin/python benchmarks/server_capacity.py                      # N = 10, 50, 100, 150; 20 s, 3 runs each
    .venv/bin/python benchmarks/server_capacity.py --env grid --sizes 100 --runs 3
    .venv/bin/python benchmarks/server_capacity.py --sizes 30 --duration 10 --runs 1 --py-spy --out /tmp/x.json
    .venv/bin/python benchmarks/server_capacity.py --quick              # N = 2 for 5 s, 1 run (CI smoke, < 30 s)
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import os
import platform
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
from server_capacity_envs import ENVS, bench_env
from server_capacity_pyspy import start_recording, summarise_collapsed
from server_capacity_stats import (
    across_runs,
    distribution_ms,
    episode_rates,
    server_lateness,
    spread,
    verdict,
    window_mean,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from interactive_gym.server.app import YOUNG_GC_THRESHOLD  # noqa: E402
from interactive_gym.server.storage import Storage  # noqa: E402

SAMPLE_S = 0.5
TARGET_P99_MS = 10.0
TARGET_MEAN_RATE = 29.5  # ticks/s at 30 fps (issue 12); scaled by fps / 30 for other rates
TARGET_RATE_FRACTION = 0.97  # every game's own rate: the DB rate slightly underestimates (commit delays)
RESULTS = HERE / "results"
PACKAGES = ("python-socketio", "python-engineio", "uvicorn", "starlette", "wsproto", "websockets", "h11", "httptools",
            "uvloop", "aiohttp")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
        "packages": versions,
        "load_avg_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded."""
    return [round(v, 2) for v in os.getloadavg()]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the benchmark server exited with code {server.returncode} before serving")
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the benchmark server did not answer {url}/healthz within {timeout:.0f} s")


@dataclass
class ClientProc:
    """One client process and the lines it printed (read by a thread so its pipe never fills)."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.lines.append(line)
                if line.strip() == "READY":
                    self.ready.set()
            self.ready.set()  # EOF: wake the waiter, which then sees the process died

        threading.Thread(target=read, daemon=True).start()

    def result(self) -> dict[str, Any]:
        for line in self.lines:
            if line.startswith("RESULT "):
                return json.loads(line[len("RESULT "):])
        raise RuntimeError(f"a client process (exit code {self.proc.returncode}) printed no RESULT line")


def _cpu(proc: psutil.Process) -> float:
    try:
        return proc.cpu_percent(None)
    except psutil.Error:
        return 0.0


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts) if total // parts or i < total]


def wait_for_quiet(max_other_cores: float, max_wait_s: float) -> dict[str, Any]:
    """Waits (up to ``max_wait_s``) until other processes use less than ``max_other_cores`` of the CPU.

    The machine may be shared; a benchmark started while others compile or test measures them, not us.
    Returns the load seen when the run started and whether it was quiet.
    """
    started = time.monotonic()
    while True:
        busy = psutil.cpu_percent(interval=2.0) / 100 * (os.cpu_count() or 1)
        waited = time.monotonic() - started
        if busy <= max_other_cores or waited >= max_wait_s:
            return {"other_cores_busy_at_start": round(busy, 2), "waited_s": round(waited, 1),
                    "quiet": busy <= max_other_cores}


def start_clients(url: str, games: int, args: argparse.Namespace, workdir: Path, clients: list[ClientProc],
                  label: str = "") -> None:
    """Starts the client processes for ``games`` games and waits until every one printed ``READY``.

    Appends to ``clients`` as it goes, so the caller's cleanup stops those already started if one fails.

    Args:
        url: Where the clients connect. games: Games' worth of clients (two each).
        args: ``fps``, ``key_interval``, ``duration`` and ``client_procs`` (0: one process per 100 games).
        workdir: Where their logs go (``clients_<label or games>_<index>.log``).
        clients: Filled with the started processes.
        label: Names the logs (default: the game count).

    Raises:
        RuntimeError: a process did not connect its clients.
    """
    procs = args.client_procs or max(1, math.ceil(games / 100))
    for index, pairs in enumerate(_split(games, procs)):
        cmd = [sys.executable, str(HERE / "server_capacity_clients.py"), "--url", url, "--pairs", str(pairs),
               "--fps", str(args.fps), "--id-prefix", f"p{index}c", "--seed", str(index + 1),
               "--key-interval", str(args.key_interval),
               "--timeout", str(args.duration * 4 + 60)]
        proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=(workdir / f"clients_{label or games}_{index}.log").open("w"), text=True)
        clients.append(ClientProc(proc))
        clients[-1].start_reader()
    for client in clients:
        if not client.ready.wait(timeout=120) or client.proc.poll() is not None:
            raise RuntimeError(f"a client process did not connect its clients (see {workdir})")


def send_go(clients: list[ClientProc]) -> None:
    """Tells every client process to join its games now (all games start within a moment)."""
    for client in clients:
        assert client.proc.stdin is not None
        client.proc.stdin.write("GO\n")
        client.proc.stdin.flush()


def run_size(games: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Runs ``games`` concurrent games against a fresh server; returns this size's figures."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # A fresh database per run: the clients' participant ids repeat between runs of a size, and a database that
    # already holds them refuses them (their resume secrets are not these clients').
    run = next(i for i in itertools.count(1) if not (workdir / f"capacity_{games}_run{i}.sqlite").exists())
    db = workdir / f"capacity_{games}_run{run}.sqlite"
    stats_file = workdir / f"server_stats_{games}_run{run}.json"
    profile_file = workdir / f"server_{games}.pstats" if args.profile else None
    spy_file = workdir / f"server_{games}.pyspy.txt" if args.py_spy else None
    spy = None
    max_steps = args.fps * args.duration
    server_cmd = [sys.executable, str(HERE / "server_capacity_server.py"), "--port", str(port), "--db", str(db),
                  "--fps", str(args.fps), "--max-steps", str(max_steps), "--stats-out", str(stats_file)]
    server_cmd += ["--loop", args.loop, "--ws", args.ws, "--env", args.env]
    if args.gc_freeze:
        server_cmd.append("--gc-freeze")
    server_cmd += ["--gc-threshold0", str(args.gc_threshold0)]
    if profile_file:
        server_cmd += ["--profile", str(profile_file)]
    server_log = (workdir / f"server_{games}.log").open("w")
    server = subprocess.Popen(server_cmd, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT)
    clients: list[ClientProc] = []
    try:
        wait_healthy(url, server)
        server_ps = psutil.Process(server.pid)
        rss_idle = server_ps.memory_info().rss
        setup_started = time.monotonic()
        start_clients(url, games, args, workdir, clients)
        setup_s = time.monotonic() - setup_started
        client_ps = [psutil.Process(c.proc.pid) for c in clients]
        for counted in (server_ps, *client_ps):  # the first call starts each CPU counter
            _cpu(counted)
        psutil.cpu_percent(None)
        server_times_go = server_ps.cpu_times()
        spy = start_recording(server.pid, max(2, args.duration - 2), spy_file) if spy_file else None
        send_go(clients)
        server_cpu: list[tuple[float, float]] = []
        client_cpu: list[tuple[float, float]] = []
        total_cpu: list[tuple[float, float]] = []
        rss: list[tuple[float, float]] = []
        while any(c.proc.poll() is None for c in clients):
            time.sleep(SAMPLE_S)
            now = time.monotonic()
            server_cpu.append((now, _cpu(server_ps)))
            client_cpu.append((now, sum(_cpu(p) for p in client_ps)))
            total_cpu.append((now, psutil.cpu_percent(None) * (os.cpu_count() or 1)))
            with contextlib.suppress(psutil.Error):
                rss.append((now, server_ps.memory_info().rss / 2**20))
        server_times_end = server_ps.cpu_times()
        results = [c.result() for c in clients]
    finally:
        if spy is not None:
            spy.wait(timeout=args.duration + 30)
        for client in clients:
            if client.proc.poll() is None:
                client.proc.kill()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
    per_client = [c for r in results for c in r["clients"]]
    server_stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    with Storage(db, readonly=True) as storage:
        episodes = [{"status": e.status, "started_at": e.started_at, "ended_at": e.ended_at, "meta": e.meta}
                    for e in storage.episodes()]
    figures = summarise(games, args, per_client, episodes, server_cpu, client_cpu, total_cpu, rss)
    cpu_s = sum(server_times_end[:2]) - sum(server_times_go[:2])  # user + system, all threads
    ticks = figures["server_tick_lateness"].get("ticks") or 0
    if ticks:
        # CPU per game tick does not depend on how much of the machine others use, unlike the rates above.
        per_tick_ms = 1000 * cpu_s / ticks
        figures["server_cpu_ms_per_game_tick"] = round(per_tick_ms, 3)
        figures["projected_games_per_core_at_fps"] = round(1000 / (per_tick_ms * args.fps), 1)
        figures["server_cpu_system_share"] = round((server_times_end.system - server_times_go.system)
                                                   / max(cpu_s, 1e-9), 2)
    figures.update(setup_s=round(setup_s, 2), client_processes=len(clients),
                   server_rss_idle_mb=round(rss_idle / 2**20, 1),
                   tcp_nodelay=server_stats.get("tcp_nodelay"), rejected_events=server_stats.get("rejected_events"),
                   server_gc=server_stats.get("gc"))
    if spy_file and spy_file.exists():
        figures["py_spy"] = summarise_collapsed(spy_file.read_text(), args.profile_lines)
    if profile_file and profile_file.exists():
        figures["profile_top"] = profile_top(profile_file, args.profile_lines)
        figures["profile_file"] = str(profile_file)
    return figures


def summarise(games: int, args: argparse.Namespace, per_client: list[dict[str, Any]],
              episodes: list[dict[str, Any]], server_cpu: list[tuple[float, float]],
              client_cpu: list[tuple[float, float]], total_cpu: list[tuple[float, float]],
              rss: list[tuple[float, float]]) -> dict[str, Any]:
    """The per-size JSON block; CPU and memory are averaged over the window when every game was running."""
    firsts = [c["first_arrival"] for c in per_client if c["first_arrival"] is not None]
    lasts = [c["last_arrival"] for c in per_client if c["last_arrival"] is not None]
    start, end = (max(firsts), min(lasts)) if firsts and lasts else (0.0, 0.0)
    if end - start < 1.0:  # games too staggered for a common window: use the whole run
        start, end = -math.inf, math.inf
    db_rates = episode_rates(episodes)
    client_rates = [c["rate"] for c in per_client if c["rate"]]
    lateness = server_lateness(episodes)
    packet_rates = [c["packets"] / (c["last_arrival"] - c["first_arrival"]) for c in per_client
                    if c["packets"] > 1 and c["last_arrival"] > c["first_arrival"]]
    sizes = [b for c in per_client for b in c["payload_bytes"]]
    server_mean = window_mean(server_cpu, start, end)
    client_mean = window_mean(client_cpu, start, end)
    total_mean = window_mean(total_cpu, start, end)
    rate_spread = spread(db_rates)
    target = {
        "mean_game_rate_at_least": round(TARGET_MEAN_RATE * args.fps / 30, 2),
        "min_game_rate_at_least": round(TARGET_RATE_FRACTION * args.fps, 2),
        "p99_lateness_below_ms": TARGET_P99_MS,
    }
    # This run alone; the verdict for the size needs every one of at least three runs (see report_size).
    target["met_this_run"] = bool(
        db_rates and len(db_rates) == games and rate_spread["mean"] >= target["mean_game_rate_at_least"]
        and rate_spread["min"] >= target["min_game_rate_at_least"] and not lateness.get("skipped")
        and lateness.get("p99_ms_median_game", math.inf) < TARGET_P99_MS)
    return {
        "games": games,
        "clients": len(per_client),
        "episodes_complete": sum(e["status"] == "complete" for e in episodes),
        "clients_without_game_over": sum(not c["game_over"] for c in per_client),
        "client_errors": sum(len(c["errors"]) for c in per_client),
        "client_error_examples": sorted({e for c in per_client for e in c["errors"]})[:5],
        "fps_target": args.fps,
        "tick_rate_db": rate_spread,
        "tick_rate_client": spread(client_rates),
        "server_tick_lateness": lateness,
        "client_delivery_lateness": distribution_ms([v for c in per_client for v in c["lateness"]]),
        "client_inter_arrival_jitter": distribution_ms([v for c in per_client for v in c["jitter"]]),
        "steady_window_s": round(end - start, 2) if math.isfinite(end - start) else None,
        "server_cpu_pct_one_core": round(server_mean, 1),
        "server_cpu_pct_peak": round(max((v for _, v in server_cpu), default=math.nan), 1),
        "server_rss_mb": round(max((v for t, v in rss if start <= t <= end), default=math.nan), 1),
        "client_cpu_pct_one_core": round(client_mean, 1),
        "other_cpu_pct_one_core": round(max(0.0, total_mean - server_mean - client_mean), 1),
        "render_packets_per_client_s": spread(packet_rates),
        "render_payload_bytes_mean": round(sum(sizes) / len(sizes)) if sizes else None,
        # Between each client's first and last key (the game's start countdown sends none).
        "keys_sent_per_client_s": round(sum(c["keys_sent"] - 1 for c in per_client if c.get("key_span_s"))
                                        / max(1e-9, sum(c["key_span_s"] for c in per_client
                                                        if c.get("key_span_s"))), 2),
        "key_interval_s": args.key_interval,
        "target": target,
    }


def profile_top(path: Path, lines: int) -> list[dict[str, Any]]:
    """The functions with the most own time in a cProfile dump, with their cumulative time."""
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, name), (_, calls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({name})", "calls": calls,
                     "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)})
    total = sum(r["tottime_s"] for r in rows) or 1.0
    rows.sort(key=lambda r: r["tottime_s"], reverse=True)
    for row in rows:
        row["tottime_pct"] = round(100 * row["tottime_s"] / total, 1)
    return rows[:lines]


# The headline figures summarised over runs: label -> how to read it from one run's block.
HEADLINE: dict[str, Any] = {
    "tick_rate_mean": lambda r: r["tick_rate_db"].get("mean"),
    "tick_rate_min": lambda r: r["tick_rate_db"].get("min"),
    "skipped_ticks": lambda r: r["server_tick_lateness"].get("skipped"),
    "lateness_p50_ms": lambda r: r["server_tick_lateness"].get("p50_ms_median_game"),
    "lateness_p99_ms": lambda r: r["server_tick_lateness"].get("p99_ms_median_game"),
    "lateness_p99_ms_worst_game": lambda r: r["server_tick_lateness"].get("p99_ms_worst_game"),
    "server_cpu_pct_one_core": lambda r: r.get("server_cpu_pct_one_core"),
    "server_cpu_ms_per_game_tick": lambda r: r.get("server_cpu_ms_per_game_tick"),
    "server_rss_mb": lambda r: r.get("server_rss_mb"),
    "client_cpu_pct_one_core": lambda r: r.get("client_cpu_pct_one_core"),
    "other_cpu_pct_one_core": lambda r: r.get("other_cpu_pct_one_core"),
    "client_delivery_p99_ms": lambda r: r["client_delivery_lateness"].get("p99_ms"),
    "gc_pause_max_ms": lambda r: max((g.get("max_ms", 0.0) for k, g in (r.get("server_gc") or {}).items()
                                      if k.startswith("gen")), default=None),
    "gc_pause_total_ms": lambda r: sum(g.get("total_ms", 0.0) for k, g in (r.get("server_gc") or {}).items()
                                       if k.startswith("gen")) if r.get("server_gc") else None,
}


def report_size(games: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One size over its runs: median and range of each headline figure, and the verdict (>= 3 runs, all met)."""
    return {
        "games": games,
        "runs": len(runs),
        "figures": {name: across_runs([read(r) for r in runs]) for name, read in HEADLINE.items()},
        "target": {**{k: v for k, v in runs[0]["target"].items() if k != "met_this_run"},
                   **verdict([r["target"]["met_this_run"] for r in runs])},
    }


def _cell(figure: dict[str, Any]) -> str:
    if figure["median"] is None:
        return "-"
    if figure["n"] == 1 or figure["min"] == figure["max"]:
        return f"{figure['median']:g}"
    return f"{figure['median']:g} ({figure['min']:g}-{figure['max']:g})"


def markdown_table(summary: list[dict[str, Any]], fps: int) -> str:
    """The README table: one row per size, medians over the runs with the range in brackets."""
    columns = [("tick rate mean", "tick_rate_mean"), ("tick rate min", "tick_rate_min"),
               ("skipped ticks", "skipped_ticks"), ("lateness p50 ms", "lateness_p50_ms"),
               ("lateness p99 ms", "lateness_p99_ms"), ("worst game p99 ms", "lateness_p99_ms_worst_game"),
               ("server CPU % of a core", "server_cpu_pct_one_core"),
               ("server CPU ms per game tick", "server_cpu_ms_per_game_tick"), ("server RSS MB", "server_rss_mb"),
               ("client CPU %", "client_cpu_pct_one_core"), ("other load %", "other_cpu_pct_one_core")]
    rows = [f"| games | runs | {' | '.join(label for label, _ in columns)} | target met (fps {fps}) |",
            "|" + "---|" * (len(columns) + 3)]
    for size in summary:
        target = size["target"]
        met = "refused (< 3 runs)" if target["met"] is None else ("yes" if target["met"] else
                                                                  f"no ({target['runs_met']}/{target['runs']})")
        cells = " | ".join(_cell(size["figures"][key]) for _, key in columns)
        rows.append(f"| {size['games']} | {size['runs']} | {cells} | {met} |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Concurrent server-mode games at a fixed tick rate.")
    parser.add_argument("--sizes", default="10,50,100,150", help="comma-separated game counts")
    parser.add_argument("--duration", type=int, default=20, help="seconds of game time per size")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--env", choices=sorted(ENVS), default="demo",
                        help="demo: Fruit Gatherers (list observations); grid: CoinGrid (dict observations)")
    parser.add_argument("--key-interval", type=float, default=0.1,
                        help="mean seconds between a participant's key changes (0.1: a fast game; 0.3: a calm one)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs of every size (median and range reported; a verdict needs at least 3)")
    parser.add_argument("--out", type=Path, default=None,
                        help="raw JSON file (default benchmarks/results/server_capacity_<env>.json)")
    parser.add_argument("--client-procs", type=int, default=0,
                        help="client processes (default: one per 100 games)")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop",
                        help="the server's event loop (default: what `interactive-gym run` serves with)")
    parser.add_argument("--ws", choices=["wsproto", "websockets", "websockets-sansio"], default="websockets-sansio",
                        help="uvicorn's WebSocket implementation (default: as `interactive-gym run`, tools/run.py FAST_PATHS)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="the server calls gc.freeze() before serving (to measure GC pauses without it)")
    parser.add_argument("--gc-threshold0", type=int, default=YOUNG_GC_THRESHOLD,
                        help="the server's young-generation GC threshold (default: the app's, app.py)")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait for a quiet machine before each size (0: do not wait)")
    parser.add_argument("--max-other-cores", type=float, default=0.3,
                        help="CPU (in cores) other processes may use for the machine to count as quiet")
    parser.add_argument("--quick", action="store_true", help="N = 2 for 5 s: a smoke run for CI")
    parser.add_argument("--profile", action="store_true", help="run the server under cProfile; report top costs")
    parser.add_argument("--py-spy", action="store_true",
                        help="sample the server with py-spy (pip install py-spy); report cost buckets")
    parser.add_argument("--profile-lines", type=int, default=25)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (databases, logs)")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.duration, args.quiet_wait, args.runs = "2", 5, 0.0, 1
    try:
        args.size_list = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, got {args.sizes!r}")
    if not args.size_list or min(args.size_list) < 1:
        parser.error("--sizes needs at least one game count >= 1")
    if args.duration < 1 or args.fps < 1 or args.client_procs < 0:
        parser.error("--duration and --fps must be >= 1 and --client-procs >= 0")
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    if not 0.005 <= args.key_interval <= 60:
        parser.error(f"--key-interval must be from 0.005 to 60 seconds, got {args.key_interval}")
    if args.out is None:
        args.out = RESULTS / f"server_capacity_{args.env}.json"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = bench_env(args.env)
    report: dict[str, Any] = {"benchmark": "server_capacity", "machine": machine(),
                              "settings": {"duration_s": args.duration, "fps": args.fps, "sizes": args.size_list,
                                           "runs": args.runs, "env": env.description,
                                           "key_interval_s": args.key_interval,
                                           "players_per_game": 2, "server_loop": args.loop, "server_ws": args.ws,
                                           "server_gc_freeze": args.gc_freeze,
                                           "server_gc_threshold0": args.gc_threshold0,
                                           "clients": "python-socketio AsyncClient, websocket transport, "
                                                      "in their own processes"},
                              "summary": [], "runs": []}
    workdir = Path(tempfile.mkdtemp(prefix="ig_capacity_"))
    per_size: dict[int, list[dict[str, Any]]] = {games: [] for games in args.size_list}
    try:
        for run in range(args.runs):  # every size once, then again: a disturbance hits one run of each
            for games in args.size_list:
                load = wait_for_quiet(args.max_other_cores, args.quiet_wait) if args.quiet_wait > 0 else {}
                print(f"server_capacity: run {run + 1}/{args.runs}, {games} games of {args.env} for "
                      f"{args.duration} s ...", file=sys.stderr, flush=True)
                before = load_average()
                result = {**run_size(games, args, workdir), "run": run + 1, "machine_load": load,
                          "load_avg_before": before, "load_avg_after": load_average()}
                report["runs"].append(result)
                per_size[games].append(result)
    finally:
        report["machine"]["load_avg_at_end"] = load_average()
        if args.keep or args.profile or args.py_spy:
            print(f"server_capacity: files kept in {workdir}", file=sys.stderr)
        else:
            for item in workdir.iterdir():
                item.unlink()
            workdir.rmdir()
    report["summary"] = [report_size(games, runs) for games, runs in per_size.items() if runs]
    text = json.dumps(report, indent=2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    print(f"server_capacity: raw JSON in {args.out}", file=sys.stderr)
    print(markdown_table(report["summary"], args.fps), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
