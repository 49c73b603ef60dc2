"""Groups a worker formed whose members are still on other workers: who is awaited, and when to give up.

With several workers the shared waiting room (Redis) can group participants whose pages are connected to
different workers. A game runs in one process (every tick would otherwise cross Redis), so the worker that
formed the group hosts it: the other workers hand their members over (their pages reconnect here) and the
game starts once every member is here. Pure bookkeeping, no I/O; :class:`~interactive_gym.server.modes.
waiting.RoomSet` feeds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

# Long enough for a page to reconnect through the front (a websocket handshake, the participant's row read
# from the database), short enough that the partners waiting here do not notice much.
GATHER_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Gathering:
    """One group awaiting members from other workers.

    Attributes:
        scene_id: The game scene.
        group_id: The shared room's group id.
        members: Every member, in role order.
        deadline: Wall-clock time after which the group goes back to the queue without the absent.
    """

    scene_id: str
    group_id: str
    members: tuple[str, ...]
    deadline: float


class Gatherings:
    """The groups this worker is gathering."""

    def __init__(self) -> None:
        self._by_group: dict[str, Gathering] = {}

    def __len__(self) -> int:
        return len(self._by_group)

    def begin(self, scene_id: str, group_id: str, members: Iterable[str], now: float,
              timeout_s: float = GATHER_TIMEOUT_S) -> Gathering:
        """Starts awaiting ``members`` (a group formed again under the same id replaces the old one)."""
        gathering = Gathering(scene_id, group_id, tuple(members), now + timeout_s)
        self._by_group[group_id] = gathering
        return gathering

    def of(self, scene_id: str, participant_id: str) -> Gathering | None:
        """The gathering of ``scene_id`` that awaits or holds ``participant_id``, if any."""
        return next((g for g in self._by_group.values()
                     if g.scene_id == scene_id and participant_id in g.members), None)

    def complete(self, scene_id: str, participant_id: str, here: Callable[[str], bool]) -> Gathering | None:
        """The participant's gathering if every member is ``here`` now; it is then no longer gathered (so a
        second arrival cannot start the game twice)."""
        gathering = self.of(scene_id, participant_id)
        if gathering is None or not all(here(pid) for pid in gathering.members):
            return None
        del self._by_group[gathering.group_id]
        return gathering

    def overdue(self, now: float) -> list[Gathering]:
        """Gatherings past their deadline, removed (each returned once)."""
        late = [g for g in self._by_group.values() if now >= g.deadline]
        for gathering in late:
            del self._by_group[gathering.group_id]
        return late

    def drop(self, group_id: str) -> None:
        """Forgets a gathering (its group went back to the queue some other way)."""
        self._by_group.pop(group_id, None)
