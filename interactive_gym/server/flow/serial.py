"""One participant's events, one at a time.

python-socketio runs every incoming event in its own task, so two events of one participant (a double click,
a reconnect racing a disconnect) would interleave across every ``await``. :class:`ParticipantSerializer` gives
each participant a FIFO lock: a handler holds it for the whole event, and work that must touch a participant
from elsewhere (a game that ended, a waiting-room timeout) is posted to the same queue instead of running
beside an event. Locks are per participant, so different participants never wait for each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

log = logging.getLogger("interactive_gym.flow")


class ParticipantSerializer:
    """FIFO locks and a posting queue, per participant id."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.failures = 0

    @contextlib.asynccontextmanager
    async def hold(self, participant_id: str) -> AsyncIterator[None]:
        """Runs the body with the participant's lock held (waits for earlier events of theirs)."""
        lock = self._locks.get(participant_id)
        if lock is None:
            lock = self._locks[participant_id] = asyncio.Lock()
        async with lock:
            yield

    def post(self, participant_id: str, work: Callable[[], Awaitable[None]], what: str) -> None:
        """Runs ``work`` under the participant's lock after the events queued before it.

        Safe to call from inside one of that participant's own handlers (it runs after the handler ends).
        A failure is logged and counted; it never reaches the caller.
        """

        async def run() -> None:
            try:
                async with self.hold(participant_id):
                    await work()
            except Exception:  # noqa: BLE001 - one participant's failure must not stop anyone else's flow
                self.failures += 1
                log.exception("%s failed for participant %s", what, participant_id)

        task = asyncio.get_running_loop().create_task(run(), name=f"{what}:{participant_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Waits until every posted piece of work has run (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
