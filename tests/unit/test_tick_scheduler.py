"""Tests for TickScheduler (one shared ticker per fps) and GameRunner driven by it, on a fake clock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_clock import LatenessStats
from interactive_gym.server.game_runner import GameRunner
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.tick_scheduler import TickScheduler

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}


class FakeTime:
    """A clock that moves only when the ticker sleeps, or when a test's step says it did work."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.sleeps.append(delay)
        self.now += delay
        await asyncio.sleep(0)


class FakeGame:
    """A Tickable that records its steps; ``work_s`` advances the fake clock, ``raise_at`` / ``send`` misbehave."""

    def __init__(self, name: str, clock: FakeTime, log: list[str], work_s: float = 0.0,
                 raise_at: int | None = None, send: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.name = name
        self.stats = LatenessStats()
        self.steps = 0
        self.failed: list[Exception] = []
        self._clock, self._log, self._work_s = clock, log, work_s
        self._raise_at, self._send = raise_at, send

    def step(self) -> Awaitable[None] | None:
        self.steps += 1
        self._log.append(self.name)
        self._clock.now += self._work_s
        if self._raise_at == self.steps:
            raise RuntimeError(f"{self.name} broke")
        return self._send(self.steps) if self._send else None

    def fail(self, error: Exception) -> None:
        self.failed.append(error)


async def until(condition: Callable[[], bool], limit: int = 10_000) -> None:
    for _ in range(limit):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread: in a full test session Playwright's loop owns this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


# -- TickScheduler ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fps", [0, -30])
def test_fps_must_be_positive(fps: float) -> None:
    with pytest.raises(ValueError, match="fps must be a positive number"):
        TickScheduler(fps)


@pytest.mark.parametrize("phases", [0, -1, 2.5])
def test_phases_must_be_a_positive_integer(phases: object) -> None:
    with pytest.raises(ValueError, match="phases must be an integer >= 1"):
        TickScheduler(30, phases=phases)  # type: ignore[arg-type]


@pytest.mark.parametrize("games_per_phase", [0, 1.5])
def test_games_per_phase_must_be_a_positive_integer(games_per_phase: object) -> None:
    with pytest.raises(ValueError, match="games_per_phase must be an integer >= 1"):
        TickScheduler(30, games_per_phase=games_per_phase)  # type: ignore[arg-type]


def test_phases_fill_up_then_open_spread_out_each_ticked_once_per_period() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=4, games_per_phase=3)
    games = [FakeGame(f"g{i}", clock, log, work_s=0.001) for i in range(10)]
    sizes: list[list[int]] = []

    async def main() -> None:
        for game in games:
            ticker.add(game)
            sizes.append(ticker.phase_sizes())
        await until(lambda: all(game.steps == 6 for game in games))
        await ticker.close()

    run(main())
    # Phase 0 fills first; then phase 2 (farthest from 0), then phase 1 (tie with 3: lowest), then 3.
    assert sizes[2] == [3, 0, 0, 0] and sizes[3] == [3, 0, 1, 0] and sizes[6] == [3, 1, 3, 0]
    assert sizes[-1] == [3, 3, 3, 1]
    # Each period ticks the phases in offset order: 0 (g0-g2), 1 (g6-g8), 2 (g3-g5), 3 (g9).
    assert log[:10] == ["g0", "g1", "g2", "g6", "g7", "g8", "g3", "g4", "g5", "g9"]
    assert log[10:20] == log[:10]
    # Four wake-ups per period, a quarter period apart: each sleep is 25 ms minus the previous phase's work.
    assert clock.sleeps[:8] == pytest.approx([0.022, 0.022, 0.022, 0.024] * 2)
    # A game waits only for the games before it in its own phase (at most 2 x 1 ms), not for all 9 others.
    assert max(game.stats.percentile(1.0) for game in games) == pytest.approx(0.002)
    assert [games[i].stats.percentile(1.0) for i in (0, 3, 6, 9)] == [0.0] * 4


def test_few_games_share_one_phase_and_one_wake_up_per_period() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep)  # defaults: 8 phases of up to 12 games
    games = [FakeGame(f"g{i}", clock, log) for i in range(12)]

    async def main() -> None:
        for game in games:
            ticker.add(game)
        await until(lambda: all(game.steps == 3 for game in games))
        await ticker.close()

    run(main())
    assert ticker.phase_sizes() == [12, 0, 0, 0, 0, 0, 0, 0]
    assert clock.sleeps[:2] == pytest.approx([0.1, 0.1])


def test_a_game_joining_an_idle_phase_starts_on_the_next_deadline_without_skips() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=2, games_per_phase=1)
    first, second = FakeGame("a", clock, log), FakeGame("b", clock, log)

    async def main() -> None:
        ticker.add(first)
        await until(lambda: first.steps == 30)  # phase 1 stays idle for 3 s
        ticker.add(second)
        await until(lambda: second.steps == 3)
        await ticker.close()

    run(main())
    assert ticker.phase_sizes() == [1, 1]
    assert second.stats.skipped == 0 and first.stats.skipped == 0
    assert second.stats.percentile(1.0) == pytest.approx(0.0)


def test_one_sleep_per_period_for_all_games_stepped_in_join_order() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=1)
    games = [FakeGame(name, clock, log) for name in "abc"]

    async def main() -> None:
        for game in games:
            ticker.add(game)
        await until(lambda: games[-1].steps == 5)
        for game in games:
            ticker.discard(game)
        await ticker.close()

    run(main())
    assert log == list("abc") * 5
    # The first round is due at once; then one sleep of one period per round, not one per game (the 5th
    # sleep is the wait for round 6, begun before the test discarded the games).
    assert clock.sleeps == pytest.approx([0.1] * 5)
    assert all(game.stats.count == 5 and game.stats.percentile(1.0) == 0.0 for game in games)


def test_lateness_is_measured_when_each_game_steps() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=1)
    first, second = FakeGame("a", clock, log, work_s=0.004), FakeGame("b", clock, log)

    async def main() -> None:
        ticker.add(first)
        ticker.add(second)
        await until(lambda: second.steps == 3)
        await ticker.close()

    run(main())
    assert first.stats.percentile(1.0) == 0.0
    # b steps after a's 4 ms of work every round.
    assert second.stats.percentile(0.0) == pytest.approx(0.004)
    # The schedule does not drift: the sleeps absorb a's work (the 3rd is the wait for round 4).
    assert clock.sleeps == pytest.approx([0.1 - 0.004] * 3)


def test_a_round_far_behind_skips_ticks_for_every_game() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=1, max_catch_up=2)
    slow = FakeGame("slow", clock, log)
    other = FakeGame("other", clock, log)

    async def main() -> None:
        ticker.add(slow)
        ticker.add(other)
        await until(lambda: other.steps == 1)
        clock.now += 1.05  # the machine stalled for ~10 periods
        await until(lambda: other.steps == 3)
        await ticker.close()

    run(main())
    # The fake sleep for round 1 (due at +0.1) had already moved the clock to +0.1 when the stall added
    # 1.05 s: round 1 runs 10.5 periods late, so 10 whole ticks are skipped, for both games.
    assert slow.stats.skipped == other.stats.skipped == 10
    assert slow.stats.count == other.stats.count == 3


def test_a_game_whose_step_raises_is_failed_and_the_others_tick_on() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep)
    broken = FakeGame("broken", clock, log, raise_at=2)
    fine = FakeGame("fine", clock, log)

    async def main() -> None:
        ticker.add(broken)
        ticker.add(fine)
        await until(lambda: fine.steps == 5)
        await ticker.close()

    run(main())
    assert broken.steps == 2 and broken not in ticker
    assert [str(e) for e in broken.failed] == ["broken broke"]
    assert fine.failed == [] and fine.steps == 5


def test_a_game_whose_send_raises_is_failed_and_the_others_tick_on() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep)
    sent: list[tuple[str, int]] = []

    def sender(name: str, broken_at: int | None) -> Callable[[int], Awaitable[None]]:
        async def send(step: int) -> None:
            await asyncio.sleep(0)  # a real send suspends
            if step == broken_at:
                raise ConnectionError(f"{name} send failed")
            sent.append((name, step))
        return send

    broken = FakeGame("broken", clock, log, send=sender("broken", 3))
    fine = FakeGame("fine", clock, log, send=sender("fine", None))

    async def main() -> None:
        ticker.add(broken)
        ticker.add(fine)
        await until(lambda: fine.steps == 5)
        await ticker.close()

    run(main())
    assert [type(e) for e in broken.failed] == [ConnectionError]
    assert broken.steps == 3 and broken not in ticker
    assert [s for n, s in sent if n == "broken"] == [1, 2]
    assert [s for n, s in sent if n == "fine"] == [1, 2, 3, 4]  # the 5th is sent after the check


def test_sends_of_one_round_are_awaited_before_the_next_round() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep, phases=1)
    events: list[str] = []

    def sender(name: str) -> Callable[[int], Awaitable[None]]:
        async def send(step: int) -> None:
            for _ in range(3):
                await asyncio.sleep(0)
            events.append(f"{name}{step} sent")
        return send

    games = [FakeGame(n, clock, log, send=sender(n)) for n in "ab"]

    async def main() -> None:
        for game in games:
            ticker.add(game)
        await until(lambda: len(events) == 4)
        await ticker.close()

    run(main())
    assert sorted(events[:2]) == ["a1 sent", "b1 sent"] and sorted(events[2:]) == ["a2 sent", "b2 sent"]


def test_ticker_stops_when_empty_and_restarts_with_a_fresh_schedule() -> None:
    clock, log = FakeTime(), []
    ticker = TickScheduler(10, time=clock, sleep=clock.sleep)
    game = FakeGame("a", clock, log)

    async def main() -> tuple[bool, int]:
        ticker.add(game)
        await until(lambda: game.steps == 2)
        ticker.discard(game)
        await until(lambda: ticker._task is not None and ticker._task.done())  # noqa: SLF001
        idle_steps = game.steps
        clock.now += 50.0  # a long idle gap must not count as skipped ticks later
        ticker.add(game)
        await until(lambda: game.steps == idle_steps + 2)
        await ticker.close()
        return len(ticker), idle_steps

    registered, idle_steps = run(main())
    assert idle_steps in (2, 3)
    assert game.stats.skipped == 0 and registered == 1


# -- GameRunner on the shared ticker --------------------------------------------------------------------------
class FakeWriter:
    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []
        self.steps: dict[int, int] = {}

    async def begin_episode(self, **fields: Any) -> int:
        episode_id = len(self.steps) + 1
        self.steps[episode_id] = 0
        self.log.append(("begin", episode_id, fields["game_id"], fields["episode"]))
        await asyncio.sleep(0)
        return episode_id

    def append_steps(self, episode_id: int, steps: list[Any]) -> None:
        self.steps[episode_id] += len(steps)

    async def end_episode(self, episode_id: int, *, status: str, meta: dict[str, Any]) -> None:
        await asyncio.sleep(0)
        self.log.append(("end", episode_id, status, meta))


def scene(**overrides: Any) -> GymScene:
    width, height = gatherers.canvas_size()
    kwargs: dict[str, Any] = dict(env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                                  height=height, controls=CONTROLS, default_action=gatherers.STAY,
                                  policy_mapping={"agent_0": "human", "agent_1": "human"}, max_steps=6,
                                  num_episodes=2, fps=20, disconnect_grace_s=0.5)
    kwargs.update(overrides)
    built = GymScene("orchard", **kwargs)
    built.check()
    return built


class Harness:
    """Runners sharing one fake-clock ticker, with their emits and ends recorded."""

    def __init__(self, fps: float = 20) -> None:
        self.clock = FakeTime()
        self.ticker = TickScheduler(fps, time=self.clock, sleep=self.clock.sleep)
        self.writer = FakeWriter()
        self.emitted: list[tuple[str, str, Any]] = []
        self.ended: dict[str, str] = {}

    async def emit(self, event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None:
        await asyncio.sleep(0)  # like Socket.IO: the send completes on a later loop turn
        self.emitted.append((room or to or "", event, data))

    async def finished(self, runner: GameRunner, reason: str) -> None:
        self.emitted.append((runner.room, "game_over", reason))
        self.ended[runner.room] = reason

    def runner(self, game_id: str, **overrides: Any) -> GameRunner:
        game = ServerGame(game_id, scene(**overrides), {"agent_0": "alice", "agent_1": "bob"}, game_seed=3)
        return GameRunner(game, self.emit, self.writer, self.finished, self.ticker)

    def events(self, room: str) -> list[tuple[str, Any]]:
        return [(event, data) for r, event, data in self.emitted if r == room]


def test_runner_refuses_a_ticker_of_another_fps() -> None:
    harness = Harness(fps=30)
    with pytest.raises(ValueError, match="runs at 20 fps but was given a 30 fps ticker"):
        harness.runner("g-1")


def test_games_play_every_episode_with_renders_in_order_and_data_stored() -> None:
    harness = Harness()

    async def main() -> None:
        runners = [harness.runner("g-1"), harness.runner("g-2")]
        await asyncio.gather(*(r.run() for r in runners))
        await harness.ticker.close()

    run(main())
    assert harness.ended == {"g-1": "complete", "g-2": "complete"}
    for room in ("g-1", "g-2"):
        names = [(event, data.get("episode") if isinstance(data, dict) else data, data.get("t")
                  if isinstance(data, dict) else None) for event, data in harness.events(room)]
        expected = []
        for episode in (0, 1):
            expected.append(("episode_start", episode, None))
            expected += [("render", episode, t) for t in range(1, 7)]
        assert names == [*expected, ("game_over", "complete", None)]
    ends = [entry for entry in harness.writer.log if entry[0] == "end"]
    assert [entry[2] for entry in ends] == ["complete"] * 4
    assert all(entry[3]["steps"] == 6 and entry[3]["tick_lateness"]["ticks"] >= 6 for entry in ends)
    assert set(harness.writer.steps.values()) == {6}
    assert len(harness.ticker) == 0


def test_a_crashing_game_ends_with_error_and_its_data_while_the_other_completes() -> None:
    harness = Harness()

    async def main() -> None:
        crashing, fine = harness.runner("g-bad"), harness.runner("g-ok")
        real_step = crashing.game.env.step

        def step(actions: Any) -> Any:
            if crashing.game.t == 3:
                raise RuntimeError("env exploded")
            return real_step(actions)

        crashing.game.env.step = step  # type: ignore[method-assign]
        await asyncio.gather(crashing.run(), fine.run())
        await harness.ticker.close()

    run(main())
    assert harness.ended == {"g-bad": "error", "g-ok": "complete"}
    renders = [data["t"] for event, data in harness.events("g-bad") if event == "render"]
    assert renders == [1, 2, 3]
    bad_end = next(entry for entry in harness.writer.log if entry[0] == "end" and entry[1] == 1)
    assert bad_end[2] == "partial" and bad_end[3]["steps"] == 3
    assert harness.writer.steps[1] == 3


def test_a_human_gone_past_the_grace_ends_the_game_as_partner_left() -> None:
    harness = Harness()

    async def main() -> GameRunner:
        runner = harness.runner("g-1", max_steps=1000)
        task = asyncio.create_task(runner.run())
        await until(lambda: runner.game.t == 2)
        runner.human_left("agent_1")
        await task
        await harness.ticker.close()
        return runner

    runner = run(main())
    assert harness.ended == {"g-1": "partner_left"}
    # Gone while tick 2's render was being sent, at +0.05 s; the round due at +0.55 s finds the 0.5 s grace
    # over before stepping, so ticks 3..11 were played with the default action.
    assert runner.game.t == 11
    end = next(entry for entry in harness.writer.log if entry[0] == "end")
    assert end[2] == "partial"


def test_a_human_back_within_the_grace_keeps_the_game_going() -> None:
    harness = Harness()

    async def main() -> None:
        runner = harness.runner("g-1", max_steps=30, num_episodes=1)
        task = asyncio.create_task(runner.run())
        await until(lambda: runner.game.t == 2)
        runner.human_left("agent_1")
        await until(lambda: runner.game.t == 8)
        runner.human_back("agent_1")
        await task
        await harness.ticker.close()

    run(main())
    assert harness.ended == {"g-1": "complete"}


def test_cancelled_runner_stops_ticking_and_stores_a_partial_episode() -> None:
    harness = Harness()

    async def main() -> None:
        runner = harness.runner("g-1", max_steps=1000)
        task = asyncio.create_task(runner.run())
        await until(lambda: runner.game.t == 3)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        steps = runner.game.t
        await harness.clock.sleep(1.0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert runner.game.t == steps and runner not in harness.ticker
        await harness.ticker.close()

    run(main())
    assert harness.ended == {}
    assert [entry[2] for entry in harness.writer.log if entry[0] == "end"] == ["partial"]
