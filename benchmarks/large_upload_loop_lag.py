"""Event-loop lag while cap-sized episodes are uploaded over Socket.IO: decoded on the loop vs off it.

A server subprocess (uvicorn + the app's ``ExperimentSocketServer``, the app's limits) runs a ticker on its
event loop: ``asyncio.sleep(5 ms)`` in a loop, recording how late each wake-up is (what every server-mode game
on that loop would feel). A real python-socketio client uploads cap-sized episodes (valid ones, just under
``MAX_UPLOAD_BYTES``), one after another, and each upload is validated as the app validates it. Two modes,
switched at run time, alternating within each run:

- ``on_loop`` (before): the message is decoded on the loop (python-socketio's default; ``off_loop_chars=None``)
  and validated there, sizing the payload by re-encoding it (the validator's fallback, as before).
- ``off_loop`` (after): decoded in the worker thread, validated in a thread (``asyncio.to_thread``, as
  ``BrowserScenes.receive_upload`` does), sized by its wire size (no re-encode).

Prints JSON: per mode the median over runs of the lag's p50/p99/max (ms) and the upload round trip, the raw
per-run figures, an idle baseline, the machine and its load average; ``--out`` keeps it.

    flock /tmp/ig-bench.lock .venv/bin/python benchmarks/large_upload_loop_lag.py [--runs 3] [--uploads 3] \\
        [--out benchmarks/results/large_upload_loop_lag.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interactive_gym.server.upload_validation import (  # noqa: E402 - after the path line above
    MAX_UPLOAD_BYTES,
    EpisodeUpload,
    UploadRules,
    validate_episode_upload,
)

TICK_S = 0.005
AGENTS = ("agent_0", "agent_1")
RULES = UploadRules(scene_id="solo", num_episodes=1, max_steps=100_000, agent_ids=AGENTS, seeds=(7,),
                    bundle_hash="h" * 64)
MODES = ("on_loop", "off_loop")


def episode_step(t: int) -> dict[str, Any]:
    """One step shaped like a page's upload: small integer observations, rewards, flags, keys, a time."""
    obs = [(t * 7 + i) % 50 for i in range(60)]
    return {"t": t, "observation": {"agent_0": obs, "agent_1": obs[::-1]}, "actions": {"agent_0": t % 5, "agent_1": 0},
            "rewards": {"agent_0": 1.0 if t % 9 == 0 else 0.0, "agent_1": 0}, "terminated": {"agent_0": False, "agent_1": False},
            "truncated": {"agent_0": False, "agent_1": False}, "info": {"agent_0": {"score": t}},
            "keys": {"agent_0": ["ArrowRight"]}, "client_ts": 1764120000.5 + t / 30}


def cap_sized_episode(limit: int = MAX_UPLOAD_BYTES) -> dict[str, Any]:
    """A valid partial episode whose compact JSON is just under ``limit`` bytes."""
    per_step = len(json.dumps(episode_step(0), separators=(",", ":"))) + 1
    payload: dict[str, Any] = {"scene_id": "solo", "episode": 0, "seed": 7, "bundle_hash": "h" * 64, "partial": True,
                               "end_reason": "page_closed", "error": None, "pauses": [],
                               "steps": [episode_step(t) for t in range(limit // per_step)]}
    excess = len(json.dumps(payload, separators=(",", ":"))) - (limit - 64)
    if excess > 0:  # steps grow longer with t: drop enough of the last ones at once
        del payload["steps"][-(excess // per_step + 1):]
    return payload


# -- server (subprocess) ----------------------------------------------------------------------------------------
def serve(port: int) -> None:
    import socketio
    import uvicorn

    from interactive_gym.server.fast_socketio import DirectSendManager, ExperimentSocketServer
    from interactive_gym.server.message_limits import (
        MAX_ENGINEIO_BYTES,
        MAX_MESSAGE_CHARS,
        PARSE_OFF_LOOP_BYTES,
    )

    sio = ExperimentSocketServer(async_mode="asgi", cors_allowed_origins=[], max_http_buffer_size=MAX_ENGINEIO_BYTES,
                                 max_message_chars=MAX_MESSAGE_CHARS, client_manager=DirectSendManager())
    lateness_ms: list[float] = []
    state: dict[str, Any] = {"ticker": None}

    async def ticker() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(TICK_S)
            lateness_ms.append((time.perf_counter() - before - TICK_S) * 1000)

    @sio.on("configure")
    async def configure(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        sio.off_loop_chars = PARSE_OFF_LOOP_BYTES if data["mode"] == "off_loop" else None
        if state["ticker"] is None:
            state["ticker"] = asyncio.get_running_loop().create_task(ticker())
        return {"ok": True}

    @sio.on("window")
    async def window(sid: str, data: dict[str, Any]) -> dict[str, Any]:
        samples = list(lateness_ms)
        lateness_ms.clear()
        return {"samples": samples, "decoded_off_loop": sio.decoded_off_loop}

    @sio.on("browser_episode")
    async def upload(sid: str, payload: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(participant_id="p", participant_scene_id="solo", rules=RULES)
        if sio.off_loop_chars is None:
            # Before: python-socketio hands a plain dict; the validator re-encodes it to size it, on the loop.
            result = validate_episode_upload(dict(payload), **kwargs)
        else:
            result = await asyncio.to_thread(validate_episode_upload, payload, **kwargs)
        return {"ok": isinstance(result, EpisodeUpload), "rejected": getattr(result, "message", None)}

    uvicorn.run(socketio.ASGIApp(sio), host="127.0.0.1", port=port, log_level="warning")


# -- client (this process) --------------------------------------------------------------------------------------
def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if not ordered:
        return {"n": 0}
    return {"n": len(ordered), "p50_ms": round(ordered[len(ordered) // 2], 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
            "max_ms": round(ordered[-1], 2), "over_50ms": sum(1 for s in ordered if s > 50)}


async def measure(url: str, runs: int, uploads: int, payload: dict[str, Any]) -> dict[str, Any]:
    import socketio

    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"])
    await client.call("configure", {"mode": "off_loop"})
    await asyncio.sleep(1.0)
    await client.call("window", {})
    await asyncio.sleep(2.0)
    idle = summary((await client.call("window", {}))["samples"])
    per_run: list[dict[str, Any]] = []
    for run in range(runs):
        order = MODES if run % 2 == 0 else MODES[::-1]
        row: dict[str, Any] = {"order": list(order)}
        for mode in order:
            await client.call("configure", {"mode": mode})
            await asyncio.sleep(0.5)  # settle, then start a clean window
            await client.call("window", {})
            round_trips = []
            for _ in range(uploads):
                started = time.perf_counter()
                ack = await client.call("browser_episode", payload, timeout=120)
                round_trips.append(round((time.perf_counter() - started) * 1000, 1))
                if not ack.get("ok"):
                    raise RuntimeError(f"upload refused in {mode}: {ack}")
            window = await client.call("window", {})
            row[mode] = {**summary(window["samples"]), "upload_round_trip_ms": round_trips}
        per_run.append(row)
    await client.disconnect()
    medians = {mode: {key: statistics.median(r[mode][key] for r in per_run) for key in ("p50_ms", "p99_ms", "max_ms")}
               | {"upload_round_trip_ms": statistics.median(t for r in per_run for t in r[mode]["upload_round_trip_ms"])}
               for mode in MODES}
    return {"idle": idle, "median_of_runs": medians, "runs": per_run}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=3, help="cap-sized uploads per mode per run")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server subprocess: its port
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    payload = cap_sized_episode()
    port = free_port()
    load_before = os.getloadavg()
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("benchmark server did not start") from None
                time.sleep(0.1)
        measured = asyncio.run(measure(f"http://127.0.0.1:{port}", args.runs, args.uploads, payload))
    finally:
        server.terminate()
        server.wait(timeout=10)
    report = {
        "benchmark": "large_upload_loop_lag",
        "command": "flock /tmp/ig-bench.lock .venv/bin/python benchmarks/large_upload_loop_lag.py "
                   f"--runs {args.runs} --uploads {args.uploads}",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "upload": {"bytes": len(json.dumps(payload, separators=(",", ":"))), "steps": len(payload["steps"]),
                   "cap_bytes": MAX_UPLOAD_BYTES},
        "ticker": {"interval_ms": TICK_S * 1000, "metric": "wake-up lateness of asyncio.sleep(5 ms) on the server loop"},
        **measured,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
