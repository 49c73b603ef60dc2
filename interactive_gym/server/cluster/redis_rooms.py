"""A waiting room kept in Redis, so server processes on one or several machines share one queue per scene.

Atomic across processes by optimistic transactions: every operation WATCHes the room's keys, reads the waiters,
lets :func:`~interactive_gym.server.cluster.room_records.decide` (the in-process room and the scene's matchmaker)
decide, and writes the decision in MULTI/EXEC. If another process changed the room in between, EXEC fails,
and the operation reads and decides again (a bounded number of times, then :class:`RoomContentionError`).
So a participant is taken into at most one group, whichever process formed it.

Keys of a room (the ``{name}`` hash tag keeps them in one Redis Cluster slot, as MULTI needs):

- ``<prefix>:{name}:clock``: commit counter; every committed change increments it (and new waiters' ``seq``);
- ``<prefix>:{name}:waiters``: hash participant id -> waiter record;
- ``<prefix>:{name}:groups``: hash group id -> group record (formed, game not over yet);
- ``<prefix>:{name}:grouped``: hash participant id -> group id, so a repeated join is not queued again;
- ``<prefix>:{name}:commit:<token>``: written by each commit, kept a minute: if the connection breaks after EXEC
  was sent, the next attempt reads whether it was applied (and then returns its result instead of deciding again).

Every commit renews the keys' expiry (``ttl_s``), so a room nobody touches any more (an experiment that ended,
a worker that crashed with groups in it) leaves nothing behind for ever.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from interactive_gym.server.cluster.room_records import (
    GROUP_ID_PATTERN,
    Group,
    Plan,
    Stored,
    check_attrs,
    check_participant_id,
    check_room_name,
    decide,
    decode_group,
    decode_waiters,
    encode_group,
    load_room,
    requeue_plan,
)
from interactive_gym.server.waiting_room import Matchmaker, RoomSnapshot, Waiter, WaitingRoom, fifo_matchmaker

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 64
DEFAULT_MAX_WAITERS = 10_000
DEFAULT_TTL_S = 24 * 3600
COMMIT_PROOF_TTL_S = 60  # how long a commit's proof key says it was applied (read back after a lost reply)
BACKOFF_S = 0.002  # up to this many seconds times the attempt number, at random, between conflicting attempts


class RoomContentionError(RuntimeError):
    """The room changed under every one of the attempts; nothing was changed by this operation."""


class RoomFullError(ValueError):
    """The room holds ``max_waiters`` already; the participant was not queued."""


@dataclass(frozen=True)
class _Read:
    """What a transaction read after its WATCH."""

    clock: int
    waiters: dict[str, Stored]
    grouped: str | None  # the group id of the participant asked about, if any
    group: Group | None  # the group record asked about, if any
    committed: bool = False  # the previous attempt's commit was applied (its proof key exists)


class RedisWaitingRoom:
    """The queue of one game scene, in Redis (same operations and results as :class:`WaitingRoom`).

    Every ``now`` passed in must come from one clock all processes share (``time.time()`` on NTP-synchronised
    machines), never ``time.monotonic()``, whose zero differs per process: arrival order and expiry compare the
    times that different processes wrote.

    Args:
        client: A ``redis.asyncio.Redis`` client (its pool gives each transaction its own connection).
        name: The room (the scene id); 1-128 characters, no whitespace or braces.
        group_size: Humans per game.
        timeout_s: How long one may wait before :meth:`expire` returns them.
        matchmaker: Group selection rule (FIFO by default); every process must be given the same rule.
        prefix: Key prefix (one per experiment, so two experiments on one Redis do not share rooms).
        max_waiters: Joins beyond this many waiters are refused with :class:`RoomFullError`.
        max_attempts: Conflicting attempts before :class:`RoomContentionError`.
        ttl_s: Expiry of the room's keys, renewed by every change.
    """

    def __init__(self, client: Redis, name: str, group_size: int, timeout_s: float,
                 matchmaker: Matchmaker = fifo_matchmaker, *, prefix: str = "ig",
                 max_waiters: int = DEFAULT_MAX_WAITERS, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 ttl_s: int = DEFAULT_TTL_S) -> None:
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        if max_waiters < 1 or max_attempts < 1 or ttl_s < 1:
            raise ValueError("max_waiters, max_attempts and ttl_s must be at least 1")
        self.client = client
        self.name = check_room_name(name)
        self.group_size = group_size
        self.timeout_s = timeout_s
        self.matchmaker = matchmaker
        self.max_waiters = max_waiters
        self.max_attempts = max_attempts
        self.ttl_s = ttl_s
        self._base = base = f"{check_room_name(prefix)}:{{{self.name}}}"
        self._clock, self._waiters = f"{base}:clock", f"{base}:waiters"
        self._groups, self._grouped = f"{base}:groups", f"{base}:grouped"
        # Operations of this process on this room take turns: they would only make each other retry.
        self._turn = asyncio.Lock()
        self.conflicts = 0  # attempts that found the room changed under them (re-read and decided again)
        self.last_seen = RoomSnapshot(())

    async def join(self, participant_id: str, now: float, rtt_ms: float | None = None, present: bool = True,
                   attrs: dict[str, Any] | None = None) -> Group | None:
        """Queues a participant and returns the group that can start now (its members leave the room), if any.

        Idempotent like :meth:`WaitingRoom.join` (a second join keeps the place and arrival time; ``attrs`` are
        those of the first), and a participant in a formed group is not queued again: their join returns None
        (:meth:`group_of` tells their group).
        """
        pid, attrs = check_participant_id(participant_id), check_attrs(attrs)

        def plan(read: _Read, group_id: str) -> Plan[Group | None]:
            if read.grouped is not None:
                return Plan(None)
            new = None
            if pid not in read.waiters:
                if len(read.waiters) >= self.max_waiters:
                    raise RoomFullError(f"waiting room {self.name!r} holds {self.max_waiters} already")
                new = Stored(read.clock + 1, Waiter(pid, now, rtt_ms, present, attrs))
            return self._formed(self._decide(read, lambda room: room.join(pid, now, rtt_ms, present),
                                             group_id, new))

        return await self._transact(plan, participant=pid)

    async def set_presence(self, participant_id: str, present: bool, rtt_ms: float | None = None) -> Group | None:
        """Marks a waiter present/absent and updates their RTT; a present waiter may complete a group."""
        pid = check_participant_id(participant_id)

        def plan(read: _Read, group_id: str) -> Plan[Group | None]:
            if pid not in read.waiters:
                return Plan(None)
            return self._formed(self._decide(read, lambda room: room.set_presence(pid, present, rtt_ms), group_id))

        return await self._transact(plan)

    async def leave(self, participant_id: str) -> bool:
        """Removes a waiter; True if they were waiting."""
        pid = check_participant_id(participant_id)

        def plan(read: _Read, group_id: str) -> Plan[bool]:
            return Plan(True, removes=[pid]) if pid in read.waiters else Plan(False)

        return await self._transact(plan)

    async def expire(self, now: float, owned: Callable[[str], bool] | None = None) -> list[str]:
        """Removes and returns everyone who has waited ``timeout_s`` or longer (each to exactly one caller);
        only those ``owned`` says yes to, if given (each process expires the waiters it serves)."""
        return await self._transact(lambda read, group_id: self._decide(read, lambda room: room.expire(now, owned),
                                                                        group_id))

    async def requeue(self, group_id: str) -> list[str]:
        """A group whose game could not start goes back to the queue, arrival times kept (no matching, as
        :meth:`WaitingRoom.restore`); returns who went back (not those waiting again already)."""
        gid = _check_group_id(group_id)

        def plan(read: _Read, _: str) -> Plan[list[str]]:
            return Plan([]) if read.group is None else requeue_plan(read.waiters, read.group)

        return await self._transact(plan, group=gid)

    async def release(self, group_id: str) -> bool:
        """Forgets a formed group (its game is over): its members may be queued again. True if it existed."""
        gid = _check_group_id(group_id)

        def plan(read: _Read, _: str) -> Plan[bool]:
            return Plan(False) if read.group is None else Plan(True, dropped=read.group)

        return await self._transact(plan, group=gid)

    async def group_of(self, participant_id: str) -> Group | None:
        """The formed group the participant is in, if any."""
        gid = await self.client.hget(self._grouped, check_participant_id(participant_id))
        if gid is None:
            return None
        raw = await self.client.hget(self._groups, gid)
        return None if raw is None else decode_group(_text(gid), raw)

    async def snapshot(self) -> RoomSnapshot:
        """The waiters now, in queue order (one atomic read); also kept as :attr:`last_seen`."""
        self.last_seen = self._room(decode_waiters(await self.client.hgetall(self._waiters))).snapshot()
        return self.last_seen

    def waiting(self) -> list[str]:
        """The waiters of the last :meth:`snapshot`, without I/O (for the dashboard; may be a moment old)."""
        return self.last_seen.waiting()

    def waiter(self, participant_id: str) -> Waiter | None:
        """A waiter of the last :meth:`snapshot`, without I/O."""
        return self.last_seen.waiter(participant_id)

    def _room(self, stored: dict[str, Stored]) -> WaitingRoom:
        return load_room(stored, self.group_size, self.timeout_s, self.matchmaker)

    def _decide(self, read: _Read, operation: Callable[[WaitingRoom], T], group_id: str,
                new: Stored | None = None) -> Plan[T]:
        return decide(read.waiters, operation, group_size=self.group_size, timeout_s=self.timeout_s,
                      matchmaker=self.matchmaker, group_id=group_id, new=new)

    @staticmethod
    def _formed(plan: Plan[list[str] | None]) -> Plan[Group | None]:
        return Plan(plan.formed, plan.writes, plan.removes, plan.formed, plan.dropped, plan.error)

    async def _transact(self, plan_for: Callable[[_Read, str], Plan[T]], participant: str | None = None,
                        group: str | None = None) -> T:
        """Reads under WATCH, plans, commits; on a conflict reads and plans again (up to ``max_attempts``)."""
        sent: tuple[str, Plan[T]] | None = None  # a commit whose EXEC failed: applied or not, we do not know yet
        async with self._turn:
            for attempt in range(1, self.max_attempts + 1):
                async with self.client.pipeline(transaction=True) as pipe:
                    try:
                        read = await self._read(pipe, participant, group, None if sent is None else sent[0])
                        if read.committed and sent is not None:
                            # The connection broke after EXEC reached the server: it was applied. Its result
                            # is ours (deciding again would lose a formed group: its members no longer wait).
                            return sent[1].outcome()
                        token = secrets.token_hex(8)
                        plan = plan_for(read, token)
                        if not plan.changes_nothing:
                            pipe.multi()
                            self._write(pipe, read.clock + 1, plan, token)
                            sent = (token, plan)
                            await pipe.execute()
                        # A decision that writes nothing needs no commit: it holds at the read (a participant is
                        # never both waiting and grouped). Leaving the block UNWATCHes.
                        return plan.outcome()
                    except WatchError:  # redis-py also reports a connection lost while watching as WatchError
                        self.conflicts += 1
                # Random back-off so two processes that keep colliding fall out of step.
                await asyncio.sleep(random.uniform(0, BACKOFF_S * attempt))
            if sent is not None and await self.client.exists(self._proof(sent[0])):
                return sent[1].outcome()  # the last attempt's reply was lost, but it was applied
        raise RoomContentionError(f"waiting room {self.name!r}: changed by other processes during each of "
                                  f"{self.max_attempts} attempts; nothing was changed")

    async def _read(self, pipe: Pipeline, participant: str | None, group: str | None,
                    sent_token: str | None) -> _Read:
        await pipe.watch(self._clock, self._waiters, self._groups, self._grouped)
        committed = sent_token is not None and bool(await pipe.exists(self._proof(sent_token)))
        clock = await pipe.get(self._clock)
        grouped = None if participant is None else await pipe.hget(self._grouped, participant)
        waiters = decode_waiters(await pipe.hgetall(self._waiters))
        record = None if group is None else await pipe.hget(self._groups, group)
        return _Read(int(clock or 0), waiters, None if grouped is None else _text(grouped),
                     None if record is None or group is None else decode_group(group, record), committed)

    def _proof(self, token: str) -> str:
        return f"{self._base}:commit:{token}"

    def _write(self, pipe: Pipeline, clock: int, plan: Plan[Any], token: str) -> None:
        pipe.set(self._clock, clock)
        pipe.set(self._proof(token), 1, ex=COMMIT_PROOF_TTL_S)
        if plan.removes:
            pipe.hdel(self._waiters, *plan.removes)
        if plan.writes:
            writes: Mapping[Any, Any] = plan.writes  # redis-py's mapping type is invariant in its keys
            pipe.hset(self._waiters, mapping=writes)
        if plan.dropped is not None:
            pipe.hdel(self._groups, plan.dropped.group_id)
            pipe.hdel(self._grouped, *plan.dropped.members)
        if plan.formed is not None:
            pipe.hset(self._groups, plan.formed.group_id, encode_group(plan.formed))
            pipe.hset(self._grouped, mapping=dict.fromkeys(plan.formed.members, plan.formed.group_id))
        for key in (self._clock, self._waiters, self._groups, self._grouped):
            pipe.expire(key, self.ttl_s)


def _text(raw: str | bytes) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _check_group_id(group_id: Any) -> str:
    if not isinstance(group_id, str) or not GROUP_ID_PATTERN.fullmatch(group_id):
        raise ValueError(f"not a group id: {group_id!r:.80}")
    return group_id
