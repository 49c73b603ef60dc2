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
message longer than ``max_message_chars`` is answered ``too_large`` without being parsed, a binary packet
may declare at most :data:`MAX_ATTACHMENTS` attachments of :data:`MAX_ATTACHMENT_BYTES` in all, and a message
that is not valid Socket.IO/JSON (or nests too deeply, or holds an integer of over 100 digits) is answered
``malformed``.

Large messages are decoded off the event loop. Every server-mode game ticks on the loop, and python-socketio
decodes each message there: for a cap-sized (4 MiB) upload that is a stall of 0.4-1 s for every game. A text
message over ``off_loop_chars`` (64 KiB; a smaller one parses in ~1 ms, less than the hop would cost) is
decoded in one worker thread, while later messages of the same socket wait for it (so no event overtakes
an earlier one). Thread or process, measured on a cap-sized upload (2 shared cores, under load 8-14, so
read the ratios more than the figures; benchmarks/results/large_upload_loop_lag.json has the raw ones):

- on the loop (python-socketio's default) the loop stalls for the whole parse: worst stall 950 ms (median of
  3 runs, benchmarks/large_upload_loop_lag.py), the re-encode the validator did to size it on top;
- a thread with engineio's parser gives the GIL up only at its per-integer hook (engineio.json has no float
  hook), so a float- or string-heavy upload holds it through the parse; for integer-heavy uploads the
  stall measured 52 ms (the limits' first measurement) to 825 ms (one scratch run here at load 8.6);
- a process isolates the parse, but the object comes back pickled (~2.3 MB): ``pickle.loads`` alone took
  ~130 ms on the loop (the loop stalled ~80 ms at worst), plus pickling in the child;
- a thread whose parser calls a Python hook for every number (:class:`YieldingJson`, integer hook with
  engineio's guard against huge integers): the parse takes ~10 % longer (430 vs 390 ms), the loop's worst
  stall is 40 ms (median of 3 runs; 30 ms with no upload at all under the same load). This is the one used.

One worker thread (not a pool): parses are CPU-bound under one GIL, so parallel parses would finish no
sooner and would each take turns against the loop.

Every event whose first argument is an object gets it as :class:`~upload_validation.SizedPayload` carrying
its size on the wire (UTF-8 bytes of the argument's JSON text, exactly what the page measured with
``utf8Length(JSON.stringify(payload))``), so the upload validator never re-encodes a payload to size it.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import logging
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import engineio
from engineio import packet as eio_packet
from socketio import AsyncManager
from socketio import packet as sio_packet

from interactive_gym.server.latest_wins import LatestWins, LatestWinsFrame, LatestWinsQueue
from interactive_gym.server.message_limits import PARSE_OFF_LOOP_BYTES
from interactive_gym.server.socket_server import TargetedServer
from interactive_gym.server.upload_validation import SizedPayload
from interactive_gym.server.wire_json import WireJson, bounded_int, compact_dumps

log = logging.getLogger("interactive_gym.socketio")

# The page's only binary event is the input relay (one ArrayBuffer of at most 4 KiB); a few more leave room
# for a future event without letting a client hold a socket's memory with thousands of pending parts.
MAX_ATTACHMENTS = 8
MAX_ATTACHMENT_BYTES = 1024 * 1024
# Type, attachment count, namespace, ack id and the event name: what an oversized message is answered from.
_HEADER = re.compile(r'(\d)(?:\d{1,10}-)?(?:(/[^,]{0,100}),)?(\d{1,15})?\[("(?:[^"\\]|\\.){1,100}")')


class PacketLimitError(ValueError):
    """An incoming packet breaks a limit (attachment count or bytes); it is refused before it is assembled."""


def _float(text: str) -> float:
    # A Python function, not ``float`` itself: the C parser then runs bytecode here, where the thread can
    # hand the GIL to the event loop (a payload of floats would otherwise hold it for the whole parse).
    return float(text)


class YieldingJson:
    """The JSON namespace of off-loop decodes: engineio's rules, with a Python hook at every number."""

    dumps = staticmethod(json.dumps)

    @staticmethod
    def loads(text: str) -> Any:
        return json.loads(text, parse_int=bounded_int, parse_float=_float)


@dataclass(frozen=True)
class DecodedMessage:
    """A text message already decoded (in the worker thread or on the loop): :meth:`JsonFirstPacket.decode`
    takes its packet as it is, so python-socketio dispatches it exactly as a message it decoded itself."""

    packet: JsonFirstPacket


class JsonFirstPacket(sio_packet.Packet):
    """A Socket.IO packet that JSON-encodes once up front instead of scanning the payload for binary parts.

    Its JSON is :class:`~interactive_gym.server.wire_json.WireJson` (the same text as python-socketio's, with
    the encoder and decoder built once), unless the server was given its own ``json=`` module.
    """

    json: Any = WireJson

    def __init__(self, packet_type: int = sio_packet.EVENT, data: Any = None, namespace: str | None = None,
                 id: int | None = None, binary: bool | None = None,  # noqa: A002 - the base class's name
                 encoded_packet: Any = None) -> None:
        self._text: tuple[Any, str] | None = None
        if binary is None and encoded_packet is None and data is not None and self.uses_binary_events:
            try:
                text = (compact_dumps(data) if self.json is WireJson
                        else self.json.dumps(data, separators=(",", ":")))
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
        if isinstance(encoded_packet, DecodedMessage):
            decoded: Any = encoded_packet.packet  # python-socketio's packet attributes are untyped
            self.packet_type, self.namespace = decoded.packet_type, decoded.namespace
            self.id, self.data = decoded.id, decoded.data
            self._attachment_bytes = 0
            return int(decoded.attachment_count)
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


class _OffLoopPacket(JsonFirstPacket):
    json = YieldingJson


def decode_message(text: str, *, off_loop: bool = False) -> DecodedMessage:
    """Decodes one Socket.IO text message; pure (no I/O), safe to run in a worker thread.

    The first argument of an event, when it is an object, comes back as a
    :class:`~upload_validation.SizedPayload` whose ``wire_bytes`` are the UTF-8 bytes of the arguments'
    text: for a one-argument event (every event a page sends) exactly the JSON of that argument as sent.

    Args:
        text: The message (``2["event",{...}]``, with optional attachment count, namespace and ack id).
        off_loop: Parse with :class:`YieldingJson` (lets the event loop run while a worker thread parses).

    Raises:
        ValueError: Not a valid packet or not valid JSON, or an integer of over 100 digits
            (:class:`PacketLimitError` for too many declared attachments).
        RecursionError: The JSON nests too deeply.
    """
    packet = (_OffLoopPacket if off_loop else JsonFirstPacket)(encoded_packet=text)
    data = packet.data
    if packet.packet_type == sio_packet.EVENT and isinstance(data, list) and len(data) > 1 \
            and isinstance(data[1], dict):
        header = _HEADER.match(text, 0, 400)
        if header is not None:
            # Arguments: after the event name and its comma, up to the closing bracket.
            start = header.end() + 1
            size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
            head = start if text.isascii() else len(text[:start].encode("utf-8", "surrogatepass"))
            data[1] = SizedPayload(data[1], wire_bytes=size - head - 1)
    return DecodedMessage(packet)


_EVENT_DIGIT = str(sio_packet.EVENT)


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
        packet_class = self.server.packet_class
        if namespace == "/" and packet_class is JsonFirstPacket and packet_class.json is WireJson:
            # What JsonFirstPacket(EVENT, namespace="/", data=...).encode() returns (the type digit, no namespace,
            # no ack id, the JSON), without building the packet: every render of every game comes through here.
            try:
                return _EVENT_DIGIT + compact_dumps([event, *args])
            except (TypeError, ValueError):
                pass  # bytes inside (or not JSON at all): the packet class decides, as below
        return packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()

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
    """``socketio.AsyncServer`` with the experiment's message limits, off-loop decoding of large messages and
    latest-wins render delivery.

    Args:
        max_message_chars: Longest text message parsed. A longer one (up to Engine.IO's
            ``max_http_buffer_size``, beyond which Engine.IO closes the connection) is not parsed: an
            ack-bearing event is answered ``{"ok": False, "code": "too_large", "retryable": False, ...}`` and
            the client also gets an ``error`` event, so a page stops instead of reconnecting and resending.
        off_loop_chars: Text messages longer than this are decoded in a worker thread (see the module
            docstring); ``None`` decodes every message on the event loop, as python-socketio does (for
            comparison in benchmarks).
        **kwargs: As for ``socketio.AsyncServer``; ``serializer`` must be :class:`JsonFirstPacket` (the
            default here) or a subclass.

    Attributes:
        refused: Messages refused here, per reason ("too_large", "attachments", "stray_attachment",
            "malformed").
        decoded_off_loop: How many messages were decoded in the worker thread.
        off_loop_spans: ``(start, end)`` of the latest decodes in the worker (``time.perf_counter``), to check
            that the event loop ran meanwhile.
    """

    def __init__(self, *, max_message_chars: int, off_loop_chars: int | None = PARSE_OFF_LOOP_BYTES,
                 **kwargs: Any) -> None:
        kwargs.setdefault("serializer", JsonFirstPacket)
        serializer = kwargs["serializer"]
        if not (isinstance(serializer, type) and issubclass(serializer, JsonFirstPacket)):
            raise TypeError("ExperimentSocketServer needs serializer=JsonFirstPacket (it hands decoded messages "
                            f"to the packet class), not {serializer!r}")
        super().__init__(**kwargs)
        self.max_message_chars = max_message_chars
        self.off_loop_chars = off_loop_chars
        self.refused: Counter[str] = Counter()
        self.decoded_off_loop = 0
        self.off_loop_spans: collections.deque[tuple[float, float]] = collections.deque(maxlen=16)
        self._decoder: ThreadPoolExecutor | None = None
        # Per socket, the last of its messages still being handled after a large one: the next waits for it.
        self._in_order: dict[str, asyncio.Future[None]] = {}

    def _engineio_server_class(self) -> type[engineio.AsyncServer]:
        return _EngineServer

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        earlier = self._in_order.get(eio_sid)
        if earlier is None and not self._is_large(data):
            await self._handle_message(eio_sid, data)  # nothing of this socket pending: the common case
            return
        # A large message, or one behind it: join the socket's chain, so events reach handlers in the order
        # they were sent. (Over a websocket Engine.IO waits for each message before reading the next anyway;
        # concurrent long-polling POSTs of one socket do not.)
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_order[eio_sid] = turn
        try:
            if earlier is not None:
                await asyncio.wait([earlier])  # never cancels the earlier turn, even if this task is cancelled
            await self._handle_message(eio_sid, data)
        finally:
            turn.set_result(None)
            if self._in_order.get(eio_sid) is turn:
                del self._in_order[eio_sid]

    def _is_large(self, data: Any) -> bool:
        return isinstance(data, str) and self.off_loop_chars is not None and len(data) > self.off_loop_chars

    async def _handle_message(self, eio_sid: str, data: Any) -> None:
        pending = eio_sid in self._binary_packet
        if not pending and isinstance(data, str) and len(data) > self.max_message_chars:
            self.refused["too_large"] += 1
            await self._refuse(eio_sid, data, "too_large",
                               f"message is {len(data)} characters; the limit is {self.max_message_chars}")
            return
        if not pending and isinstance(data, bytes):
            self.refused["stray_attachment"] += 1  # parts of a packet refused below, or a client bug
            return
        text = data if isinstance(data, str) else ""
        try:
            if not pending and isinstance(data, str):
                data = await self._decode(data)
            await super()._handle_eio_message(eio_sid, data)
        except PacketLimitError as exc:
            self._binary_packet.pop(eio_sid, None)
            self.refused["attachments"] += 1
            log.warning("refused a packet from %s: %s", eio_sid, exc)
            await self._refuse(eio_sid, text, "attachments", str(exc))
        except (ValueError, RecursionError) as exc:
            # Not JSON, nested too deeply, an integer too long, an unknown packet type: python-socketio
            # would log a traceback and say nothing; the client gets a clear answer instead.
            self.refused["malformed"] += 1
            reason = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
            await self._refuse(eio_sid, text, "malformed", f"message could not be decoded: {reason}")

    async def _decode(self, text: str) -> DecodedMessage:
        """The decoded message: in the worker thread when large, else here (a hop costs more than ~1 ms)."""
        if not self._is_large(text):
            return decode_message(text)
        if self._decoder is None:
            self._decoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="socketio-decode")
        self.decoded_off_loop += 1
        started = time.perf_counter()
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._decoder, functools.partial(decode_message, text, off_loop=True))
        finally:
            self.off_loop_spans.append((started, time.perf_counter()))

    def close_decoder(self) -> None:
        """Stops the worker thread (after any decode in progress); a later large message starts a new one."""
        if self._decoder is not None:
            self._decoder.shutdown(wait=False)
            self._decoder = None

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
