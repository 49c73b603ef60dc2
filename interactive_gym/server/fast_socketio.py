"""Cheaper Socket.IO sends for the server's hot path (render packets of every game, every tick).

Two drop-in pieces for ``socketio.AsyncServer`` that send exactly the same bytes, in the same order, as
python-socketio's defaults, with less work per emit:

- :class:`JsonFirstPacket` (``serializer=``): the default packet walks the whole payload in Python looking for
  ``bytes`` before JSON-encoding it. JSON encoding (in C) fails on ``bytes`` anyway, so this packet encodes
  first, keeps the text for :meth:`~JsonFirstPacket.encode`, and only when encoding fails falls back to the
  default scan (which then finds the binary parts, or lets the same error surface as before).
- :class:`DirectSendManager` (``client_manager=``): the default manager starts one asyncio task per recipient
  for every emit and waits on them. Queueing an Engine.IO packet does not block (the socket's queue is
  unbounded), so this manager queues to each recipient in turn within the emit call. A failing recipient
  (e.g. a socket that just closed) is logged and skipped, as a failed task was before. A payload marked
  :class:`~interactive_gym.server.latest_wins.LatestWins` (render packets) is queued as a frame that a newer
  one replaces while it waits for a slow reader (see latest_wins.py).

And the limits every incoming message meets before any handler (see :class:`ExperimentSocketServer`): a text
message longer than ``max_message_chars`` is answered ``too_large`` without being parsed, and a binary packet
may declare at most :data:`MAX_ATTACHMENTS` attachments of :data:`MAX_ATTACHMENT_BYTES` in all.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from typing import Any

import engineio
from engineio import packet as eio_packet
from socketio import AsyncManager
from socketio import packet as sio_packet

from interactive_gym.server.latest_wins import LatestWins, LatestWinsFrame, LatestWinsQueue
from interactive_gym.server.socket_server import TargetedServer

log = logging.getLogger("interactive_gym.socketio")

# The page's only binary event is the input relay (one ArrayBuffer of at most 4 KiB); a few more leave room
# for a future event without letting a client hold a socket's memory with thousands of pending parts.
MAX_ATTACHMENTS = 8
MAX_ATTACHMENT_BYTES = 1024 * 1024
# Type, attachment count, namespace, ack id and the event name: what an oversized message is answered from.
_HEADER = re.compile(r'(\d)(?:\d{1,10}-)?(?:(/[^,]{0,100}),)?(\d{1,15})?\[("(?:[^"\\]|\\.){1,100}")')


class PacketLimitError(ValueError):
    """An incoming packet breaks a limit (attachment count or bytes); it is refused before it is assembled."""


class JsonFirstPacket(sio_packet.Packet):
    """A Socket.IO packet that JSON-encodes once up front instead of scanning the payload for binary parts."""

    def __init__(self, packet_type: int = sio_packet.EVENT, data: Any = None, namespace: str | None = None,
                 id: int | None = None, binary: bool | None = None,  # noqa: A002 - the base class's name
                 encoded_packet: Any = None) -> None:
        self._text: tuple[Any, str] | None = None
        if binary is None and encoded_packet is None and data is not None and self.uses_binary_events:
            try:
                text = self.json.dumps(data, separators=(",", ":"))
            except (TypeError, ValueError):
                pass  # bytes inside (or not JSON at all): the base class scans and encodes as it always has
            else:
                binary = False  # JSON text cannot hold bytes, so the scan would have found none
                self._text = (data, text)
        super().__init__(packet_type, data, namespace, id, binary, encoded_packet)

    def encode(self) -> Any:
        cached = self._text
        # Only for the plain-text case, and only if data is still the object that was encoded.
        if cached is None or cached[0] is not self.data or self.packet_type not in (sio_packet.EVENT,
                                                                                     sio_packet.ACK):
            return super().encode()
        encoded = str(self.packet_type)
        if self.namespace is not None and self.namespace != "/":
            encoded += self.namespace + ","
        if self.id is not None:
            encoded += str(self.id)
        return encoded + cached[1]

    def decode(self, encoded_packet: Any) -> int:
        # Read the declared attachment count before the base class parses (and allocates for) anything.
        if isinstance(encoded_packet, str) and encoded_packet[:1] in (str(sio_packet.BINARY_EVENT),
                                                                      str(sio_packet.BINARY_ACK)):
            dash = encoded_packet.find("-", 1, 13)
            count = encoded_packet[1:dash] if dash > 1 else ""
            if not count.isdigit() or not 1 <= int(count) <= MAX_ATTACHMENTS:
                raise PacketLimitError(f"a binary packet must declare 1 to {MAX_ATTACHMENTS} attachments")
        count = super().decode(encoded_packet)
        self._attachment_bytes = 0
        return count  # type: ignore[no-any-return]

    def add_attachment(self, attachment: Any) -> bool:
        self._attachment_bytes = getattr(self, "_attachment_bytes", 0) + len(attachment)
        if self._attachment_bytes > MAX_ATTACHMENT_BYTES:
            raise PacketLimitError(f"binary attachments larger than {MAX_ATTACHMENT_BYTES} bytes in all")
        return super().add_attachment(attachment)  # type: ignore[no-any-return]


class DirectSendManager(AsyncManager):
    """An ``AsyncManager`` whose emits queue the packet to each recipient directly, without a task each."""

    async def emit(self, event: str, data: Any, namespace: str, room: Any = None, skip_sid: Any = None,
                   callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        if callback is not None:
            # Each recipient needs its own ack id: the default path handles that (rare, never per tick).
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, to=to,
                               **kwargs)
            return
        room = to or room
        if namespace not in self.rooms:
            return
        # Same argument convention as python-socketio: a tuple is several arguments, None is none.
        args = list(data) if isinstance(data, tuple) else ([] if data is None else [data])
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        encoded = self._encode(event, args, namespace)
        frames: list[eio_packet.Packet]
        if isinstance(data, LatestWins) and isinstance(encoded, str):
            frames = [LatestWinsFrame(data.key, encoded, self._full_text(event, data, namespace))]
        else:
            parts = encoded if isinstance(encoded, list) else [encoded]
            frames = [eio_packet.Packet(eio_packet.MESSAGE, part) for part in parts]
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            for frame in frames:
                try:
                    await self.server.eio.send_packet(eio_sid, frame)
                except Exception:  # noqa: BLE001 - one closed socket must not stop the others' packets
                    log.debug("could not send %r to %s", event, sid, exc_info=True)
                    break

    def _encode(self, event: str, args: list[Any], namespace: str) -> Any:
        return self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()

    def _full_text(self, event: str, data: LatestWins, namespace: str) -> Any:
        """The encoded self-contained version of ``data``, built on first use, once for every recipient."""
        memo: list[str] = []

        def full_text() -> str:
            if not memo:
                memo.append(self._encode(event, [dict(data.full())], namespace))
            return memo[0]

        return full_text


class _EngineServer(engineio.AsyncServer):  # type: ignore[misc]
    """Engine.IO server whose sockets queue with :class:`LatestWinsQueue` (bounded render backlog)."""

    def create_queue(self, *args: Any, **kwargs: Any) -> LatestWinsQueue:
        return LatestWinsQueue(*args, **kwargs)


class ExperimentSocketServer(TargetedServer):
    """``socketio.AsyncServer`` with the experiment's message limits and latest-wins render delivery.

    Args:
        max_message_chars: Longest text message parsed. A longer one (up to Engine.IO's
            ``max_http_buffer_size``, beyond which Engine.IO closes the connection) is not parsed: an
            ack-bearing event is answered ``{"ok": False, "code": "too_large", "retryable": False, ...}`` and
            the client also gets an ``error`` event, so a page stops instead of reconnecting and resending.
        **kwargs: As for ``socketio.AsyncServer``.

    Attributes:
        refused: Messages refused here, per reason ("too_large", "attachments", "stray_attachment").
    """

    def __init__(self, *, max_message_chars: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_message_chars = max_message_chars
        self.refused: Counter[str] = Counter()

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineServer

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        pending = eio_sid in self._binary_packet
        if not pending and isinstance(data, str) and len(data) > self.max_message_chars:
            self.refused["too_large"] += 1
            await self._refuse(eio_sid, data, "too_large",
                               f"message is {len(data)} characters; the limit is {self.max_message_chars}")
            return
        if not pending and isinstance(data, bytes):
            self.refused["stray_attachment"] += 1  # parts of a packet refused below, or a client bug
            return
        try:
            await super()._handle_eio_message(eio_sid, data)
        except PacketLimitError as exc:
            self._binary_packet.pop(eio_sid, None)
            self.refused["attachments"] += 1
            log.warning("refused a packet from %s: %s", eio_sid, exc)
            await self._refuse(eio_sid, data if isinstance(data, str) else "", "attachments", str(exc))

    async def _refuse(self, eio_sid: str, data: str, code: str, message: str) -> None:
        """Answers a refused message from its header alone: the ack (if asked for) and an ``error`` event."""
        header = _HEADER.match(data, 0, 400) if isinstance(data, str) else None
        if header is None:
            log.warning("refused an unreadable message from %s (%s)", eio_sid, code)
            return
        packet_type, namespace, ack_id, quoted = header.groups()
        event = json.loads(quoted)
        log.warning("refused %r from %s: %s", event, eio_sid, message)
        namespace = namespace or "/"
        if ack_id is not None and int(packet_type) in (sio_packet.EVENT, sio_packet.BINARY_EVENT):
            answer = {"ok": False, "code": code, "error": message, "retryable": False}
            await self._send_packet(eio_sid, self.packet_class(sio_packet.ACK, namespace=namespace,
                                                               data=[answer], id=int(ack_id)))
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is not None:
            await self.emit("error", {"event": event, "message": message}, to=sid, namespace=namespace)
