"""Who played with whom: the groups of the game scenes that a later scene re-forms (``keep_group_from``).

Shared by server and p2p mode (a p2p scene may keep the groups of a server-mode one). A mode calls
:meth:`GroupMemory.remember` when a game starts; the waiting room of a ``keep_group_from`` scene asks
:meth:`GroupMemory.group_of`. Every multi-human game's group is also stored as a ``group_formed`` events row,
from which the memory is rebuilt after a server restart. Pure (no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class GroupMemory:
    """The last group each participant played in, for each scene whose groups are kept.

    Args:
        kept_scene_ids: The scenes some ``keep_group_from`` names (other scenes' groups are not remembered).
    """

    def __init__(self, kept_scene_ids: Iterable[str]) -> None:
        self._groups: dict[str, dict[str, tuple[str, ...]]] = {scene_id: {} for scene_id in kept_scene_ids}

    def remember(self, scene_id: str, members: Sequence[str]) -> bool:
        """Records that ``members`` (in role order) started a game of ``scene_id``; True if the scene is kept.

        A later game of the same scene (a ``Repeat``) replaces each member's group.
        """
        groups = self._groups.get(scene_id)
        if groups is None:
            return False
        group = tuple(members)
        for member in group:
            groups[member] = group
        return True

    def group_of(self, scene_id: str, participant_id: str) -> tuple[str, ...] | None:
        """The group ``participant_id`` last played ``scene_id`` in, or None."""
        return self._groups.get(scene_id, {}).get(participant_id)
