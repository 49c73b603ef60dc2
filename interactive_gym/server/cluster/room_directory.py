"""Which other server processes have members of a room this process has members of: the rule that decides
whether an emit to that room must be published through Redis.

Pure bookkeeping (no I/O); :mod:`~interactive_gym.server.cluster.redis_emits` feeds it. python-socketio keeps
room membership per process (a process knows only its own sockets' rooms), so without shared knowledge every
emit to a room has to be published for the other processes to deliver to their members. Every game sends a
render to its room every tick, so that would make every process decode every other process's renders.

Instead every process keeps, in a Redis set per room, its host id while it has at least one member of the
room, and announces each change on a channel. A process with members of a room holds a :class:`RoomView`:
a snapshot of the set (read in the same transaction that added itself) updated by the announcements that
arrive after it subscribed. The view answers :meth:`RoomDirectory.only_here`:

- ``True`` only when the view is complete (its snapshot arrived) and names no other host: the emit goes to
  the local members only, and nothing is published;
- ``False`` otherwise (no view because this process has no member, snapshot still on its way, another host
  has members): the emit is published, as python-socketio would.

Why the view is complete once the snapshot arrived: another host adds itself to the set *before* it announces
(one connection, in that order), and this process subscribed *before* it asked for the snapshot. So a change
made before the snapshot is in it, and a change made after is announced after the subscription started and
reaches this view. Announcements that arrive while the snapshot is on its way are kept and applied on top of
it in their order (each host's announcements come in the order it made them), so the last word of every host
wins. After a lost subscription (announcements may have been missed) every view waits for a new snapshot.

An error is always on the side of publishing: a host that crashed stays in the set and only causes extra
publishes to rooms it had members of.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

RoomKey = tuple[str, str]  # (namespace, room)


@dataclass
class RoomView:
    """This process's knowledge of the other hosts with members of one room.

    Attributes:
        generation: Increases whenever a new snapshot is requested; a snapshot of an older request is ignored.
        hosts: Other hosts with members, once the snapshot arrived; ``None`` while it is on its way.
        pending: Announcements ``(host, present)`` that arrived while the snapshot was on its way, in order.
    """

    generation: int
    hosts: set[str] | None = None
    pending: list[tuple[str, bool]] = field(default_factory=list)


class RoomDirectory:
    """Views of the rooms this process has members of.

    Args:
        host_id: This process's host id (never counted as "another host").
    """

    def __init__(self, host_id: str) -> None:
        self.host_id = host_id
        self.subscribed = False
        self._views: dict[RoomKey, RoomView] = {}
        self._generations = 0

    def __len__(self) -> int:
        return len(self._views)

    def __contains__(self, key: object) -> bool:
        return key in self._views

    def opened(self, key: RoomKey) -> int | None:
        """This process now has a member of the room (it had none).

        Returns:
            The generation to request a snapshot for, or ``None`` while not subscribed yet (the snapshots of
            every view are requested by :meth:`resubscribed`).
        """
        view = RoomView(self._next_generation())
        self._views[key] = view
        return view.generation if self.subscribed else None

    def closed(self, key: RoomKey) -> None:
        """This process has no member of the room any more: its view is dropped (emits publish again)."""
        self._views.pop(key, None)

    def snapshot(self, key: RoomKey, generation: int, hosts: Iterable[str]) -> None:
        """The room's set as read by the request of ``generation``; announcements kept meanwhile apply on top."""
        view = self._views.get(key)
        if view is None or view.generation != generation:
            return  # the room was closed (and maybe reopened) or resynchronised since that request
        known = {host for host in hosts if host != self.host_id}
        for host, present in view.pending:
            _apply(known, host, present)
        view.hosts, view.pending = known, []

    def announced(self, key: RoomKey, host: str, present: bool) -> None:
        """``host`` now has (``present``) or no longer has members of the room."""
        if host == self.host_id:
            return
        view = self._views.get(key)
        if view is None:
            return  # no local member: emits to this room publish anyway, nothing to keep
        if view.hosts is None:
            view.pending.append((host, present))
        else:
            _apply(view.hosts, host, present)

    def resubscribed(self) -> list[tuple[RoomKey, int]]:
        """The subscription (re)started: announcements may have been missed, so every view waits for a new
        snapshot. Returns the ``(room, generation)`` snapshots to request."""
        self.subscribed = True
        requests = []
        for key, view in self._views.items():
            view.generation = self._next_generation()
            view.hosts, view.pending = None, []
            requests.append((key, view.generation))
        return requests

    def unsubscribed(self) -> None:
        """The subscription broke: until it is back, no view can be trusted to be complete."""
        self.subscribed = False
        for view in self._views.values():
            view.hosts, view.pending = None, []
            view.generation = self._next_generation()

    def only_here(self, key: RoomKey) -> bool:
        """Whether every member of the room is known to be connected to this process (nothing to publish)."""
        view = self._views.get(key)
        return view is not None and view.hosts is not None and not view.hosts

    def remote_hosts(self, key: RoomKey) -> frozenset[str] | None:
        """The other hosts with members of the room, or ``None`` when this process does not know."""
        view = self._views.get(key)
        return None if view is None or view.hosts is None else frozenset(view.hosts)

    def _next_generation(self) -> int:
        self._generations += 1
        return self._generations


def _apply(hosts: set[str], host: str, present: bool) -> None:
    if present:
        hosts.add(host)
    else:
        hosts.discard(host)
