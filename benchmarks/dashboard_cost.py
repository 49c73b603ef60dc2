"""What an open dashboard costs the server: 100 server-mode games with and without one dashboard receiving the
live push, in alternating blocks of one run, over several runs.

Each run starts a fresh experiment server (``server_capacity_server.py``) and ``2 N`` simulated participants
(``server_capacity_clients.py``, a key every ``--key-interval`` s), as the capacity benchmark does. While the
games run, blocks of ``--block`` seconds alternate: no dashboard, then one dashboard client (a python-socketio
client logged in with the password, connected to the ``/admin`` namespace, receiving every push).

Two figures per open block:

* ``push_share_pct`` (the headline): the CPU the server's pushes cost, counted by the server where it is spent
  (reading new rows, building and encoding the view; ``push_cpu_s`` in every snapshot), as a share of the server
  process's CPU (user + system, from the kernel) in the same block. Both are CPU time, so a busy machine does not
  change the ratio; not counted is the websocket write of the one frame per second. A starved event loop pushes
  less often than once a second, so ``share_at_one_push_per_s_pct`` also gives the share at the nominal rate (CPU
  per push over the server's CPU per second).
* ``overhead_pct``: server CPU per game tick with the dashboard open vs closed (on / off - 1). It includes
  everything, but on a shared machine the blocks' tick counts differ and key events do not scale with ticks, so
  it swings by more than the figure it is after; it is kept as a cross-check.

Prints JSON (and writes it with ``--out``) with per-block figures, the load average before and after, the machine.

Usage (under the benchmark lock: the machine is shared)::

    flock /tmp/ig-bench.lock .venv/bin/python benchmarks/dashboard_cost.py --out benchmarks/results/dashboard_cost.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import socketio
from server_capacity import ClientProc, free_port, machine, wait_healthy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PASSWORD = "dashboard-cost-benchmark"


class DashboardClient:
    """One open dashboard: logs in, connects to ``/admin`` and counts the snapshots pushed to it (own thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.snapshots = 0
        self.last_bytes = 0
        self.push_cpu_s = 0.0  # the server's own count of the CPU its pushes cost, from the latest snapshot
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._client: socketio.AsyncClient | None = None
        self.cookie = ""

    def login(self) -> None:
        """Logs in once, before the games start (a saturated server answers HTTP slowly)."""
        self.cookie = self._cookie()

    def _cookie(self) -> str:
        request = urllib.request.Request(self.url + "/admin/login", data=json.dumps({"password": PASSWORD}).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            return str(response.headers["Set-Cookie"]).split(";")[0]

    def open(self) -> None:
        cookie = self.cookie

        async def connect() -> None:
            # A busy server can take longer than the client's defaults (5 s handshake, 1 s namespace answer).
            client = socketio.AsyncClient(reconnection=False, handle_sigint=False, request_timeout=30)

            def received(data: Any) -> None:
                self.snapshots += 1
                self.last_bytes = len(json.dumps(data))
                self.push_cpu_s = float(data.get("push_cpu_s", 0.0))
            client.on("snapshot", received, namespace="/admin")
            await client.connect(self.url, namespaces=["/admin"], headers={"Cookie": cookie},
                                 transports=["websocket"], wait_timeout=30)
            self._client = client

        asyncio.run_coroutine_threadsafe(connect(), self._loop).result(timeout=60)

    def close(self) -> None:
        client = self._client
        if client is not None:
            asyncio.run_coroutine_threadsafe(client.disconnect(), self._loop).result(timeout=20)
            self._client = None

    def stop(self) -> None:
        self.close()
        self._loop.call_soon_threadsafe(self._loop.stop)


def steps_stored(db: Path) -> int:
    with sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, timeout=10) as con:
        return int(con.execute("SELECT COUNT(*) FROM steps").fetchone()[0])


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def one_run(index: int, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    db = workdir / f"run{index}.sqlite"
    duration = args.warmup + args.block * args.blocks * 2 + 20
    env = {**os.environ, "INTERACTIVE_GYM_ADMIN_PASSWORD": PASSWORD}
    server_cmd = [sys.executable, str(HERE / "server_capacity_server.py"), "--port", str(port), "--db", str(db),
                  "--fps", str(args.fps), "--max-steps", str(int(args.fps * duration))]
    server_log = (workdir / f"server{index}.log").open("w")
    server = subprocess.Popen(server_cmd, cwd=ROOT, stdout=server_log, stderr=subprocess.STDOUT, env=env)
    clients: list[ClientProc] = []
    dashboard = None
    blocks: list[dict[str, Any]] = []
    try:
        wait_healthy(url, server)
        server_ps = psutil.Process(server.pid)
        dashboard = DashboardClient(url)
        dashboard.login()
        per_proc = [args.games // 2 + args.games % 2, args.games // 2]
        for n, pairs in enumerate(p for p in per_proc if p):
            cmd = [sys.executable, str(HERE / "server_capacity_clients.py"), "--url", url, "--pairs", str(pairs),
                   "--fps", str(args.fps), "--id-prefix", f"r{index}p{n}c", "--seed", str(n + 1),
                   "--key-interval", str(args.key_interval),
                   "--timeout", str(int(duration * 4 + 60))]
            proc = subprocess.Popen(cmd, cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=(workdir / f"clients{index}_{n}.log").open("w"), text=True)
            clients.append(ClientProc(proc))
            clients[-1].start_reader()
        for client in clients:
            if not client.ready.wait(timeout=180) or client.proc.poll() is not None:
                raise RuntimeError(f"a client process did not connect its clients (see {workdir})")
        for client in clients:
            assert client.proc.stdin is not None
            client.proc.stdin.write("GO\n")
            client.proc.stdin.flush()
        time.sleep(args.warmup)
        for block in range(args.blocks * 2):
            on = block % 2 == 1
            if on:
                dashboard.open()
                time.sleep(1.5)  # the first push (with the history) is not part of the steady cost
            pushes_before, push_cpu_before = dashboard.snapshots, dashboard.push_cpu_s
            cpu_before, steps_before, t_before = cpu_seconds(server_ps), steps_stored(db), time.monotonic()
            time.sleep(args.block)
            cpu_after, steps_after, t_after = cpu_seconds(server_ps), steps_stored(db), time.monotonic()
            ticks = steps_after - steps_before
            push_cpu = dashboard.push_cpu_s - push_cpu_before if on else 0.0
            blocks.append({"dashboard": on, "seconds": round(t_after - t_before, 3),
                           "server_cpu_s": round(cpu_after - cpu_before, 4), "ticks": ticks,
                           "cpu_ms_per_tick": round((cpu_after - cpu_before) * 1000 / ticks, 5) if ticks else None,
                           "pushes_received": dashboard.snapshots - pushes_before,
                           "push_cpu_s": round(push_cpu, 5),
                           "push_share_pct": round(push_cpu * 100 / (cpu_after - cpu_before), 3) if on else None,
                           # A starved loop pushes less often than once a second: the share at the nominal rate.
                           "share_at_one_push_per_s_pct": round(
                               push_cpu / pushes * 100 / ((cpu_after - cpu_before) / (t_after - t_before)), 3)
                           if on and (pushes := dashboard.snapshots - pushes_before) else None,
                           "push_bytes": dashboard.last_bytes if on else 0})
            if on:
                dashboard.close()
    finally:
        if dashboard is not None:
            dashboard.stop()
        for client in clients:
            if client.proc.poll() is None:
                client.proc.kill()
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        server_log.close()
    off = [b["cpu_ms_per_tick"] for b in blocks if not b["dashboard"] and b["cpu_ms_per_tick"]]
    on = [b["cpu_ms_per_tick"] for b in blocks if b["dashboard"] and b["cpu_ms_per_tick"]]
    shares = [b["push_share_pct"] for b in blocks if b["dashboard"] and b["push_share_pct"] is not None]
    nominal = [b["share_at_one_push_per_s_pct"] for b in blocks if b.get("share_at_one_push_per_s_pct") is not None]
    return {"run": index, "blocks": blocks, "push_share_pct": round(statistics.mean(shares), 3),
            "share_at_one_push_per_s_pct": round(statistics.mean(nominal), 3),
            "off_cpu_ms_per_tick": round(statistics.mean(off), 5),
            "on_cpu_ms_per_tick": round(statistics.mean(on), 5),
            "overhead_pct": round((statistics.mean(on) / statistics.mean(off) - 1) * 100, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--key-interval", type=float, default=0.3,
                        help="seconds between a client's keys (0.3: a human pace that leaves the server unsaturated, "
                             "so CPU per tick is not capped by the core)")
    parser.add_argument("--blocks", type=int, default=3, help="pairs of (off, on) blocks per run")
    parser.add_argument("--block", type=float, default=8.0, help="seconds per block")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ig-dashboard-cost-") as tmp:
        runs = [one_run(i, args, Path(tmp)) for i in range(args.runs)]
    overheads = [r["overhead_pct"] for r in runs]
    shares = [r["push_share_pct"] for r in runs]
    nominal = [r["share_at_one_push_per_s_pct"] for r in runs]
    result = {
        "benchmark": "dashboard_cost",
        "command": "flock /tmp/ig-bench.lock .venv/bin/python benchmarks/dashboard_cost.py " + " ".join(argv or sys.argv[1:]),
        "games": args.games, "fps": args.fps, "key_interval_s": args.key_interval, "block_s": args.block, "blocks_per_run": args.blocks * 2,
        "target_overhead_pct": 3.0,
        # The headline: CPU the server's pushes cost (counted by the server where it is spent) as a share of the
        # server process's CPU in the same blocks. Insensitive to how busy the machine is.
        "push_share_pct": {"per_run": shares, "median": round(statistics.median(shares), 3), "min": min(shares),
                           "max": max(shares)},
        "share_at_one_push_per_s_pct": {"per_run": nominal, "median": round(statistics.median(nominal), 3),
                                        "min": min(nominal), "max": max(nominal)},
        "overhead_pct": {"per_run": overheads, "median": round(statistics.median(overheads), 2),
                         "min": min(overheads), "max": max(overheads)},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": machine(),
        "runs": runs,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
