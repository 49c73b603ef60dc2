"""One waiting room's operations as the modes use them (:class:`Room`), and the in-process room behind them.

Two implementations answer the same calls: :class:`LocalRoom` (one server process, today's default) wraps the
pure :class:`~interactive_gym.server.waiting_room.WaitingRoom`; the Redis room
(:class:`~interactive_gym.server.cluster.redis_rooms.RedisWaitingRoom`) shares one queue between server
processes. A formed group carries a group id: the members stay "grouped" (a repeated join does not queue them
again) until the caller either requeues the group (its game could not start) or releases it (its game started,
and the mode now keeps its members out of the queue).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from interactive_gym.server.cluster.room_records import check_attrs
from interactive_gym.server.waiting_room import (
    FormedGroup,
    Matchmaker,
    RoomSnapshot,
    Waiter,
    WaitingRoom,
    fifo_matchmaker,
)


class Room(Protocol):
    """The queue of one game scene, whichever process or store holds it.

    Every ``now`` is a time of the caller's clock; with several processes it must be one clock they share.
    """

    group_size: int
    timeout_s: float

    async def join(self, participant_id: str, now: float, rtt_ms: float | None = None, present: bool = True,
                   attrs: dict[str, Any] | None = None) -> FormedGroup | None:
        """Queues a participant (idempotent; a grouped one is not queued again); the group that can start now."""
        ...

    async def set_presence(self, participant_id: str, present: bool,
                           rtt_ms: float | None = None) -> FormedGroup | None:
        """Marks a waiter present/absent; a present waiter may complete a group."""
        ...

    async def leave(self, participant_id: str) -> bool:
        """Removes a waiter; True if they were waiting."""
        ...

    async def expire(self, now: float, owned: Callable[[str], bool] | None = None) -> list[str]:
        """Removes and returns the waiters past the timeout (only those ``owned`` says yes to, if given)."""
        ...

    async def requeue(self, group_id: str) -> list[str]:
        """Puts a formed group back as it waited (no matching); who went back."""
        ...

    async def release(self, group_id: str) -> bool:
        """Forgets a formed group; its members may be queued again. True if it existed."""
        ...

    async def snapshot(self) -> RoomSnapshot:
        """The waiters now, in queue order."""
        ...

    def waiting(self) -> list[str]:
        """The waiters as this process last saw them, without I/O (the dashboard)."""
        ...

    def waiter(self, participant_id: str) -> Waiter | None:
        """One waiter as this process last saw them, without I/O."""
        ...


class LocalRoom:
    """The in-process room: a :class:`WaitingRoom` plus the formed groups not yet requeued or released.

    Each call completes without awaiting anything, so on one event loop every operation is atomic.

    Args:
        group_size: Humans per game.
        timeout_s: How long one may wait before :meth:`expire` returns them.
        matchmaker: Group selection rule (FIFO by default).
    """

    def __init__(self, group_size: int, timeout_s: float, matchmaker: Matchmaker = fifo_matchmaker) -> None:
        self.room = WaitingRoom(group_size, timeout_s, matchmaker)
        self.group_size = group_size
        self.timeout_s = timeout_s
        self._groups: dict[str, tuple[FormedGroup, list[Waiter]]] = {}  # group id -> group, entries as they waited
        self._grouped: dict[str, str] = {}  # participant id -> group id

    async def join(self, participant_id: str, now: float, rtt_ms: float | None = None, present: bool = True,
                   attrs: dict[str, Any] | None = None) -> FormedGroup | None:
        checked = check_attrs(attrs)  # the same limits as the Redis room's
        if participant_id in self._grouped:
            return None
        return self._formed(lambda: self.room.join(participant_id, now, rtt_ms, present, checked))

    async def set_presence(self, participant_id: str, present: bool,
                           rtt_ms: float | None = None) -> FormedGroup | None:
        return self._formed(lambda: self.room.set_presence(participant_id, present, rtt_ms))

    async def leave(self, participant_id: str) -> bool:
        return self.room.leave(participant_id)

    async def expire(self, now: float, owned: Callable[[str], bool] | None = None) -> list[str]:
        return self.room.expire(now, owned)

    async def requeue(self, group_id: str) -> list[str]:
        found = self._drop(group_id)
        if found is None:
            return []
        back = [w for w in found[1] if self.room.waiter(w.participant_id) is None]
        self.room.restore(back)
        return [w.participant_id for w in back]

    async def release(self, group_id: str) -> bool:
        return self._drop(group_id) is not None

    async def snapshot(self) -> RoomSnapshot:
        return self.room.snapshot()

    def waiting(self) -> list[str]:
        return self.room.waiting()

    def waiter(self, participant_id: str) -> Waiter | None:
        return self.room.waiter(participant_id)

    def _formed(self, attempt: Callable[[], list[str] | None]) -> FormedGroup | None:
        self.room.matched = []
        members = attempt()
        if members is None:
            return None
        group = FormedGroup(secrets.token_hex(8), tuple(members))
        self._groups[group.group_id] = (group, list(self.room.matched))
        self._grouped.update(dict.fromkeys(group.members, group.group_id))
        return group

    def _drop(self, group_id: str) -> tuple[FormedGroup, list[Waiter]] | None:
        found = self._groups.pop(group_id, None)
        if found is not None:
            for member in found[0].members:
                self._grouped.pop(member, None)
        return found
