"""The participant flow's side of several workers: placing a connecting page, handing a participant over.

Each page carries its worker's name (its route) in every socket handshake, so the front sends it back to the
worker that holds its participant. Two moments need more:

- a page connects here for a participant this worker does not hold (first visit, a reload that lost its
  route, its worker died): :meth:`Handovers.place` asks the directory; another live worker that serves them
  keeps them (the page is told to reconnect there), otherwise this worker takes them over from the database;
- a group formed on another worker includes a participant held here: :meth:`Handovers.hand_over` forgets them
  here (in their own event order) and tells their page to reconnect to the worker hosting the game.

The page learns its route from the ``route`` event and is moved by ``relocate`` (both ``{"route": "w1"}``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from interactive_gym.server.flow.participants import Participant, ParticipantRegistry
from interactive_gym.server.flow.serial import ParticipantSerializer

if TYPE_CHECKING:
    from interactive_gym.server.cluster.placement import Placement

log = logging.getLogger("interactive_gym.cluster.handover")

ROUTE_EVENT = "route"
RELOCATE_EVENT = "relocate"

Loader = Callable[[str], Awaitable[Participant | None]]


class Handovers:
    """Placement of this worker's participants.

    Args:
        placement: The directory in Redis.
        registry: This worker's participants.
        serial: Their event queues (a handover runs in the participant's order, between their events).
        sio: The Socket.IO server.
        load: Takes a participant over from the database (``Experiment.load_participant``).
    """

    def __init__(self, placement: Placement, registry: ParticipantRegistry, serial: ParticipantSerializer,
                 sio: Any, load: Loader) -> None:
        self.placement = placement
        self.registry = registry
        self.serial = serial
        self.sio = sio
        self.load = load
        self.relocated = 0  # pages told to reconnect to another worker
        self.taken_over = 0  # participants loaded from the database here

    async def place(self, sid: str, participant_id: str) -> bool:
        """Whether this worker serves the participant whose page connected as ``sid`` (caller holds their lock).

        If another live worker does, the page is told to reconnect there and ``False`` is returned (the socket
        stays open but belongs to nobody here: its events are refused until the page leaves).
        """
        if self.registry.get(participant_id) is None:
            owner = await self.placement.claim(participant_id)
            if owner != self.placement.worker:
                self.relocated += 1
                await self.sio.emit(RELOCATE_EVENT, {"route": owner}, to=sid)
                return False
            if await self.load(participant_id) is not None:
                self.taken_over += 1
                log.info("worker %s took over participant %s", self.placement.worker, participant_id)
        await self.sio.emit(ROUTE_EVENT, {"route": self.placement.worker}, to=sid)
        return True

    async def hand_over(self, participant_id: str, to: str) -> None:
        """Another worker hosts a game of the participant: once their queued events are done, forget them here
        and send their page there. Nothing if they are not here, or are playing or finished (a stale ask)."""
        async def apply() -> None:
            participant = self.registry.get(participant_id)
            if participant is None or participant.finished or participant.game_id is not None:
                return
            if not await self.placement.assign(participant_id, to):
                return
            sid = self.registry.forget(participant_id)
            log.info("worker %s handed participant %s over to %s", self.placement.worker, participant_id, to)
            if sid is not None:
                self.relocated += 1
                await self.sio.emit(RELOCATE_EVENT, {"route": to}, to=sid)
                await self.sio.disconnect(sid)

        self.serial.post(participant_id, apply, "hand_over")
