"""The server side of the capacity benchmark: one experiment server, alone in its own process.

Run by ``server_capacity.py`` (not by hand, though it works: ``python benchmarks/server_capacity_server.py
--port 8765 --db /tmp/cap.sqlite``). The experiment is two humans playing one of the benchmark envs
(``--env``: ``demo`` Fruit Gatherers, ``grid`` CoinGrid; see ``server_capacity_envs.py``) in server mode,
with no consent page, so simulated clients can join the game at once. Running the server in its own process
lets the orchestrator measure the server's CPU and memory alone.

On SIGINT/SIGTERM uvicorn shuts down gracefully (the data writer commits everything) and, with
``--stats-out``, a JSON file records whether the server's accepted sockets had TCP_NODELAY set, the number
of rejected client events, and every garbage collection's pause (count, total and longest per generation:
a suspect for the p99 tick lateness). ``--gc-freeze`` moves everything allocated before serving into the
permanent generation (``gc.freeze()``), to measure what that does to the pauses. With ``--profile`` the whole server runs under cProfile and the stats are
dumped to that path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_capacity_envs import ENVS, bench_env  # noqa: E402

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager  # noqa: E402
from interactive_gym.server.app import YOUNG_GC_THRESHOLD, create_app  # noqa: E402

SCENE_ID = "capacity_pair"


def capacity_stager(fps: int, max_steps: int, env: str = "demo") -> Stager:
    """Two humans, one server-mode game scene, then the end; long waits so slow joins never time out.

    Shared with ``workers_capacity_experiment.py``, so both benchmarks serve the same game.
    """
    bench = bench_env(env)
    width, height = bench.size
    game = GymScene(
        SCENE_ID,
        title="Capacity benchmark",
        env_creator=bench.make_env,
        render_fn=bench.render,
        width=width,
        height=height,
        controls=bench.controls,
        default_action=bench.default_action,
        policy_mapping={"agent_0": "human", "agent_1": "human"},
        fps=fps,
        max_steps=max_steps,
        waiting_room_timeout_s=3600.0,
        disconnect_grace_s=60.0,
    )
    return Stager([game, EndScene("end", completion_code="CAPACITY")])


def build_config(port: int, db: Path, fps: int, max_steps: int, env: str = "demo") -> RemoteConfig:
    """The benchmark experiment (:func:`capacity_stager`) served on ``port`` with its data in ``db``."""
    stager = capacity_stager(fps, max_steps, env)
    config = RemoteConfig().hosting("127.0.0.1", port).experiment("server_capacity", stager=stager, db=db)
    config.validate()
    return config


def nodelay_of_connections(port: int) -> dict[str, Any]:
    """Reads TCP_NODELAY on every established socket of this process that was accepted on ``port``.

    Asks the socket itself (``getsockopt`` on a duplicate of its file descriptor, which shares the option),
    so the answer is what the kernel applies, not what some library intended.
    """
    checked = enabled = 0
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.status != psutil.CONN_ESTABLISHED or not conn.laddr or conn.laddr.port != port or conn.fd < 0:
            continue
        probe = socket.socket(fileno=os.dup(conn.fd))
        try:
            checked += 1
            enabled += bool(probe.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        finally:
            probe.close()
    return {"sockets_checked": checked, "sockets_with_nodelay": enabled}


async def _watch_nodelay(port: int, result: dict[str, Any]) -> None:
    """Checks TCP_NODELAY once clients are connected (polls cheaply until some are)."""
    while True:
        await asyncio.sleep(1.0)
        found = nodelay_of_connections(port)
        if found["sockets_checked"]:
            result.update(found)
            return


async def serve(config: RemoteConfig, stats: dict[str, Any], ws: str, gc_threshold0: int) -> None:
    app = create_app(config, young_gc_threshold=gc_threshold0)
    server = uvicorn.Server(uvicorn.Config(app.asgi, host=config.host, port=config.port, log_level="warning",
                                           access_log=False, lifespan="on", ws=ws))
    watcher = asyncio.create_task(_watch_nodelay(config.port, stats.setdefault("tcp_nodelay", {})))
    try:
        await server.serve()
    finally:
        watcher.cancel()
        stats["rejected_events"] = dict(app.server.flow.rejections)
        stats["games_started"] = app.server.server_mode.games_started


class GcPauses:
    """Garbage collections per generation and their pauses, from ``gc.callbacks`` (wall time, seconds)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def summary(self) -> dict[str, Any]:
        return {f"gen{g}": {"collections": len(p), "total_ms": round(1000 * sum(p), 2),
                            "max_ms": round(1000 * max(p, default=0.0), 3),
                            "over_5ms": sum(v > 0.005 for v in p)} for g, p in self.pauses.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file for the benchmark's data")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--env", choices=sorted(ENVS), default="demo", help="the game's environment")
    parser.add_argument("--stats-out", type=Path, help="JSON file written at shutdown")
    parser.add_argument("--profile", type=Path, help="run under cProfile and dump the stats here")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop",
                        help="event loop (default: as `interactive-gym run`)")
    parser.add_argument("--ws", choices=["wsproto", "websockets", "websockets-sansio"], default="websockets-sansio",
                        help="uvicorn's WebSocket implementation (explicit: 'auto' depends on what is installed; default as `run`)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() before serving: start-up objects are never scanned again")
    parser.add_argument("--gc-threshold0", type=int, default=YOUNG_GC_THRESHOLD,
                        help="the collector's first threshold while serving (default: the app's)")
    args = parser.parse_args(argv)
    config = build_config(args.port, args.db, args.fps, args.max_steps, args.env)
    stats: dict[str, Any] = {}
    pauses = GcPauses()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    gc.callbacks.append(pauses)
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    try:
        if args.loop == "uvloop":
            import uvloop

            uvloop.run(serve(config, stats, args.ws, args.gc_threshold0))
        else:
            asyncio.run(serve(config, stats, args.ws, args.gc_threshold0))
    except KeyboardInterrupt:
        pass  # uvicorn re-raises the SIGINT it handled, after its graceful shutdown
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        gc.callbacks.remove(pauses)
        stats["gc"] = {**pauses.summary(), "frozen_objects": gc.get_freeze_count()}
        if args.stats_out:
            args.stats_out.write_text(json.dumps(stats), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
