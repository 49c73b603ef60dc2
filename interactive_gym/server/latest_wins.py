"""Latest-wins delivery of render packets to a slow reader: memory per socket stays bounded.

Engine.IO gives every socket an unbounded queue of packets waiting for its transport. A page that reads
slowly (a stalled tab, a congested link) would make that queue grow by one render packet per tick, forever.
:class:`LatestWinsQueue` replaces it: a render packet still waiting in the queue when a newer one of the same
game arrives is dropped, and the newer one goes to the end of the queue. Every other packet (game start,
game over, errors, acks) is kept, in order.

Render packets are usually diffs against the previous one (``interactive_gym/rendering/packets.py``); the
page refuses a diff whose predecessor it never drew (a "gap", see ``packet_apply.js``). So the packet that
replaces a dropped one is sent *full*: a complete snapshot of the same frame, on top of which the next diff
applies. The snapshot is built only when a drop happens (the usual case, a reader that keeps up, costs
nothing), once per emit, shared by every socket that needs it.

The emitter marks a render payload with :class:`LatestWins` (a ``dict``, so every other consumer sees the
same payload); ``DirectSendManager`` turns it into a :class:`LatestWinsFrame` for each recipient.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from engineio import packet as eio_packet


class LatestWins(dict):  # type: ignore[type-arg]
    """A payload that a newer one with the same ``key`` may replace while it waits for a slow reader.

    Args:
        payload: The payload as sent (a diff is fine).
        key: What "the same stream" means, e.g. the game id.
        full: Returns the payload in its self-contained form (e.g. with a full snapshot instead of a diff).
            It is called during the emit of this payload, when the emitter's state is the one it was sent with.
    """

    def __init__(self, payload: dict[str, Any], *, key: str, full: Callable[[], dict[str, Any]]) -> None:
        super().__init__(payload)
        self.key = key
        self.full = full


class LatestWinsFrame(eio_packet.Packet):
    """An Engine.IO message that a newer frame with the same ``key`` replaces while both wait in the queue.

    Args:
        key: The stream.
        text: The encoded Socket.IO packet as sent when nothing is dropped.
        full_text: Returns the encoded self-contained version (memoised by the caller across recipients).
    """

    def __init__(self, key: str, text: str, full_text: Callable[[], str]) -> None:
        super().__init__(eio_packet.MESSAGE, text)
        self.key = key
        self.full_text = full_text

    def as_full(self) -> LatestWinsFrame:
        """The same frame in its self-contained form."""
        return LatestWinsFrame(self.key, self.full_text(), self.full_text)


class LatestWinsQueue(asyncio.Queue):  # type: ignore[type-arg]
    """An ``asyncio.Queue`` of Engine.IO packets holding at most one :class:`LatestWinsFrame` per key.

    Attributes:
        superseded: How many waiting frames were dropped for a newer one (for tests and the admin page).
    """

    def _init(self, maxsize: int) -> None:
        super()._init(maxsize)  # type: ignore[misc]
        self._waiting: dict[str, LatestWinsFrame] = {}
        self.superseded = 0

    def _put(self, item: Any) -> None:
        if isinstance(item, LatestWinsFrame):
            older = self._waiting.get(item.key)
            if older is not None:
                # O(queue length), and the queue stays short: one frame per key plus the rare other events.
                self._queue.remove(older)  # type: ignore[attr-defined]
                self.task_done()  # the dropped frame will never be taken; keep join() (used on close) exact
                self.superseded += 1
                item = item.as_full()
            self._waiting[item.key] = item
        self._queue.append(item)  # type: ignore[attr-defined]

    def _get(self) -> Any:
        item = self._queue.popleft()  # type: ignore[attr-defined]
        if isinstance(item, LatestWinsFrame) and self._waiting.get(item.key) is item:
            del self._waiting[item.key]
        return item
