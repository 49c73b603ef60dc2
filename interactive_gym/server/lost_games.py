"""A server-mode game whose server process stopped while it ran: how a participant taken over elsewhere (or
after a restart) learns that their game is over, and which of its episodes are closed as partial.

A server-mode game lives in the memory of the process that hosts it; when that process dies, its episodes
stay ``in_progress`` in the database with every step that was committed. Whoever next serves one of its
players finds them at the game's scene with no game, and must not queue them for a second game of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from interactive_gym.server.storage_records import EpisodeRow

SERVER_LOST = "server_lost"


@dataclass(frozen=True)
class LeftBehind:
    """The participant's game of a scene, as the database has it.

    Attributes:
        reason: The game-over reason to show: ``server_lost`` if an episode was cut short by a lost server
            (now or when a partner was taken over first), else ``complete``.
        unfinished: Ids of the game's episodes still ``in_progress``: to be closed as ``partial``.
    """

    reason: str
    unfinished: tuple[int, ...]


def game_left_behind(episodes: Iterable[EpisodeRow], participant_id: str, scene_id: str) -> LeftBehind | None:
    """The participant's server-mode game of ``scene_id`` among ``episodes``, or None if they played none.

    Only called for a participant no running game holds (they were not in any live process's memory).
    """
    mine = [e for e in episodes if e.scene_id == scene_id and e.mode == "server" and participant_id in
            e.agents.values()]
    if not mine:
        return None
    unfinished = tuple(e.id for e in mine if e.status == "in_progress")
    lost = bool(unfinished) or any(e.meta.get("ended_by") == SERVER_LOST for e in mine)
    return LeftBehind(SERVER_LOST if lost else "complete", unfinished)
