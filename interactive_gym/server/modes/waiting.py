"""The waiting rooms of one game mode: one queue per scene, presence, counts on every page, expiry.

Server and p2p mode both queue participants until a group can start; the rules (who counts as present, what
every waiter is told, what happens when a group cannot start, how a broken matchmaker is contained, how a
``keep_group_from`` scene re-forms earlier groups) live here once. The queue itself is the pure
:class:`~interactive_gym.server.waiting_room.WaitingRoom`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.base import FlowHooks
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.waiting_room import WaitingRoom, remembered_group_matchmaker

log = logging.getLogger("interactive_gym.waiting")
KEEP_GROUP_NOTICE = "Waiting for your partner from the previous game."


def is_present(participant: Participant) -> bool:
    """Only a connected participant with a visible tab can be matched (someone must be there to play)."""
    return participant.connected and participant.visible


class RoomSet:
    """Waiting rooms by scene id.

    Args:
        sio: Unused today beyond symmetry with the modes; kept so a room can emit to its members' room later.
        hooks: The participant flow (notices, timeouts, lookups).
        groups: Who played with whom (shared by the modes), for ``keep_group_from`` scenes.
    """

    def __init__(self, sio: Any, hooks: FlowHooks, groups: GroupMemory | None = None) -> None:
        self.sio = sio
        self.hooks = hooks
        self.groups = groups or GroupMemory(())
        self.rooms: dict[str, WaitingRoom] = {}
        self.scenes: dict[str, GymScene] = {}
        self.matchmaker_failures = 0

    def room_for(self, scene: GymScene) -> WaitingRoom:
        room = self.rooms.get(scene.scene_id)
        if room is None:
            kwargs: dict[str, Any] = {"matchmaker": scene.matchmaker} if scene.matchmaker else {}
            if scene.keep_group_from is not None:
                kwargs["matchmaker"] = remembered_group_matchmaker(
                    functools.partial(self.groups.group_of, scene.keep_group_from))
            room = self.rooms[scene.scene_id] = WaitingRoom(len(scene.facts.humans), scene.waiting_room_timeout_s,
                                                            **kwargs)
            self.scenes[scene.scene_id] = scene
        return room

    async def join(self, scene: GymScene, participant: Participant, now: float,
                   rtt_ms: float | None = None) -> list[Participant] | None:
        """Queues the participant (idempotent); returns the group that can start now, if any."""
        room = self.room_for(scene)
        pids = self._match(scene, lambda: room.join(participant.participant_id, now, rtt_ms, is_present(participant)))
        return await self._group_or_announce(scene, pids)

    async def set_presence(self, scene: GymScene, participant: Participant) -> list[Participant] | None:
        """Updates a waiter's presence (connection, hidden tab); a returning waiter may complete a group."""
        room = self.rooms.get(scene.scene_id)
        if room is None or room.waiter(participant.participant_id) is None:
            return None
        present = is_present(participant)
        pids = self._match(scene, lambda: room.set_presence(participant.participant_id, present))
        return await self._group_or_announce(scene, pids)

    async def leave(self, scene: GymScene, participant_id: str) -> None:
        room = self.rooms.get(scene.scene_id)
        if room is not None and room.leave(participant_id):
            await self._announce(scene)

    async def requeue(self, scene: GymScene, group: list[Participant], notice: str) -> None:
        """A group whose game could not start goes back to the queue, arrival times kept, with a notice."""
        room = self.room_for(scene)
        ids = {p.participant_id for p in group}
        room.restore([w for w in room.matched if w.participant_id in ids])
        await self._announce(scene, notice)

    async def started(self, scene: GymScene, members: list[Participant], game_id: str) -> None:
        """A game of ``scene`` started with ``members`` (in role order): remembered for a later
        ``keep_group_from`` scene and stored as a ``group_formed`` events row (the memory after a restart)."""
        pids = [p.participant_id for p in members]
        self.groups.remember(scene.scene_id, pids)
        await self.hooks.record_event("group_formed", {"members": pids, "mode": scene.mode}, scene_id=scene.scene_id,
                                      game_id=game_id)

    async def expire(self, now: float) -> None:
        """Waiters past their scene's timeout are handed to the flow (which moves them on); so is, at once, a
        waiter of a ``keep_group_from`` scene whose former partner has finished the study (they cannot come)."""
        for scene_id, room in self.rooms.items():
            try:
                expired = room.expire(now)
                for pid in self._abandoned(self.scenes[scene_id], room):
                    room.leave(pid)
                    expired.append(pid)
            except Exception:  # noqa: BLE001 - one room's failure must not stop the others' expiry
                log.exception("waiting room %s: expiry failed", scene_id)
                continue
            for pid in expired:
                self.hooks.wait_timeout(pid, scene_id)
            if expired:
                await self._announce(self.scenes[scene_id])

    def _abandoned(self, scene: GymScene, room: WaitingRoom) -> list[str]:
        if scene.keep_group_from is None:
            return []
        out = []
        for pid in room.waiting():
            group = self.groups.group_of(scene.keep_group_from, pid) or ()
            partners = [self.hooks.lookup(member) for member in group if member != pid]
            if any(p is None or p.finished for p in partners):
                out.append(pid)
        return out

    def _match(self, scene: GymScene, attempt: Any) -> list[str] | None:
        try:
            return attempt()
        except Exception:  # noqa: BLE001 - a researcher's matchmaker that raises must not strand the queue
            self.matchmaker_failures += 1
            log.exception("scene %s: the matchmaker failed; nobody was matched this time", scene.scene_id)
            return None

    async def _group_or_announce(self, scene: GymScene, pids: list[str] | None) -> list[Participant] | None:
        if pids is None:
            await self._announce(scene)
            return None
        group = [self.hooks.lookup(pid) for pid in pids]
        members = [p for p in group if p is not None]
        if len(members) != len(pids):  # cannot happen with the registry as the source of ids; never start short
            await self.requeue(scene, members, notice="")
            return None
        await self._announce(scene)
        return members

    async def _announce(self, scene: GymScene, notice: str = "") -> None:
        """Tells every connected waiter of the scene where they stand (counts include absent waiters)."""
        room = self.rooms.get(scene.scene_id)
        if room is None:
            return
        waiting = room.waiting()
        for place, pid in enumerate(waiting, start=1):
            participant = self.hooks.lookup(pid)
            if participant is None or not participant.connected or participant.scene.scene_id != scene.scene_id:
                continue
            here, told = len(waiting), notice
            group = self.groups.group_of(scene.keep_group_from, pid) if scene.keep_group_from else None
            if group is not None:
                # Only the waiter's own former group can join them: count those, and say who is awaited.
                here = sum(1 for member in group if member in waiting)
                told = f"{notice} {KEEP_GROUP_NOTICE}".strip()
            data: dict[str, Any] = {"scene_id": scene.scene_id, "position": place, "needed": room.group_size,
                                    "waiting": here, "timeout_s": room.timeout_s}
            if told:
                data["notice"] = told
            await self.hooks.notify(participant, "waiting", data)
