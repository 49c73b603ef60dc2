"""What serializing a participant's events costs: the participant lock on the ``keys`` path, per game tick.

Every participant event runs under that participant's FIFO lock (``flow/serial.py``). The most frequent event
is ``keys`` (one per key press or release), so this measures the real dispatch path of a ``keys`` event
(``EventRouter``: rate limiter -> schema -> participant lookup -> ``serial.hold`` -> ``ServerMode.set_keys``)
in a real ``Experiment`` with a running two-player server-mode game, once with the lock and once with
``serial.hold`` replaced by a no-op async context manager, alternating the two in blocks so both see the same
machine (it is shared). The lock's cost per event is, per run, the median over block pairs of (lock block -
adjacent no-lock block); the runs give its median and range. Related to the server's CPU
per game tick (README, ``benchmarks/server_capacity.py``: ``server_cpu_ms_per_game_tick``, 0.30 ms at 100
games) at a given key rate it gives the lock's share of a tick:

    share = cost_per_event * events_per_tick / cpu_per_tick
    events_per_tick = players_per_game / key_interval_s / fps

The target (issue): at most 5% of server CPU per game tick.

The game's own ticking is stopped (its task cancelled once started) so only event handling is timed; the rate
limiter's ``keys`` class is widened so every event takes the full path instead of being refused.

Usage::

    flock /tmp/ig-bench.lock .venv/bin/python benchmarks/participant_serialization.py [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "demo"))

import gatherers  # noqa: E402

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager  # noqa: E402
from interactive_gym.server.data_writer import DataWriter  # noqa: E402
from interactive_gym.server.events import EventRouter  # noqa: E402
from interactive_gym.server.experiment import Experiment  # noqa: E402
from interactive_gym.server.rate_limits import EVENT_CLASSES, EventClass, RateLimiter  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "participant_serialization.json"
# README, server-mode capacity table: server CPU ms per game tick at 100 two-player games, 30 fps.
CPU_MS_PER_GAME_TICK = 0.30
FPS = 30
PLAYERS = 2
TARGET_SHARE_PCT = 5.0


class QuietSio:
    """A Socket.IO stand-in that accepts targeted emits and rooms (no clients: nothing to send)."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}

    def on(self, event: str, handler: Any) -> None:
        self.handlers[event] = handler

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None,
                   **kwargs: Any) -> None:
        assert to or room, f"{event} emitted without a target"

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        return None

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        return None

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        await self.handlers["disconnect"](sid)


@contextlib.asynccontextmanager
async def no_lock(participant_id: str) -> AsyncIterator[None]:
    """``serial.hold`` without the lock (the comparison)."""
    yield


def build_config(db: Path) -> RemoteConfig:
    width, height = gatherers.canvas_size()
    game = GymScene("duel", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                    height=height, controls={"ArrowUp": gatherers.UP, "ArrowLeft": gatherers.LEFT},
                    default_action=gatherers.STAY, policy_mapping={"agent_0": "human", "agent_1": "human"},
                    max_steps=10_000, num_episodes=1, fps=FPS)
    config = RemoteConfig().experiment("serialization_bench", stager=Stager([game, EndScene("end")]), db=db)
    config.validate()
    return config


async def one_run(db: Path, events_per_block: int, blocks: int) -> dict[str, Any]:
    """A fresh experiment with one running game; ``blocks`` pairs of (lock, no lock) blocks of keys events."""
    config = build_config(db)
    writer = DataWriter(db, experiment_id=config.experiment_id)
    await writer.start()
    sio = QuietSio()
    experiment = Experiment(config, sio, writer)
    limiter = RateLimiter({**EVENT_CLASSES, "keys": EventClass(1e12, 10**12, ("keys",), why="benchmark")})
    router = EventRouter(sio, experiment, limiter=limiter)
    router.register()
    route = next(r for r in router.routes() if r.event == "keys")
    dispatch = router._dispatcher(route)
    join = next(r for r in router.routes() if r.event == "join_game")
    for i, sid in enumerate(("sid-a", "sid-b")):
        await router._connect(sid, {}, {"url_params": {"subject_id": f"player{i}"}, "tab_id": f"t{i}",
                                        "page_id": f"p{i}"})
        await router._dispatcher(join)(sid, {"scene_index": 0, "scene_id": "duel"})
    # Stop the game's ticking (it would run beside the measurement); its runner stays registered.
    for task in list(experiment.server_mode._tasks):
        task.cancel()
    await asyncio.gather(*experiment.server_mode._tasks, return_exceptions=True)
    game_id = experiment.registry.get("player0").game_id  # type: ignore[union-attr]
    assert game_id is not None and game_id in experiment.server_mode.runners
    seq = 0
    held_choices = (["ArrowUp"], [], ["ArrowLeft"], [])

    async def block(hold: Any) -> float:
        nonlocal seq
        experiment.serial.hold = hold  # type: ignore[method-assign]
        start = time.thread_time()
        for _ in range(events_per_block):
            seq += 1
            result = await dispatch("sid-a", {"game_id": game_id, "held": held_choices[seq % 4], "seq": seq})
            if result is not None:
                raise RuntimeError(f"the keys event was not applied: {result}")
        return (time.thread_time() - start) / events_per_block * 1e6

    real_hold = experiment.serial.hold
    await block(real_hold)  # warm-up of both paths
    await block(no_lock)
    locked, unlocked = [], []
    for i in range(blocks):
        order = ((real_hold, locked), (no_lock, unlocked)) if i % 2 == 0 else ((no_lock, unlocked), (real_hold, locked))
        for hold, into in order:
            into.append(await block(hold))
    experiment.serial.hold = real_hold  # type: ignore[method-assign]
    applied = experiment.server_mode.runners[game_id].game.inputs["agent_0"].held
    await experiment.shutdown()
    await writer.close()
    lock_us, nolock_us = statistics.median(locked), statistics.median(unlocked)
    # Each lock block is paired with the no-lock block next to it (same moment of the shared machine): the
    # median of the pair differences is steadier than the difference of the medians when the load drifts.
    paired = statistics.median(a - b for a, b in zip(locked, unlocked, strict=True))
    return {"per_event_us_with_lock": round(lock_us, 3), "per_event_us_no_lock": round(nolock_us, 3),
            "lock_cost_us_per_event": round(paired, 3),
            "blocks_with_lock_us": [round(v, 3) for v in locked],
            "blocks_no_lock_us": [round(v, 3) for v in unlocked], "last_keys_applied": applied}


def share_pct(cost_us: float, key_interval_s: float) -> dict[str, float]:
    events_per_tick = PLAYERS / key_interval_s / FPS
    return {"key_interval_s": key_interval_s, "events_per_game_tick": round(events_per_tick, 4),
            "lock_us_per_game_tick": round(cost_us * events_per_tick, 4),
            "pct_of_server_cpu_per_game_tick": round(100 * cost_us * events_per_tick / (CPU_MS_PER_GAME_TICK * 1000), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=20, help="(lock, no lock) block pairs per run")
    parser.add_argument("--events", type=int, default=2000, help="keys events per block")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    load_before = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="ig-serial-bench-") as tmp:
        for i in range(args.runs):
            runs.append(asyncio.run(one_run(Path(tmp) / f"run{i}.sqlite", args.events, args.blocks)))
    costs = [r["lock_cost_us_per_event"] for r in runs]
    totals = [r["per_event_us_with_lock"] for r in runs]
    cost = statistics.median(costs)
    result = {
        "benchmark": "participant_serialization",
        "what": "CPU of the participant lock (serial.hold) on the real keys dispatch path, per event and per game tick",
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "settings": {"runs": args.runs, "blocks_per_run": args.blocks, "events_per_block": args.events,
                     "clock": "time.thread_time (event loop thread)"},
        "keys_event_us_with_lock": {"median": statistics.median(totals), "min": min(totals), "max": max(totals)},
        "lock_cost_us_per_event": {"median": cost, "min": min(costs), "max": max(costs)},
        "lock_share_of_keys_event_pct": round(100 * cost / statistics.median(totals), 2),
        "server_cpu_ms_per_game_tick": CPU_MS_PER_GAME_TICK,
        "per_game_tick": {
            "key_event_every_100ms": share_pct(cost, 0.1),
            "key_event_every_300ms_as_server_capacity_clients": share_pct(cost, 0.3),
            "range_at_100ms": [share_pct(min(costs), 0.1)["pct_of_server_cpu_per_game_tick"],
                               share_pct(max(costs), 0.1)["pct_of_server_cpu_per_game_tick"]],
        },
        "target_pct": TARGET_SHARE_PCT,
        "runs": runs,
    }
    result["target_met"] = result["per_game_tick"]["key_event_every_100ms"]["pct_of_server_cpu_per_game_tick"] \
        <= TARGET_SHARE_PCT
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
