"""Waiting rooms: participants of a multi-human game scene wait here until a group can start.

Pure and single-threaded by design: the asyncio server calls it from one event loop, so each call is
atomic; a participant can be in at most one room entry and leaves it the moment a group forms, so nobody
ends up in two games however many arrive at once. Time is passed in, never read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Waiter:
    """One participant waiting."""

    participant_id: str
    joined_at: float
    rtt_ms: float | None = None
    present: bool = True
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FormedGroup:
    """A group that formed in a room: its id (kept by the game, for a requeue or a release) and its members in
    the matchmaker's (role) order."""

    group_id: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class RoomSnapshot:
    """The waiters of a room at one moment, in queue order (what the waiting notices are built from)."""

    waiters: tuple[Waiter, ...]

    def waiting(self) -> list[str]:
        return [w.participant_id for w in self.waiters]

    def position(self, participant_id: str) -> int | None:
        """1-based place in the queue, or None."""
        for place, waiter in enumerate(self.waiters, start=1):
            if waiter.participant_id == participant_id:
                return place
        return None

    def waiter(self, participant_id: str) -> Waiter | None:
        return next((w for w in self.waiters if w.participant_id == participant_id), None)


class MatchmakerError(ValueError):
    """The scene's matchmaker raised, or picked a group that is not one of this room (nobody was matched)."""


# Picks a group from the waiters (oldest first); returns their ids, or None if no group can form yet.
Matchmaker = Callable[[Sequence[Waiter], int], list[str] | None]


def fifo_matchmaker(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
    """The first ``group_size`` present waiters, in arrival order."""
    present = [w.participant_id for w in waiters if w.present]
    return present[:group_size] if len(present) >= group_size else None


def latency_aware_matchmaker(max_rtt_ms: float) -> Matchmaker:
    """Groups the oldest present waiter with the next arrivals whose RTT keeps the pair under ``max_rtt_ms``.

    The sum of two participants' RTTs to the server bounds their RTT to each other (through the server), so
    it is used as the estimate of their peer latency; waiters without an RTT sample are treated as unknown and
    only matched with each other after the oldest waits alone.
    """

    def pick(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
        present = [w for w in waiters if w.present]
        for i, anchor in enumerate(present):
            group = [anchor]
            for other in present[i + 1:]:
                if len(group) == group_size:
                    break
                if all(_pair_ok(member, other, max_rtt_ms) for member in group):
                    group.append(other)
            if len(group) == group_size:
                return [w.participant_id for w in group]
        return None

    return pick


def remembered_group_matchmaker(group_of: Callable[[str], Sequence[str] | None]) -> Matchmaker:
    """Forms only the groups remembered from an earlier scene (``GymScene(keep_group_from=...)``).

    ``group_of(participant_id)`` gives the group the participant played in there (in role order) or None. The
    oldest waiter whose whole remembered group is present starts with exactly that group, in that order (so each
    member keeps their role); nobody is ever matched with someone outside their group. Waiters with no remembered
    group (they played in no group there) are grouped first come, first served among themselves.
    """

    def pick(waiters: Sequence[Waiter], group_size: int) -> list[str] | None:
        present = {w.participant_id for w in waiters if w.present}
        loners: list[str] = []
        for waiter in waiters:
            if waiter.participant_id not in present:
                continue
            group = group_of(waiter.participant_id)
            if group is None or waiter.participant_id not in group:
                loners.append(waiter.participant_id)
                if len(loners) == group_size:
                    return loners
            elif len(group) == group_size and all(member in present for member in group):
                return list(group)
        return None

    return pick


def _pair_ok(a: Waiter, b: Waiter, max_rtt_ms: float) -> bool:
    if a.rtt_ms is None or b.rtt_ms is None:
        return a.rtt_ms is None and b.rtt_ms is None
    return a.rtt_ms + b.rtt_ms <= max_rtt_ms


class WaitingRoom:
    """The queue of one game scene.

    Args:
        group_size: Humans per game.
        timeout_s: How long one may wait before :meth:`expire` returns them.
        matchmaker: Group selection rule (FIFO by default).
    """

    def __init__(self, group_size: int, timeout_s: float, matchmaker: Matchmaker = fifo_matchmaker) -> None:
        if group_size < 1:
            raise ValueError("group_size must be at least 1")
        self.group_size = group_size
        self.timeout_s = timeout_s
        self.matchmaker = matchmaker
        self._waiters: dict[str, Waiter] = {}
        self.matched: list[Waiter] = []  # the entries of the last group formed (to restore them if it fails)

    @classmethod
    def from_waiters(cls, group_size: int, timeout_s: float, ordered: Iterable[Waiter],
                     matchmaker: Matchmaker = fifo_matchmaker) -> WaitingRoom:
        """A room holding ``ordered`` in exactly the given queue order (the waiters themselves, not copies).

        Raises:
            ValueError: a participant appears twice.
        """
        room = cls(group_size, timeout_s, matchmaker)
        for waiter in ordered:
            if waiter.participant_id in room._waiters:
                raise ValueError(f"waiter {waiter.participant_id!r} appears twice")
            room._waiters[waiter.participant_id] = waiter
        return room

    def join(self, participant_id: str, now: float, rtt_ms: float | None = None, present: bool = True,
             attrs: dict[str, Any] | None = None) -> list[str] | None:
        """Adds a participant (idempotent: a second join keeps their place, arrival time and first ``attrs``)
        and returns a group if one can start now (its members leave).

        ``attrs`` are what a custom matchmaker may read about the waiter (:attr:`Waiter.attrs`).
        """
        waiter = self._waiters.get(participant_id)
        if waiter is None:
            self._waiters[participant_id] = Waiter(participant_id, now, rtt_ms, present, dict(attrs or {}))
        else:
            waiter.present = present
            if rtt_ms is not None:
                waiter.rtt_ms = rtt_ms
        return self._try_match()

    def restore(self, waiters: list[Waiter]) -> None:
        """Puts waiters back (a group whose game failed to start), keeping their arrival times; no matching,
        so a game that cannot start is not retried in a tight loop. Arrival order is kept."""
        merged = {w.participant_id: w for w in waiters if w.participant_id not in self._waiters}
        merged.update(self._waiters)
        self._waiters = dict(sorted(merged.items(), key=lambda item: item[1].joined_at))

    def waiter(self, participant_id: str) -> Waiter | None:
        return self._waiters.get(participant_id)

    def set_presence(self, participant_id: str, present: bool, rtt_ms: float | None = None) -> list[str] | None:
        """Marks a waiter present/absent (hidden tab, silence) and updates RTT; may complete a group."""
        waiter = self._waiters.get(participant_id)
        if waiter is None:
            return None
        waiter.present = present
        if rtt_ms is not None:
            waiter.rtt_ms = rtt_ms
        return self._try_match() if present else None

    def leave(self, participant_id: str) -> bool:
        """Removes a participant; True if they were waiting."""
        return self._waiters.pop(participant_id, None) is not None

    def expire(self, now: float, owned: Callable[[str], bool] | None = None) -> list[str]:
        """Removes and returns everyone who has waited ``timeout_s`` or longer (only those ``owned`` says yes to,
        if given: with several server processes, each expires the waiters it serves)."""
        expired = [pid for pid, w in self._waiters.items()
                   if now - w.joined_at >= self.timeout_s and (owned is None or owned(pid))]
        for pid in expired:
            del self._waiters[pid]
        return expired

    def position(self, participant_id: str) -> int | None:
        """1-based place in the queue, or None."""
        for place, pid in enumerate(self._waiters, start=1):
            if pid == participant_id:
                return place
        return None

    def waiting(self) -> list[str]:
        return list(self._waiters)

    def snapshot(self) -> RoomSnapshot:
        """The waiters now, in queue order (copies: later changes to the room do not show in it)."""
        return RoomSnapshot(tuple(dataclasses.replace(w, attrs=dict(w.attrs)) for w in self._waiters.values()))

    def _try_match(self) -> list[str] | None:
        try:
            group = self.matchmaker(list(self._waiters.values()), self.group_size)
        except Exception as err:  # noqa: BLE001 - a researcher's rule: reported as the matchmaker's failure
            raise MatchmakerError(f"the matchmaker raised {err!r}") from err
        if group is None:
            return None
        # A custom matchmaker must pick distinct present waiters of this room, exactly group_size of them.
        if len(set(group)) != self.group_size or any(
                pid not in self._waiters or not self._waiters[pid].present for pid in group):
            raise MatchmakerError(f"the matchmaker returned an invalid group {group!r}")
        self.matched = [self._waiters.pop(pid) for pid in group]
        return list(group)
