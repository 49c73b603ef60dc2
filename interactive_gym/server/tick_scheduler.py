"""One shared ticker per fps: steps every server-mode game of that rate from one task and a few timers.

Before, each game slept on its own timer and woke its own task every tick; with a hundred games that was a
hundred timers, sleeps and task switches per period. A :class:`TickScheduler` splits the period into a few
*phases* (evenly spaced offsets, each with its own drift-free
:class:`~interactive_gym.server.game_clock.TickSchedule`). At each phase's deadline it calls that phase's
games' synchronous :meth:`Tickable.step` in turn, then awaits the sends the steps returned.

Phases trade CPU for lateness. A game waits for the games stepped before it in its phase, so one phase for
100 games at ~0.3 ms each would make the last one ~30 ms late; but every extra wake-up per period costs CPU
(measured: 8 phases instead of 1 cost ~15% more CPU per tick at 50 games). So a phase is filled up to
``games_per_phase`` games before another is opened (the idle one farthest from the open ones, to keep the
open phases spread over the period); once all are open, new games go to the least crowded.

Games stay isolated: an exception from one game's step or send is handed to that game's
:meth:`Tickable.fail` and the other games tick on. Lateness is recorded per game, measured when that game's
step starts, so a game stepped late in a crowded phase reports the delay it really saw.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from interactive_gym.server.game_clock import LatenessStats, TickSchedule

log = logging.getLogger("interactive_gym.ticks")


class Tickable(Protocol):
    """What the scheduler needs from a game (``GameRunner`` implements it)."""

    stats: LatenessStats

    def step(self) -> Awaitable[None] | None:
        """Advances the game one tick synchronously; returns what is left to await (the sends), if anything."""

    def fail(self, error: Exception) -> None:
        """The game's step or send raised: it stops ticking and ends itself."""


class _Phase:
    """The games ticked at one offset within the period."""

    __slots__ = ("games", "schedule")

    def __init__(self, schedule: TickSchedule) -> None:
        self.schedule = schedule
        # A dict, not a set: games are stepped in the order they joined, the same every tick.
        self.games: dict[Tickable, None] = {}


class TickScheduler:
    """Ticks every registered game at ``fps`` from one task; the task runs only while games are registered.

    Args:
        fps: Ticks per second.
        time: Clock function (seconds); defaults to the running loop's monotonic clock.
        sleep: Sleep coroutine (tests pass a fake that advances a fake clock).
        max_catch_up: Ticks that may run back to back before the rest are skipped (see ``TickSchedule``).
        phases: Evenly spaced tick offsets within the period that games are spread over; at most this
            many wake-ups per period.
        games_per_phase: Games a phase takes before another phase is opened.
    """

    def __init__(self, fps: float, time: Callable[[], float] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_catch_up: int = 2,
                 phases: int = 8, games_per_phase: int = 12) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be a positive number, got {fps!r}")
        if not isinstance(phases, int) or phases < 1:
            raise ValueError(f"phases must be an integer >= 1, got {phases!r}")
        if not isinstance(games_per_phase, int) or games_per_phase < 1:
            raise ValueError(f"games_per_phase must be an integer >= 1, got {games_per_phase!r}")
        self.games_per_phase = games_per_phase
        self.fps = fps
        self.max_catch_up = max_catch_up
        self.phase_count = phases
        self._time = time
        self._sleep = sleep
        self._phases: list[_Phase] = []  # created at the first add(), when there is a clock to read
        self._phase_of: dict[Tickable, _Phase] = {}
        self._task: asyncio.Task[None] | None = None

    def now(self) -> float:
        return self._time() if self._time else asyncio.get_running_loop().time()

    def __len__(self) -> int:
        return len(self._phase_of)

    def __contains__(self, game: object) -> bool:
        return game in self._phase_of

    def phase_sizes(self) -> list[int]:
        """Games per phase (for tests and logs)."""
        return [len(phase.games) for phase in self._phases]

    def add(self, game: Tickable) -> None:
        """Starts ticking ``game`` from its phase's next deadline (starting the ticker task if it was idle)."""
        if game in self._phase_of:
            return
        now = self.now()
        if not self._phases:
            period = 1.0 / self.fps
            self._phases = [
                _Phase(TickSchedule(self.fps, start=now + i * period / self.phase_count, max_catch_up=self.max_catch_up))
                for i in range(self.phase_count)
            ]
        phase = self._pick_phase()
        if not phase.games:
            phase.schedule.resume(now)  # it was idle: its missed deadlines are not this game's skipped ticks
        phase.games[game] = None
        self._phase_of[game] = phase
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"ticker-{self.fps:g}fps")

    def _pick_phase(self) -> _Phase:
        open_indexes = [i for i, phase in enumerate(self._phases) if phase.games]
        if open_indexes:
            quietest = min((self._phases[i] for i in open_indexes), key=lambda p: len(p.games))
            if len(quietest.games) < self.games_per_phase or len(open_indexes) == len(self._phases):
                return quietest
        count = len(self._phases)

        def distance_to_open(i: int) -> int:
            return min((min((i - j) % count, (j - i) % count) for j in open_indexes), default=0)

        idle = [i for i, phase in enumerate(self._phases) if not phase.games]
        return self._phases[max(idle, key=distance_to_open)]  # max() keeps the lowest index among ties

    def discard(self, game: Tickable) -> None:
        """Stops ticking ``game`` (no-op if it is not registered); safe to call from inside its step."""
        phase = self._phase_of.pop(game, None)
        if phase is not None:
            phase.games.pop(game, None)

    async def close(self) -> None:
        """Stops the ticker task; registered games are not told (their owners cancel them)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while self._phase_of:
            phase = min((p for p in self._phases if p.games), key=lambda p: p.schedule.deadline())
            delay = phase.schedule.deadline() - self.now()
            if delay > 0:
                await self._sleep(delay)
                continue  # games may have come or gone meanwhile: pick the due phase again
            _, skipped, deadline = phase.schedule.advance(self.now())
            await self._tick_phase(phase, skipped, deadline)

    async def _tick_phase(self, phase: _Phase, skipped: int, deadline: float) -> None:
        pending: list[tuple[Tickable, Awaitable[None]]] = []
        now = self._time or asyncio.get_running_loop().time
        for game in list(phase.games):
            if game not in phase.games:  # an earlier game's step ended this one (cannot happen today; cheap)
                continue
            game.stats.skipped += skipped
            game.stats.add(max(0.0, now() - deadline))
            try:
                sends = game.step()
            except Exception as exc:  # noqa: BLE001 - one game's crash must not stop the others
                self._fail(game, exc)
                continue
            if sends is not None:
                pending.append((game, sends))
        if not pending:
            return
        # One after another, not gathered: a send normally completes without suspending (the server's
        # DirectSendManager only queues packets), and a task per game per tick costs more than it saves.
        for index, (game, sends) in enumerate(pending):
            try:
                await sends
            except Exception as exc:  # noqa: BLE001 - one game's failed send must not stop the others
                self._fail(game, exc)
            except BaseException:
                # Cancelled (shutdown): close the sends never started, so none warns "never awaited".
                for _, unsent in pending[index + 1:]:
                    close = getattr(unsent, "close", None)
                    if close is not None:
                        close()
                raise

    def _fail(self, game: Tickable, error: Exception) -> None:
        self.discard(game)
        try:
            game.fail(error)
        except Exception:  # noqa: BLE001 - a broken fail() must not stop the ticker either
            log.exception("game %r could not be failed cleanly", game)
