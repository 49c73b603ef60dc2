"""CPU per game tick of the server's per-tick and per-event path, in one process, without a network or a clock.

``server_capacity.py`` measures the whole system, but on a shared machine its timings move with everyone else's
load. This harness runs the same server code a tick costs, deterministically, and reports process CPU time per
game tick (``time.process_time``: barely load-sensitive); run it under callgrind for instruction counts, which
do not depend on the load at all::

    .venv/bin/python benchmarks/server_capacity_hotpath.py --games 20 --ticks 600
    valgrind --tool=callgrind --callgrind-out-file=/tmp/hot.out .venv/bin/python \\
        benchmarks/server_capacity_hotpath.py --games 10 --ticks 60 --warmup 0
    callgrind_annotate /tmp/hot.out | head -30      # "PROGRAM TOTALS" / (games * ticks) = instructions per tick

What runs, for ``--games`` two-human games of ``--env`` at 30 fps:

- the real :class:`~interactive_gym.server.tick_scheduler.TickScheduler` and
  :class:`~interactive_gym.server.game_runner.GameRunner` (step, step record, render, render send), on a fake
  clock that jumps to each deadline, so every tick runs and none is skipped;
- the real :class:`~interactive_gym.server.data_writer.DataWriter` on a temporary SQLite file (step records
  encoded on the loop, committed by its thread every 0.25 s of real time);
- the real Socket.IO send path: ``ExperimentSocketServer.emit`` through ``DirectSendManager`` into two real
  Engine.IO sockets per game, whose queues a task per socket drains and encodes as the websocket writer would
  (the websocket framing and the socket write itself are left out);
- key events at ``--key-interval`` per participant: the Socket.IO message text decoded by the server's decoder,
  validated against the ``keys`` schema, and applied to the game (the rate limiter, participant lookup and
  participant lock of ``events.py`` are left out: ``benchmarks/participant_serialization.py`` measures those).

Prints JSON: CPU microseconds per game tick (median and range over ``--repeats``), the GC collections and their
pauses, and the ticks run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import engineio.async_socket

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from server_capacity_envs import ENVS  # noqa: E402
from server_capacity_server import SCENE_ID, GcPauses, build_config  # noqa: E402
from server_capacity_stats import across_runs  # noqa: E402

from interactive_gym.server.data_writer import DataWriter  # noqa: E402
from interactive_gym.server.fast_socketio import DirectSendManager, ExperimentSocketServer, decode_message  # noqa: E402
from interactive_gym.server.game_runner import GameRunner  # noqa: E402
from interactive_gym.server.remote_game import ServerGame  # noqa: E402
from interactive_gym.server.schemas import validate_payload  # noqa: E402
from interactive_gym.server.tick_scheduler import TickScheduler  # noqa: E402

ARROWS = ("ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight")


class FakeClock:
    """A clock that only moves when the scheduler sleeps: every tick is on time, the run is as fast as the CPU."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay
        await asyncio.sleep(0)  # let the socket drains and the writer's futures run


async def _drain(socket: engineio.async_socket.AsyncSocket, counts: list[int]) -> None:
    """What the websocket writer does with each queued packet, short of framing and writing it."""
    while True:
        packet = await socket.queue.get()
        packet.encode()
        counts[0] += 1


def _sends_key(game: int, player: int, tick: int, every: int) -> bool:
    """Whether one participant sends a key update before ``tick``: every ``every`` ticks, staggered per client."""
    return tick % every == (game * 2 + player) % every


class _KeySender:
    """Sends each participant's key updates on its schedule, as the Socket.IO text a page sends."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.messages = 0
        self._seqs: dict[tuple[int, int], int] = {}

    def before_tick(self, index: int, runner: GameRunner) -> None:
        """Decodes, validates and applies the keys both players of game ``index`` send before its next tick."""
        tick = runner.game.t
        for player, agent in enumerate(("agent_0", "agent_1")):
            if not _sends_key(index, player, tick, self.every):
                continue
            seq = self._seqs[index, player] = self._seqs.get((index, player), 0) + 1
            held = [] if (tick + index) % 5 == 0 else [ARROWS[(tick // self.every + index + player) % 4]]
            text = "42" + json.dumps(["keys", {"game_id": runner.game.game_id, "held": held, "seq": seq}],
                                     separators=(",", ":"))
            event, payload = decode_message(text).packet.data
            data = validate_payload(event, payload)
            runner.game.set_keys(agent, data["held"], data["seq"])
            self.messages += 1


class _CpuWindows:
    """Process CPU per game tick over consecutive windows of ``window`` ticks of every game, after the warm-up."""

    def __init__(self, games: int, warmup: int, window: int) -> None:
        self.games = games
        self.warmup = warmup
        self.window = window
        self.windows: list[float] = []
        self._steps = 0
        self._started: tuple[int, float] | None = None  # (frame, process time) the open window began at

    def before_tick(self) -> None:
        """Counts one game tick; at each window's edge (in ticks of every game) samples the CPU clock."""
        frame, rest = divmod(self._steps, self.games)
        self._steps += 1
        if rest == 0 and frame >= self.warmup and (frame - self.warmup) % self.window == 0:
            self._sample(frame)

    def finish(self) -> None:
        """Closes the last window, which ends with the last tick rather than before a next one."""
        self._sample(self._steps // self.games)

    def _sample(self, frame: int) -> None:
        now = time.process_time()
        if self._started is not None and frame > self._started[0]:
            began, cpu = self._started
            self.windows.append(1e6 * (now - cpu) / ((frame - began) * self.games))
        self._started = (frame, now)


def _drive_from_the_tick(runner: GameRunner, index: int, keys: _KeySender, cpu: _CpuWindows) -> None:
    """Makes the ticker's call of ``runner.step`` first send that game's keys and count the tick."""
    step = runner.step

    def keyed_step() -> Any:
        cpu.before_tick()
        keys.before_tick(index, runner)
        return step()

    runner.step = keyed_step  # type: ignore[method-assign]


async def run(args: argparse.Namespace, db: Path) -> dict[str, Any]:
    config = build_config(port=8000, db=db, fps=30, max_steps=args.ticks + args.warmup, env=args.env)
    assert config.stager is not None
    scene = config.stager.scene(SCENE_ID)
    clock = FakeClock()
    sio = ExperimentSocketServer(async_mode="asgi", max_message_chars=1 << 20, client_manager=DirectSendManager())
    writer = DataWriter(db, experiment_id="hotpath")
    await writer.start()
    ticker = TickScheduler(30, time=clock.time, sleep=clock.sleep)
    finished: list[str] = []

    async def on_finished(runner: GameRunner, reason: str) -> None:
        finished.append(reason)

    runners, drains, sent = [], [], [0]
    for index in range(args.games):
        game_id = f"g-{index:04d}"
        for player in range(2):
            eio_sid = f"e{index}_{player}"
            socket = engineio.async_socket.AsyncSocket(sio.eio, eio_sid)
            socket.last_ping = None  # never "gone": the fake clock does not move time.time()
            sio.eio.sockets[eio_sid] = socket
            sid = await sio.manager.connect(eio_sid, "/")
            await sio.manager.enter_room(sid, "/", game_id)
            drains.append(asyncio.create_task(_drain(socket, sent)))
        game = ServerGame(game_id, scene, {"agent_0": f"p{index}a", "agent_1": f"p{index}b"}, game_seed=index)
        runners.append(GameRunner(game, sio.emit, writer, on_finished, ticker))
    every = max(1, round(args.key_interval * 30))
    keys = _KeySender(every)
    cpu = _CpuWindows(games=args.games, warmup=args.warmup, window=args.window)
    for index, runner in enumerate(runners):
        _drive_from_the_tick(runner, index, keys, cpu)
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    try:
        # Each game ends by itself after warm-up + measured ticks (its max_steps): nothing here counts ticks from outside,
        # so the ticker may run several phases between two wake-ups of this task without the count drifting.
        await asyncio.gather(*(r.run() for r in runners))
        cpu.finish()
    finally:
        gc.callbacks.remove(pauses)
        await ticker.close()
        for drain in drains:
            drain.cancel()
        await asyncio.gather(*drains, return_exceptions=True)
        await writer.close()
    assert finished == ["complete"] * args.games, finished
    ticked = sum(r.game.t for r in runners)
    messages = keys.messages
    cpu_windows = cpu.windows
    return {"cpu_us_per_game_tick": across_runs(cpu_windows, 2), "game_ticks": ticked, "key_messages": messages,
            "packets_sent": sent[0], "gc": pauses.summary()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--ticks", type=int, default=600, help="measured ticks of every game")
    parser.add_argument("--warmup", type=int, default=60, help="ticks of every game before measuring")
    parser.add_argument("--window", type=int, default=60, help="ticks per CPU sample (median and range reported)")
    parser.add_argument("--env", choices=sorted(ENVS), default="demo")
    parser.add_argument("--key-interval", type=float, default=0.1)
    args = parser.parse_args(argv)
    if args.games < 1 or args.ticks < 1 or args.warmup < 0 or args.window < 1:
        parser.error("--games, --ticks and --window must be >= 1, --warmup >= 0")
    with tempfile.TemporaryDirectory(prefix="ig_hotpath_") as tmp:
        result = asyncio.run(run(args, Path(tmp) / "hot.sqlite"))
    print(json.dumps({"benchmark": "server_capacity_hotpath", "games": args.games, "ticks": args.ticks,
                      "env": args.env, "key_interval_s": args.key_interval, **result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
