"""Which worker serves each participant, kept in Redis, and the handovers that move one to another worker.

A participant's state lives in the memory of exactly one worker (the one their page is connected to) and is
written through to the shared database. Redis holds the directory:

- ``<prefix>:serves``: hash participant id -> worker name (expires a week after the last claim);
- ``<prefix>:alive:<worker>``: set by each worker every ``HEARTBEAT_S`` with a ``ALIVE_TTL_S`` expiry, so a worker
  that died stops counting within seconds (its participants may then be claimed by any other);
- channel ``<prefix>:handover``: "worker X wants participant P" (a group formed on X includes P).

:meth:`Placement.claim` decides, atomically (one Lua script), who serves a participant whose page connected
to this worker: the recorded worker if it is alive and not this one (the page is told to go there), else this
worker (recorded). So two workers never both serve one participant, even when two tabs connect at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis

from interactive_gym.server.cluster.options import WORKER_NAME

log = logging.getLogger("interactive_gym.cluster.placement")

HEARTBEAT_S = 1.0
ALIVE_TTL_S = 5
RESUBSCRIBE_S = 1.0
# Renewed by every claim: the directory of a study nobody joins any more leaves Redis after a week (a page that
# comes back later is claimed afresh and its participant taken over from the database).
DIRECTORY_TTL_S = 7 * 24 * 3600
MAX_HANDOVER_CHARS = 512  # a handover message is a participant id and a worker name

# KEYS[1] the serves hash; ARGV: participant id, this worker, the alive-key prefix, the hash's expiry.
_CLAIM = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner and owner ~= ARGV[2] and redis.call('EXISTS', ARGV[3] .. owner) == 1 then
  return owner
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return ARGV[2]
"""
# KEYS[1] the serves hash; ARGV: participant id, the worker giving them up, the worker taking them.
_ASSIGN = """
local owner = redis.call('HGET', KEYS[1], ARGV[1])
if owner == ARGV[2] or not owner then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""

HandoverHandler = Callable[[str, str], Awaitable[None]]


def parse_handover(raw: Any) -> tuple[str, str] | None:
    """``(participant id, wanting worker)`` of a handover message, or None if it is not one (never raises)."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or len(raw) > MAX_HANDOVER_CHARS:
        return None
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    pid, to = message.get("pid"), message.get("to")
    if not isinstance(pid, str) or not 0 < len(pid) <= 128 or not isinstance(to, str) or not WORKER_NAME.match(to):
        return None
    return pid, to


class Placement:
    """This worker's view of the directory.

    Args:
        client: A ``redis.asyncio.Redis`` client (shared with the waiting rooms).
        prefix: Key prefix, one per experiment.
        worker: This worker's name.
    """

    def __init__(self, client: Redis, prefix: str, worker: str) -> None:
        self.client = client
        self.worker = worker
        self._serves = f"{prefix}:serves"
        self._alive = f"{prefix}:alive:"
        self._channel = f"{prefix}:handover"
        self._tasks: list[asyncio.Task[None]] = []
        self.handovers_asked = 0
        self.handovers_received = 0

    async def start(self, on_handover: HandoverHandler) -> None:
        """Announces this worker alive (before returning, so a page it accepts can be placed) and starts the
        heartbeat and the handover listener."""
        await self._beat()
        self._tasks = [asyncio.create_task(self._heartbeat(), name="placement-heartbeat"),
                       asyncio.create_task(self._listen(on_handover), name="placement-handovers")]

    async def close(self) -> None:
        """Stops the tasks; this worker's alive key is removed (its participants may be claimed at once)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        with contextlib.suppress(Exception):  # shutting down: Redis may be gone already
            await self.client.delete(self._alive + self.worker)

    async def claim(self, participant_id: str) -> str:
        """The worker that serves ``participant_id`` from now on: another live worker that already does, or this
        one (then recorded)."""
        owner = await self.client.eval(_CLAIM, 1, self._serves, participant_id, self.worker, self._alive,
                                       DIRECTORY_TTL_S)
        return owner.decode() if isinstance(owner, bytes) else str(owner)

    async def assign(self, participant_id: str, to: str) -> bool:
        """Records ``to`` as the participant's worker if this one served them (or nobody did)."""
        return bool(await self.client.eval(_ASSIGN, 1, self._serves, participant_id, self.worker, to))

    async def ask_for(self, participant_ids: Iterable[str]) -> None:
        """Asks the workers serving these participants to hand them over to this worker."""
        for pid in participant_ids:
            self.handovers_asked += 1
            await self.client.publish(self._channel, json.dumps({"pid": pid, "to": self.worker}))

    async def alive(self, worker: str) -> bool:
        return bool(await self.client.exists(self._alive + worker))

    async def _beat(self) -> None:
        await self.client.set(self._alive + self.worker, "1", ex=ALIVE_TTL_S)

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._beat()
            except Exception:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
                log.warning("worker %s: heartbeat to Redis failed", self.worker, exc_info=True)

    async def _listen(self, on_handover: HandoverHandler) -> None:
        while True:
            try:
                async with self.client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        parsed = parse_handover(message.get("data"))
                        if parsed is None or parsed[1] == self.worker:
                            continue
                        self.handovers_received += 1
                        try:
                            await on_handover(*parsed)
                        except Exception:  # noqa: BLE001 - one handover must not stop the listener
                            log.exception("worker %s: handover of %s failed", self.worker, parsed[0])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - lost subscription: resubscribe
                log.warning("worker %s: handover subscription lost; resubscribing", self.worker, exc_info=True)
                await asyncio.sleep(RESUBSCRIBE_S)
