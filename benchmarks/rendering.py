"""Render packet size and build time per frame, printed as JSON.

Two scenes, drawn the way a researcher's ``render(env, surface)`` would draw them (everything, every frame):

* ``gridworld``: a 15 x 10 tile grid of walls and floor (150 persistent rects), two moving agents (images),
  a few items, a score line; one transient highlight per frame.
* ``particles``: 500 persistent circles that all move every frame (the worst case for diffs).

Usage: ``.venv/bin/python benchmarks/rendering.py [--frames N]``
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable

from interactive_gym.rendering import Surface

TILE = 32


def draw_gridworld(surface: Surface, step: int) -> None:
    for row in range(10):
        for col in range(15):
            wall = row in (0, 9) or col in (0, 14) or (col == 7 and row != 5)
            surface.rect(col * TILE, row * TILE, TILE, TILE, color="#444" if wall else "#ddd",
                         id=f"tile-{row}-{col}", stroke="#888")
    for index in range(2):
        x = TILE * (1 + (step // 4 + index * 3) % 5)
        surface.image("chef", x, TILE * (2 + index * 4), w=TILE, frame=step % 4, angle=90 * (step // 8 % 4),
                      id=f"agent-{index}", depth=2)
    for index in range(4):
        surface.circle(TILE * (3 + index * 2) + 16, TILE * 7 + 16, 8, color="#c33", id=f"item-{index}", depth=1)
    surface.text(240, 4, f"Score: {step // 10}   Time: {300 - step // 30}", size=18, align="center", id="hud",
                 depth=3)
    surface.rect(TILE * (step % 13 + 1), TILE * 8, TILE, TILE, color="#ffff0060", depth=1)


def draw_particles(surface: Surface, step: int) -> None:
    for index in range(500):
        angle = index * 0.37 + step * 0.05
        surface.circle(320 + math.cos(angle) * (50 + index % 200), 240 + math.sin(angle) * (50 + index % 150),
                       3, color="#39f", id=index)


def measure(draw: Callable[[Surface, int], None], width: int, height: int, frames: int) -> dict[str, float]:
    surface = Surface(width, height, background="#101018")
    sizes: list[int] = []
    times: list[float] = []
    for step in range(frames):
        started = time.perf_counter()
        draw(surface, step)
        packet = surface.commit()
        times.append(time.perf_counter() - started)
        sizes.append(len(json.dumps(packet, separators=(",", ":"))))
    diff_sizes = sizes[1:]
    diff_times = times[1:]
    return {
        "frames": frames,
        "full_packet_bytes": sizes[0],
        "snapshot_bytes": len(json.dumps(surface.snapshot(), separators=(",", ":"))),
        "diff_bytes_median": statistics.median(diff_sizes),
        "diff_bytes_max": max(diff_sizes),
        "bytes_per_second_at_30fps": round(statistics.mean(diff_sizes) * 30),
        "draw_and_commit_ms_median": round(statistics.median(diff_times) * 1000, 3),
        "draw_and_commit_ms_p95": round(sorted(diff_times)[int(len(diff_times) * 0.95)] * 1000, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300, help="frames per scene (default 300)")
    args = parser.parse_args()
    if args.frames < 2:
        parser.error("--frames must be at least 2")
    result = {
        "gridworld": measure(draw_gridworld, 480, 320, args.frames),
        "particles": measure(draw_particles, 640, 480, args.frames),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
