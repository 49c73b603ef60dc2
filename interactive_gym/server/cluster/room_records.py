"""A waiting room's state as Redis stores it, and every decision on it, without Redis.

The Redis-backed room (:mod:`interactive_gym.server.cluster.redis_rooms`) reads the room's waiters, hands them
to :func:`decide`, and writes back the :class:`Plan` it returns in one transaction. :func:`decide` rebuilds the
very same in-process :class:`~interactive_gym.server.waiting_room.WaitingRoom` from the stored records and runs
the operation on it, so the join/presence/expiry rules and the matchmakers (and their validation) exist once,
whichever process or machine a participant is connected to. Nothing here does I/O.

Stored shapes (JSON, keys sorted so an unchanged waiter encodes to the same text):

- waiter record, one hash field per participant: ``{"seq", "joined_at", "rtt_ms", "present", "attrs"}``; ``seq``
  is the room's commit counter when they arrived and orders waiters who arrived at the same ``joined_at``;
- group record, one hash field per formed group: ``{"members": [...], "waiters": {pid: waiter record}}``, the
  entries as they waited, so a group whose game cannot start goes back with its arrival times.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from interactive_gym.server.flow.participants import ID_PATTERN
from interactive_gym.server.waiting_room import FormedGroup, Matchmaker, Waiter, WaitingRoom, fifo_matchmaker

T = TypeVar("T")

MAX_ATTRS_BYTES = 2048  # a waiter's attrs (what a custom matchmaker may read), as JSON
ROOM_NAME_PATTERN = re.compile(r"^[^{}\s]{1,128}$")  # braces are Redis Cluster hash-tag syntax
GROUP_ID_PATTERN = re.compile(r"^[0-9a-f]{1,64}$")


class CorruptRoomError(ValueError):
    """A record in Redis is not one this module wrote (hand edits, another program): nothing is decided on it."""


@dataclass(frozen=True)
class Stored:
    """One waiter as stored: the :class:`Waiter` and its arrival counter."""

    seq: int
    waiter: Waiter


@dataclass(frozen=True)
class Group(FormedGroup):
    """A group that formed in a room: ``members`` in the matchmaker's (role) order, their entries as they waited
    (in the same order)."""

    entries: tuple[Stored, ...]


@dataclass
class Plan(Generic[T]):
    """What one operation returns and what it changes; the Redis shell writes the changes in one transaction."""

    result: T
    writes: dict[str, str] = field(default_factory=dict)  # waiter records to add or replace
    removes: list[str] = field(default_factory=list)       # participants who leave the waiters
    formed: Group | None = None                            # a new group record (its members leave the waiters)
    dropped: Group | None = None                           # a group record to delete (released or requeued)
    error: Exception | None = None                         # raised once the changes made before it are written

    @property
    def changes_nothing(self) -> bool:
        return not (self.writes or self.removes or self.formed or self.dropped)

    def outcome(self) -> T:
        """The result, or the operation's error raised (once its changes are written)."""
        if self.error is not None:
            raise self.error
        return self.result


def check_participant_id(participant_id: Any) -> str:
    """The id, if it is one the participant registry can issue (``ID_PATTERN``: at most 64 safe characters)."""
    if not isinstance(participant_id, str) or not ID_PATTERN.fullmatch(participant_id):
        raise ValueError(f"not a participant id: {participant_id!r:.80} (1-64 of A-Z a-z 0-9 _ -)")
    return participant_id


def check_room_name(name: Any) -> str:
    """A room name usable inside Redis keys (a scene id: 1-128 characters, no whitespace or braces)."""
    if not isinstance(name, str) or not ROOM_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"room name {name!r:.80} must be 1-128 characters without whitespace or braces")
    return name


def check_attrs(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    """A copy of ``attrs`` if it is a JSON object of at most ``MAX_ATTRS_BYTES``."""
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise ValueError("attrs must be a mapping")
    try:
        text = json.dumps(dict(attrs), sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValueError(f"attrs must be JSON (strings, numbers, lists, objects): {err}") from None
    if len(text.encode()) > MAX_ATTRS_BYTES:
        raise ValueError(f"attrs take {len(text.encode())} bytes as JSON; at most {MAX_ATTRS_BYTES}")
    return dict(json.loads(text))


def _record(entry: Stored) -> dict[str, Any]:
    w = entry.waiter
    return {"seq": entry.seq, "joined_at": w.joined_at, "rtt_ms": w.rtt_ms, "present": w.present, "attrs": w.attrs}


def encode_waiter(entry: Stored) -> str:
    return json.dumps(_record(entry), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CorruptRoomError(f"{what} is not a finite number: {value!r:.80}")
    return float(value)


def _entry(participant_id: str, record: Any) -> Stored:
    if not isinstance(record, dict) or set(record) != {"seq", "joined_at", "rtt_ms", "present", "attrs"}:
        raise CorruptRoomError(f"waiter {participant_id!r}: not a waiter record")
    seq, present, attrs, rtt = record["seq"], record["present"], record["attrs"], record["rtt_ms"]
    if isinstance(seq, bool) or not isinstance(seq, int) or not isinstance(present, bool) \
            or not isinstance(attrs, dict):
        raise CorruptRoomError(f"waiter {participant_id!r}: bad seq, present or attrs")
    waiter = Waiter(participant_id, _number(record["joined_at"], "joined_at"),
                    None if rtt is None else _number(rtt, "rtt_ms"), present, attrs)
    return Stored(seq, waiter)


def _text(raw: str | bytes) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw  # bad bytes fail the checks after


def decode_waiters(raw: Mapping[Any, Any]) -> dict[str, Stored]:
    """The waiters of a room from its hash (field = participant id, value = waiter record)."""
    out: dict[str, Stored] = {}
    for key, value in raw.items():
        pid = _text(key)
        try:
            out[pid] = _entry(check_participant_id(pid), json.loads(_text(value)))
        except (ValueError, UnicodeDecodeError) as err:  # CorruptRoomError is a ValueError
            raise CorruptRoomError(f"waiting-room record {pid!r:.80}: {err}") from None
    return out


def encode_group(group: Group) -> str:
    return json.dumps({"members": list(group.members),
                       "waiters": {e.waiter.participant_id: _record(e) for e in group.entries}},
                      sort_keys=True, separators=(",", ":"), allow_nan=False)


def decode_group(group_id: str, raw: str | bytes) -> Group:
    try:
        data = json.loads(_text(raw))
        members = tuple(check_participant_id(pid) for pid in data["members"])
        if len(set(members)) != len(members) or set(data["waiters"]) != set(members):
            raise ValueError("members and waiters differ")
        entries = tuple(_entry(pid, data["waiters"][pid]) for pid in members)
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise CorruptRoomError(f"group record {group_id!r:.80}: {err}") from None
    return Group(group_id, members, entries)


def load_room(stored: Mapping[str, Stored], group_size: int, timeout_s: float,
              matchmaker: Matchmaker = fifo_matchmaker, extra: Sequence[Stored] = ()) -> WaitingRoom:
    """An in-process room holding copies of ``stored`` (and ``extra``), in the room's one waiting order.

    The order is :meth:`WaitingRoom.restore`'s: by ``joined_at``, and by arrival counter among equal times. Within
    one process ``joined_at`` only grows, so this is the in-process room's join order; across processes it is
    the order of the clock every worker passes in.
    """
    entries = sorted([*stored.values(), *extra], key=lambda e: (e.waiter.joined_at, e.seq))
    return WaitingRoom.from_waiters(group_size, timeout_s,
                                    (dataclasses.replace(e.waiter, attrs=dict(e.waiter.attrs)) for e in entries),
                                    matchmaker)


def decide(stored: Mapping[str, Stored], operation: Callable[[WaitingRoom], T], *, group_size: int,
           timeout_s: float, matchmaker: Matchmaker, group_id: str, new: Stored | None = None) -> Plan[T]:
    """Runs ``operation`` on the room rebuilt from ``stored`` (plus a ``new`` waiter) and returns its changes.

    Args:
        stored: The waiters as read from Redis.
        operation: What to do, e.g. ``lambda room: room.join(pid, now, rtt_ms, present)``. If it raises (a
            matchmaker that fails or picks an invalid group), the plan keeps what the room changed before that
            (the joiner stays queued, as in :class:`WaitingRoom`) and carries the error.
        group_size: Humans per game. timeout_s: How long one may wait. matchmaker: The scene's group rule.
        group_id: The id a group formed by this operation gets.
        new: A participant who is not waiting yet, with the arrival counter they get.
    """
    room = load_room(stored, group_size, timeout_s, matchmaker, () if new is None else (new,))
    error: Exception | None = None
    try:
        result: T | None = operation(room)
    except Exception as err:  # noqa: BLE001 - a raising matchmaker: keep what the room did before it, as in-process
        result, error = None, err
    seqs = {pid: e.seq for pid, e in stored.items()}
    if new is not None:
        seqs[new.waiter.participant_id] = new.seq
    plan: Plan[T] = Plan(result, error=error)  # type: ignore[arg-type]  # result is None only with an error
    for pid in room.waiting():
        waiter = room.waiter(pid)
        assert waiter is not None  # it is in room.waiting()
        before = stored.get(pid)
        if before is None or before.waiter != waiter:
            plan.writes[pid] = encode_waiter(Stored(seqs[pid], waiter))
    plan.removes = [pid for pid in stored if room.waiter(pid) is None]
    if room.matched:  # a fresh room: only this operation can have matched
        entries = tuple(Stored(seqs[w.participant_id], w) for w in room.matched)
        plan.formed = Group(group_id, tuple(w.participant_id for w in room.matched), entries)
    return plan


def requeue_plan(stored: Mapping[str, Stored], group: Group) -> Plan[list[str]]:
    """Puts a group's members back as they waited (those not waiting again already) and deletes the group."""
    back = [e for e in group.entries if e.waiter.participant_id not in stored]
    return Plan([e.waiter.participant_id for e in back],
                writes={e.waiter.participant_id: encode_waiter(e) for e in back}, dropped=group)
