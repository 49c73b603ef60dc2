"""Main-thread long tasks while a game preloads, the first frame after "start", and frame pacing on screen.

Headless Chromium with a profile on disk (a participant's browser: an HTTP cache on disk), the demo environment
and the ONNX partner of ``benchmarks/browser_mode.py``. Each run uses a fresh profile (empty cache):

* ``preload``: the page preloads while the participant reads the instructions; the longest main-thread task in
  that time (``PerformanceObserver`` ``longtask``; target: under 50 ms), how many tasks of 50 ms or more, and
  the blocking time (the part of each beyond 50 ms). Modes (``--modes``, run alternately):
  ``worker-game``: today's ``preloadBrowserGame`` with the preload the server sends (``{pyodide, agents}``):
  the game's Worker starts Pyodide and the ONNX session, and the game then runs in that Worker;
  ``worker-warm-up``: the previous release (files downloaded in a Worker, the interpreter started in the page
  when the game begins); ``page``: the release before (the interpreter, Phaser and onnxruntime-web started in
  the page during the instructions).
* ``first_frame_after_start_ms``: "start" (the participant's Continue) -> first game frame, with the same
  preload; and the longest task in that time (target: every task under 50 ms on every page).
* ``pacing``: after the first frame, ``play_ms`` of play at 30 fps: intervals between animation frames that
  showed a new packet (p50 / p99 / max; 33.3 ms is smooth at 30 fps), packets coalesced (never on screen),
  and the longest main-thread task while playing.

Usage: ``.venv/bin/python benchmarks/no_frozen_pages.py [--runs 3] [--read-ms 4000] [--play-ms 6000]
[--modes worker-game,worker-warm-up] [--out benchmarks/results/no_frozen_pages.json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from browser_mode import CHROMIUM_ARGS, machine, make_app, scene_configs
from playwright.sync_api import sync_playwright

MODES = ("worker-game", "worker-warm-up", "page")


def run_once(p: Any, url: str, timeout_ms: int = 180_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as profile:
        context = p.chromium.launch_persistent_context(profile, executable_path="/usr/bin/chromium",
                                                       args=CHROMIUM_ARGS)
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("window.result !== undefined", timeout=timeout_ms)
            result = page.evaluate("window.result")
        finally:
            context.close()
    if "error" in result:
        raise RuntimeError(f"{url}: {result['error']}")
    stats = result.pop("stats", None) or {}
    # Where the game page's start went: the renderer (Phaser) and the Python side load in parallel.
    result["gameStart"] = {name: round(stats[name]) for name in ("rendererMs", "runtimeMs") if name in stats}
    result.pop("clickedAt", None)
    return result


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    values = []
    for run in runs:
        value: Any = run
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "preload_longest_task_ms": median_of(runs, "preload", "longest_ms"),
        "preload_blocking_ms": median_of(runs, "preload", "blocking_ms"),
        "preload_ms": median_of(runs, "preload", "ms"),
        "first_frame_after_start_ms": median_of(runs, "firstFrameAfterStartMs"),
        "game_load_longest_task_ms": median_of(runs, "gameLoad", "longest_ms"),
        "game_load_blocking_ms": median_of(runs, "gameLoad", "blocking_ms"),
        "pacing_p50_ms": median_of(runs, "pacing", "p50_ms"),
        "pacing_p99_ms": median_of(runs, "pacing", "p99_ms"),
        "pacing_max_ms": median_of(runs, "pacing", "max_ms"),
        "coalesced_packets": median_of(runs, "pacing", "coalesced"),
        "play_longest_task_ms": median_of(runs, "play", "longest_ms"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--read-ms", type=int, default=4000, help="time on the instructions page")
    parser.add_argument("--play-ms", type=int, default=6000, help="time played for the frame pacing")
    parser.add_argument("--modes", default="worker-game,worker-warm-up",
                        help="comma-separated, from worker-game, worker-warm-up, page")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not modes or set(modes) - set(MODES):
        parser.error(f"--modes takes names from {', '.join(MODES)}")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        configs, registry = scene_configs(Path(tmp))
        server = uvicorn.Server(uvicorn.Config(make_app(configs, registry), host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = (f"http://127.0.0.1:{port}/bench-pages/bench_preload.html?config=/bench-config/onnx"
                f"&read_ms={args.read_ms}&play_ms={args.play_ms}")
        runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        with sync_playwright() as p:
            for _ in range(args.runs):  # alternating, so both see the same machine load
                for mode in runs:
                    runs[mode].append(run_once(p, f"{base}&mode={mode}"))
        server.should_exit = True
        thread.join(timeout=10)
    report = {
        "machine": {**machine(), "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                    "load_average_1m_at_start": round(load_start, 2)},
        "settings": {"runs": args.runs, "read_ms": args.read_ms, "play_ms": args.play_ms, "fps": 30,
                     "modes": modes},
        "median": {mode: summarise(mode_runs) for mode, mode_runs in runs.items()},
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
