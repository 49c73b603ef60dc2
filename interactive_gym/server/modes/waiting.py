"""The waiting rooms of one game mode: one queue per scene, presence, counts on every page, expiry.

Server and p2p mode both queue participants until a group can start; the rules (who counts as present, what
every waiter is told, what happens when a group cannot start, how a broken matchmaker is contained, how a
``keep_group_from`` scene re-forms earlier groups) live here once. Each queue is a
:class:`~interactive_gym.server.rooms.Room`: in this process (:class:`~interactive_gym.server.rooms.LocalRoom`,
the default) or, given a Redis client, shared with other server processes
(:class:`~interactive_gym.server.cluster.redis_rooms.RedisWaitingRoom`). The notices come from the room's
snapshot in both.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.cluster.gathering import Gathering, Gatherings
from interactive_gym.server.cluster.room_records import ROOM_NAME_PATTERN
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.base import FlowHooks
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.rooms import LocalRoom, Room
from interactive_gym.server.waiting_room import (
    FormedGroup,
    Matchmaker,
    MatchmakerError,
    RoomSnapshot,
    remembered_group_matchmaker,
)

if TYPE_CHECKING:
    from interactive_gym.server.cluster.placement import Placement

T = TypeVar("T")
log = logging.getLogger("interactive_gym.waiting")
KEEP_GROUP_NOTICE = "Waiting for your partner from the previous game."
# Times of the shared rooms are wall-clock seconds (time.time()); a monotonic clock counts from boot, far below.
SHARED_CLOCK_MIN = 1_000_000_000.0


def is_present(participant: Participant) -> bool:
    """Only a connected participant with a visible tab can be matched (someone must be there to play)."""
    return participant.connected and participant.visible


def shared_room_problems(scenes: Iterable[GymScene]) -> list[str]:
    """What keeps these scenes from waiting in rooms shared by several processes (Redis); empty when none.

    For a start-up check: a ``keep_group_from`` scene's memory of groups is per process so far, and a scene id
    becomes part of Redis key names.
    """
    problems = []
    for scene in scenes:
        if scene.keep_group_from is not None:
            problems.append(f"scene {scene.scene_id!r}: keep_group_from is not supported with several server "
                            "processes yet; run one process or remove keep_group_from")
        if not ROOM_NAME_PATTERN.fullmatch(scene.scene_id):
            problems.append(f"scene {scene.scene_id!r}: with several server processes a game scene's id must be "
                            "1-128 characters without whitespace or braces")
    return problems


class RoomSet:
    """Waiting rooms by scene id.

    Args:
        sio: Unused today beyond symmetry with the modes; kept so a room can emit to its members' room later.
        hooks: The participant flow (notices, timeouts, lookups).
        groups: Who played with whom (shared by the modes), for ``keep_group_from`` scenes.
        redis: A ``redis.asyncio.Redis`` client: the rooms are then shared with every process using the same
            Redis and ``prefix``, and every ``now`` passed in must be ``time.time()`` (a clock all processes
            share). Without it, the rooms live in this process, as they always have.
        prefix: Key prefix of the shared rooms (the experiment id), so two experiments never share a room.
        placement: With several workers (cluster/placement.py): a group with members on other workers is
            hosted here, and those workers are asked to hand them over (the game starts once all are here).
    """

    def __init__(self, sio: Any, hooks: FlowHooks, groups: GroupMemory | None = None, *, redis: Any = None,
                 prefix: str = "ig", placement: Placement | None = None) -> None:
        self.sio = sio
        self.placement = placement
        self.gatherings = Gatherings()
        self.hooks = hooks
        self.groups = groups or GroupMemory(())
        self.redis = redis
        self.prefix = prefix
        self.rooms: dict[str, Room] = {}
        self.scenes: dict[str, GymScene] = {}
        self.matchmaker_failures = 0
        self.room_failures = 0  # room operations that failed otherwise (Redis unreachable, full room, ...)
        # (scene id, participant id) -> the group id of a group this set handed to its mode that has neither
        # started nor gone back to the queue yet: its members are not queued again meanwhile.
        self._formed: dict[tuple[str, str], str] = {}
        self._announced: dict[str, list[str]] = {}  # scene id -> the queue its last notices were built from

    def room_for(self, scene: GymScene) -> Room:
        room = self.rooms.get(scene.scene_id)
        if room is None:
            size, timeout = len(scene.facts.humans), scene.waiting_room_timeout_s
            matchmaker: Matchmaker | None = scene.matchmaker
            if scene.keep_group_from is not None:
                matchmaker = remembered_group_matchmaker(
                    functools.partial(self.groups.group_of, scene.keep_group_from))
            if self.redis is None:
                room = LocalRoom(size, timeout, *([matchmaker] if matchmaker else []))
            else:
                problems = shared_room_problems([scene])
                if problems:
                    raise ValueError("; ".join(problems))
                # Imported here: the redis package is an extra, needed only when a client is given.
                from interactive_gym.server.cluster.redis_rooms import RedisWaitingRoom

                room = RedisWaitingRoom(self.redis, scene.scene_id, size, timeout,
                                        *([matchmaker] if matchmaker else []), prefix=self.prefix)
            self.rooms[scene.scene_id] = room
            self.scenes[scene.scene_id] = scene
        return room

    async def join(self, scene: GymScene, participant: Participant, now: float,
                   rtt_ms: float | None = None) -> list[Participant] | None:
        """Queues the participant (idempotent); returns the group that can start now, if any."""
        room = self.room_for(scene)
        self._check_clock(now)
        formed = await self._attempt(scene, room.join(participant.participant_id, now, rtt_ms,
                                                      is_present(participant)))
        if formed is None:
            gathered = self.gatherings.complete(scene.scene_id, participant.participant_id, self._serves)
            if gathered is not None:  # the last member of a group formed here arrived from another worker
                return [p for p in map(self.hooks.lookup, gathered.members) if p is not None]
        return await self._group_or_announce(scene, formed, now)

    async def set_presence(self, scene: GymScene, participant: Participant) -> list[Participant] | None:
        """Updates a waiter's presence (connection, hidden tab); a returning waiter may complete a group."""
        room = self.rooms.get(scene.scene_id)
        if room is None:
            return None
        snapshot = await self._attempt(scene, room.snapshot())
        if snapshot is None or snapshot.waiter(participant.participant_id) is None:
            return None  # not waiting here: nothing changes, nobody is told anything
        formed = await self._attempt(scene, room.set_presence(participant.participant_id, is_present(participant)))
        return await self._group_or_announce(scene, formed, time.time())

    async def leave(self, scene: GymScene, participant_id: str) -> None:
        room = self.rooms.get(scene.scene_id)
        if room is not None and await self._attempt(scene, room.leave(participant_id)):
            await self._announce(scene)

    async def requeue(self, scene: GymScene, group: list[Participant], notice: str) -> None:
        """A group whose game could not start goes back to the queue, arrival times kept, with a notice."""
        room = self.room_for(scene)
        group_id = self._take_group_id(scene, [p.participant_id for p in group])
        if group_id is not None:
            await self._attempt(scene, room.requeue(group_id))
        await self._announce(scene, notice)

    async def started(self, scene: GymScene, members: list[Participant], game_id: str) -> None:
        """A game of ``scene`` started with ``members`` (in role order; every game a group of this set starts,
        even of one): the room forgets the group (the mode keeps its members from queuing twice now). A group of
        several is remembered for a later ``keep_group_from`` scene and stored as a ``group_formed`` events row
        (the memory after a restart)."""
        pids = [p.participant_id for p in members]
        group_id = self._take_group_id(scene, pids)
        room = self.rooms.get(scene.scene_id)
        if group_id is not None and room is not None:
            await self._attempt(scene, room.release(group_id))
        if len(pids) < 2:
            return
        self.groups.remember(scene.scene_id, pids)
        await self.hooks.record_event("group_formed", {"members": pids, "mode": scene.mode}, scene_id=scene.scene_id,
                                      game_id=game_id)

    async def expire(self, now: float) -> list[tuple[GymScene, list[Participant]]]:
        """Waiters past their scene's timeout are handed to the flow (which moves them on); so is, at once, a
        waiter of a ``keep_group_from`` scene whose former partner has finished the study (they cannot come).

        Only waiters this process serves (the flow knows them) are expired here. A queue changed by another
        process since this one last told its waiters is announced again (so counts on every page follow
        changes made elsewhere within one housekeeping round).
        """
        self._check_clock(now)
        regrouped = []
        for gathering in self.gatherings.overdue(now):
            group = await self._give_up(gathering, now)
            if group is not None:
                regrouped.append((self.scenes[gathering.scene_id], group))
        for scene_id, room in list(self.rooms.items()):
            scene = self.scenes[scene_id]
            try:
                expired = await room.expire(now, self._serves)
                snapshot = await room.snapshot()
                for pid in self._abandoned(scene, snapshot):
                    if await room.leave(pid):
                        expired.append(pid)
            except Exception:  # noqa: BLE001 - one room's failure must not stop the others' expiry
                self.room_failures += 1
                log.exception("waiting room %s: expiry failed", scene_id)
                continue
            for pid in expired:
                self.hooks.wait_timeout(pid, scene_id)
            if expired or snapshot.waiting() != self._announced.get(scene_id, []):
                await self._announce(scene)
        return regrouped

    def _serves(self, participant_id: str) -> bool:
        return self.hooks.lookup(participant_id) is not None

    def _abandoned(self, scene: GymScene, snapshot: RoomSnapshot) -> list[str]:
        if scene.keep_group_from is None:
            return []
        out = []
        for pid in snapshot.waiting():
            group = self.groups.group_of(scene.keep_group_from, pid) or ()
            partners = [self.hooks.lookup(member) for member in group if member != pid]
            if any(p is None or p.finished for p in partners):
                out.append(pid)
        return out

    async def _give_up(self, gathering: Gathering, now: float) -> list[Participant] | None:
        """A gathered group whose members did not all arrive in time: it goes back to the queue, without those
        still missing (their pages may never come; one that does joins the queue again on arrival). Those here
        are matched again at once (with others waiting meanwhile): the group that can start now, if any."""
        scene = self.scenes[gathering.scene_id]
        room = self.room_for(scene)
        here = [p for p in map(self.hooks.lookup, gathering.members) if p is not None]
        missing = [pid for pid in gathering.members if not self._serves(pid)]
        log.warning("scene %s: group %s gave up awaiting %s from other workers; queued again",
                    scene.scene_id, gathering.group_id, ", ".join(missing))
        self._take_group_id(scene, gathering.members)
        await self._attempt(scene, room.requeue(gathering.group_id))
        for pid in missing:
            await self._attempt(scene, room.leave(pid))
        for participant in here:
            formed = await self._attempt(scene, room.set_presence(participant.participant_id,
                                                                  is_present(participant)))
            if formed is not None:
                return await self._group_or_announce(scene, formed, now)
        await self._announce(scene)
        return None

    def _check_clock(self, now: float) -> None:
        if self.redis is not None and now < SHARED_CLOCK_MIN:
            raise ValueError(f"shared waiting rooms need wall-clock times (time.time()); got {now!r}, which looks "
                             "like time.monotonic(), whose zero differs between processes")

    def _take_group_id(self, scene: GymScene, pids: Sequence[str]) -> str | None:
        found = [self._formed.pop((scene.scene_id, pid), None) for pid in pids]
        return next((gid for gid in found if gid is not None), None)

    async def _attempt(self, scene: GymScene, operation: Awaitable[T]) -> T | None:
        """The operation's result, or None if it failed: a room that fails (a researcher's matchmaker that
        raises, Redis unreachable) must not strand the queue or fail the participant's event."""
        try:
            return await operation
        except MatchmakerError:
            self.matchmaker_failures += 1
            log.exception("scene %s: the matchmaker failed; nobody was matched this time", scene.scene_id)
        except Exception:  # noqa: BLE001 - see above
            self.room_failures += 1
            log.exception("scene %s: the waiting room failed; nothing was changed this time", scene.scene_id)
        return None

    async def _group_or_announce(self, scene: GymScene, formed: FormedGroup | None,
                                 now: float) -> list[Participant] | None:
        if formed is None:
            await self._announce(scene)
            return None
        group = [self.hooks.lookup(pid) for pid in formed.members]
        members = [p for p in group if p is not None]
        if len(members) != len(formed.members) and self.placement is not None:
            # Members on other workers: the game runs here; their workers hand them over (pages reconnect).
            for pid in formed.members:
                self._formed[(scene.scene_id, pid)] = formed.group_id
            self.gatherings.begin(scene.scene_id, formed.group_id, formed.members, now)
            await self.placement.ask_for(pid for pid, p in zip(formed.members, group, strict=True) if p is None)
            await self._announce(scene)
            return None
        if len(members) != len(formed.members):
            # A member this process does not know (in one process: cannot happen, the registry issues the ids;
            # with several, one served by another process): never start short; the whole group goes back.
            log.warning("scene %s: group %s has members this process does not serve; queued again",
                        scene.scene_id, formed.group_id)
            await self._attempt(scene, self.room_for(scene).requeue(formed.group_id))
            await self._announce(scene)
            return None
        for pid in formed.members:
            self._formed[(scene.scene_id, pid)] = formed.group_id
        await self._announce(scene)
        return members

    async def _announce(self, scene: GymScene, notice: str = "") -> None:
        """Tells every connected waiter of the scene where they stand (counts include absent waiters)."""
        room = self.rooms.get(scene.scene_id)
        if room is None:
            return
        snapshot = await self._attempt(scene, room.snapshot())
        if snapshot is None:
            return
        waiting = snapshot.waiting()
        self._announced[scene.scene_id] = waiting
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
