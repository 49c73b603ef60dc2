"""What one server-mode game tick costs, part by part, measured in-process without sockets.

Complements ``server_capacity.py`` (whole system under load) with CPU microseconds per tick of each piece
the game loop runs, timed with ``time.process_time`` so other processes on a shared machine barely matter:

- ``env_step_and_keys``: ``ServerGame.tick`` without rendering (key mapping, env step, step record);
- ``render_and_diff``: the demo's ``render_fn`` drawing on the Surface plus ``Surface.commit`` (packet diff);
- ``encode_step_for_db``: ``encode_step`` (value_codec JSON of the seven step columns), as ``append_steps``
  does on the event loop, and the same columns through plain ``json.dumps`` for comparison;
- ``socketio_packet_encode``: building and encoding the Socket.IO ``render`` event once per room emit
  (binary scan + JSON), and plain ``json.dumps`` of the same payload for comparison.

Usage: ``.venv/bin/python benchmarks/server_capacity_breakdown.py [--ticks 5000] [--env demo|grid]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from server_capacity_envs import ENVS  # noqa: E402
from server_capacity_server import SCENE_ID, build_config  # noqa: E402
from socketio import packet as sio_packet  # noqa: E402

from interactive_gym.server.remote_game import ServerGame  # noqa: E402
from interactive_gym.server.storage_records import StepRecord, encode_step  # noqa: E402

COLUMNS = ("observation", "actions", "rewards", "terminated", "truncated", "info", "keys")


def per_call_us(fn: Callable[[], Any], calls: int) -> float:
    """CPU microseconds per call of ``fn`` (process time, so a busy machine barely skews it)."""
    start = time.process_time()
    for _ in range(calls):
        fn()
    return round(1e6 * (time.process_time() - start) / calls, 2)


def breakdown(ticks: int, env: str = "demo") -> dict[str, Any]:
    config = build_config(port=8000, db=Path("unused.sqlite"), fps=30, max_steps=10**6, env=env)
    assert config.stager is not None
    scene = config.stager.scene(SCENE_ID)
    game = ServerGame("g-breakdown", scene, {"agent_0": "a", "agent_1": "b"}, game_seed=7)
    game.start_episode()
    arrows = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight")
    outcomes = []
    seq = 0
    render_cpu = 0.0
    real_render = game.render  # timed from inside tick, where it runs on a changed state

    def timed_render() -> dict[str, Any]:
        nonlocal render_cpu
        start = time.process_time()
        try:
            return real_render()
        finally:
            render_cpu += time.process_time() - start

    game.render = timed_render  # type: ignore[method-assign]

    def tick() -> None:
        nonlocal seq
        seq += 1
        game.set_keys("agent_0", [arrows[seq % 4]], seq)
        game.set_keys("agent_1", [arrows[(seq // 3) % 4]], seq)
        outcomes.append(game.tick())

    tick_us = per_call_us(tick, ticks)
    render_us = round(1e6 * render_cpu / ticks, 2)
    records = [StepRecord(**o.record) for o in outcomes]
    packets = [{"game_id": game.game_id, "episode": 0, "t": i, "packet": o.packet} for i, o in enumerate(outcomes)]
    it_records, it_packets = iter(records * 2), iter(packets * 2)
    encode_us = per_call_us(lambda: encode_step(next(it_records)), ticks)
    plain_records = [{c: getattr(r, c) for c in COLUMNS} for r in records]
    it_plain = iter(plain_records)
    plain_step_us = per_call_us(lambda: [json.dumps(v) for v in next(it_plain).values()], ticks)
    sio_us = per_call_us(lambda: sio_packet.Packet(sio_packet.EVENT, data=["render", next(it_packets)]).encode(),
                         ticks)
    it_packets = iter(packets)
    plain_packet_us = per_call_us(lambda: json.dumps(["render", next(it_packets)], separators=(",", ":")), ticks)
    return {
        "ticks": ticks,
        "us_per_tick": {
            "env_step_and_keys": round(tick_us - render_us, 2),
            "render_and_diff": render_us,
            "encode_step_for_db": encode_us,
            "encode_step_plain_json_for_comparison": plain_step_us,
            "socketio_packet_encode": sio_us,
            "plain_json_of_render_event_for_comparison": plain_packet_us,
        },
        "render_payload_bytes_mean": round(sum(len(json.dumps(p)) for p in packets) / len(packets)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CPU cost of the parts of one server-mode game tick.")
    parser.add_argument("--ticks", type=int, default=5000)
    parser.add_argument("--env", choices=sorted(ENVS), default="demo")
    args = parser.parse_args(argv)
    if args.ticks < 1:
        parser.error("--ticks must be >= 1")
    print(json.dumps({"env": args.env, **breakdown(args.ticks, args.env)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
