"""Socket.IO emits across server processes through Redis, with the one-process fast path kept for local sockets.

:class:`RedisEmitManager` is python-socketio's ``AsyncRedisManager`` (same channel, same message format, so
rooms across processes, ``enter_room``/``leave_room`` of a socket on another process, ``to=`` a socket of
another process and ``skip_sid`` behave as python-socketio documents) whose local deliveries are
:class:`~interactive_gym.server.fast_socketio.DirectSendManager`'s: each local recipient's packet is queued
within the emit call, and a :class:`~interactive_gym.server.latest_wins.LatestWins` render stays a frame that
a newer one replaces for a slow reader.

What never goes through Redis:

- an emit to a socket connected to this process (``to=sid``): a socket lives on exactly one process, and its
  own room holds only itself (python-socketio refuses to enter anyone else into a sid's room);
- an emit to a room whose members are all known to be here (see room_directory.py: a Redis set per room of
  the processes with members, read once when this process's first member entered, kept current by
  announcements). A game whose players are all connected to its process publishes nothing per tick.

Everything else is delivered to the local members at once and published, as ``AsyncRedisManager`` does: an
emit to a socket of another process, to a room with members elsewhere or not yet known, with a callback, or
with binary data (python-socketio's own path). Publishes wait in one queue that a publisher task sends in
pipelines, one batch after another (an emit does not wait for Redis's reply; it waits only when
``MAX_OUTBOX`` messages are queued). So the emits (and remote ``enter_room`` requests) of one process reach the
other processes in the order they were made, as Redis delivers a channel's messages in order.

A ``LatestWins`` payload published for another process carries its self-contained form too (computed at
emit time, when the game's state is the one sent), so the receiving process can still replace a waiting
render with a full one for a slow reader there.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
from typing import Any

from redis.asyncio import Redis
from socketio import AsyncRedisManager
from socketio.async_pubsub_manager import AsyncPubSubManager

from interactive_gym.server.cluster.room_directory import RoomDirectory, RoomKey
from interactive_gym.server.fast_socketio import DirectSendManager
from interactive_gym.server.latest_wins import LatestWins
from interactive_gym.server.wire_json import compact_dumps

log = logging.getLogger("interactive_gym.cluster.emits")

DEFAULT_CHANNEL = "interactive-gym"
DIRECTORY_WAIT_S = 2.0  # longest an enter_room waits for its room's directory entry to be written
WRITE_ATTEMPTS = 5  # directory writes are retried this often (backoff 0.1 s doubling) before giving up
RESUBSCRIBE_MAX_S = 30.0
MAX_OUTBOX = 10_000  # queued publishes beyond which an emit waits for the publisher (bounded memory)


class RedisEmitManager(AsyncRedisManager, DirectSendManager):  # type: ignore[misc]
    """``AsyncRedisManager`` that skips Redis for recipients it knows are connected here.

    The method order makes python-socketio's pub/sub machinery deliver locally through
    ``DirectSendManager.emit`` (``AsyncPubSubManager``'s ``super().emit`` resolves to it).

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` URL, the same for every process.
        channel: Pub/sub channel, the same for every process; room sets and announcements use it as a prefix.
        redis_options: Extra keyword arguments for ``redis.asyncio.Redis.from_url``.

    Attributes:
        published_emits: Emits this process published (for the benchmark and the admin page).
        directory: What this process knows about the rooms it has members of.
    """

    name = "interactive-gym-redis"

    def __init__(self, url: str, *, channel: str = DEFAULT_CHANNEL, redis_options: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        if url.split(":", 1)[0].lower() not in ("redis", "rediss", "unix"):
            raise ValueError(f"RedisEmitManager needs a redis://, rediss:// or unix:// URL, not {url!r}")
        super().__init__(url=url, channel=channel, redis_options=redis_options, **kwargs)
        self.rooms_channel = f"{channel}:rooms"
        self.directory = RoomDirectory(self.host_id)
        self.published_emits = 0
        self._client: Redis | None = None
        self._ops: asyncio.Queue[tuple[str, RoomKey, int | None]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._outbox: collections.deque[str] = collections.deque()
        self._queued, self._drained = asyncio.Event(), asyncio.Event()
        # Sockets of other processes this process entered into a room: their process announces the room
        # only after it applied the request, and emits sent meanwhile must be published.
        self._entered_elsewhere: dict[RoomKey, set[str]] = {}

    # ------------------------------------------------------------------------------------------ lifecycle

    def initialize(self) -> None:
        super().initialize()  # starts the listener (AsyncPubSubManager._thread -> self._listen)
        self._writer = self.server.start_background_task(self._write_directory)
        self._publisher = self.server.start_background_task(self._publish_queued)

    def client(self) -> Redis:
        """The Redis client for publishes and the room directory (created on first use)."""
        if self._client is None:
            self._client = Redis.from_url(self.redis_url, **self.redis_options)
        return self._client

    async def close(self) -> None:
        """Publishes what is queued (bounded wait), stops the listener, the directory writer and the publisher,
        and closes the Redis connections (at shutdown)."""
        deadline = asyncio.get_running_loop().time() + DIRECTORY_WAIT_S
        while self._outbox and self._publisher is not None and not self._publisher.done() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        for task in (getattr(self, "thread", None), self._writer, self._publisher):
            if isinstance(task, asyncio.Task):
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # ---------------------------------------------------------------------------------------------- emits

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None, **kwargs: Any) -> None:
        room = to or room
        namespace = namespace or "/"
        if kwargs.get("ignore_queue") or self.only_here(namespace, room):
            await DirectSendManager.emit(self, event, data, namespace, room=room, skip_sid=skip_sid,
                                         callback=callback)
            return
        text = None if callback is not None else self._emit_message(event, data, namespace, room, skip_sid)
        if text is None:
            # A callback or binary data: python-socketio's own path (local delivery, then a publish).
            self.published_emits += 1
            await AsyncPubSubManager.emit(self, event, data, namespace=namespace, room=room, skip_sid=skip_sid,
                                          callback=callback)
            return
        await DirectSendManager.emit(self, event, data, namespace, room=room, skip_sid=skip_sid)
        self.published_emits += 1
        await self._publish(text)

    def only_here(self, namespace: str, room: Any) -> bool:
        """Whether every recipient of an emit to ``room`` is known to be connected to this process."""
        if type(room) is str:  # noqa: E721 - the per-tick case, kept to a few dict lookups
            rooms = self.rooms.get(namespace)
            if rooms is None or room not in rooms:
                return False  # no member here: a socket or a room of other processes
            sockets = rooms.get(None)
            if sockets is not None and room in sockets:
                return True  # a socket of this process (its own room holds only itself)
            key = (namespace, room)
            return self.directory.only_here(key) and (not self._entered_elsewhere
                                                      or key not in self._entered_elsewhere)
        if isinstance(room, (list, tuple)) and room:
            return all(self.only_here(namespace, each) for each in room)
        return False  # None (everyone) or anything else: python-socketio's semantics, published

    def _emit_message(self, event: str, data: Any, namespace: str, room: Any, skip_sid: Any) -> str | None:
        """The published text (python-socketio's message format), or ``None`` if it holds binary data."""
        args = list(data) if isinstance(data, tuple) else [data]
        message: dict[str, Any] = {"method": "emit", "event": event, "data": args, "binary": False,
                                   "namespace": namespace, "room": room, "skip_sid": skip_sid, "callback": None}
        if isinstance(data, LatestWins):
            message["latest_wins"] = data.key
            message["full"] = data.full()
        message["host_id"] = self.host_id  # last, as python-socketio's messages: see _listen
        try:
            return compact_dumps(message)
        except (TypeError, ValueError):
            return None  # bytes inside: python-socketio's path encodes the attachments

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        key, data = message.get("latest_wins"), message.get("data")
        if not isinstance(key, str) or not isinstance(data, list) or len(data) != 1 \
                or not isinstance(data[0], dict) or not isinstance(message.get("full"), dict):
            await super()._handle_emit(message)
            return
        full = message["full"]
        payload = LatestWins(data[0], key=key, full=lambda: full)
        await DirectSendManager.emit(self, str(message.get("event")), payload, message.get("namespace") or "/",
                                     room=message.get("room"), skip_sid=message.get("skip_sid"))

    async def _publish(self, data: Any) -> None:
        """Queues a message for the publisher task (sent in order, many per round trip); waits only when
        ``MAX_OUTBOX`` messages are queued already (Redis slower than this process emits)."""
        text = data if isinstance(data, str) else compact_dumps(data)
        if self._publisher is None or self._publisher.done():
            await self._send_batch([text])  # not started (or stopped): publish in place
            return
        while len(self._outbox) >= MAX_OUTBOX:
            self._drained.clear()
            await self._drained.wait()
        self._outbox.append(text)
        self._queued.set()

    async def _publish_queued(self) -> None:
        """Publishes the queued messages, all that are waiting in one pipeline, one batch after another."""
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._outbox:
                batch = list(self._outbox)
                self._outbox.clear()
                self._drained.set()
                await self._send_batch(batch)

    async def _send_batch(self, batch: list[str]) -> None:
        for attempt in range(2):
            try:
                async with self.client().pipeline(transaction=False) as pipe:
                    for text in batch:
                        pipe.publish(self.channel, text)
                    await pipe.execute()
                return
            except Exception:  # noqa: BLE001 - a lost connection is retried once, then logged
                if attempt:
                    log.error("could not publish to Redis (%s); %d emits to other processes are lost",
                              self.redis_url, len(batch), exc_info=True)

    # ---------------------------------------------------------------------------------------------- rooms

    async def enter_room(self, sid: str, namespace: str, room: str, eio_sid: str | None = None) -> None:
        namespace = namespace or "/"
        if not (self.is_connected(sid, namespace) or self.is_pre_connected(sid, namespace)):
            self._entered_elsewhere.setdefault((namespace, room), set()).add(sid)
        opening = (namespace, room) not in self.directory
        await super().enter_room(sid, namespace, room, eio_sid=eio_sid)
        # A first local member: let the directory entry be written before the caller goes on (so what it
        # does next, e.g. telling another process, comes after the announcement). Bounded.
        if opening and (namespace, room) in self.directory and self._writer is not None:
            try:
                await asyncio.wait_for(self._ops.join(), DIRECTORY_WAIT_S)
            except TimeoutError:
                log.warning("room directory not written within %s s (Redis slow or down)", DIRECTORY_WAIT_S)

    async def leave_room(self, sid: str, namespace: str, room: str) -> None:
        namespace = namespace or "/"
        elsewhere = self._entered_elsewhere.get((namespace, room))
        if elsewhere is not None:
            elsewhere.discard(sid)
            if not elsewhere:
                del self._entered_elsewhere[(namespace, room)]
        await super().leave_room(sid, namespace, room)

    async def close_room(self, room: str, namespace: str | None = None) -> None:
        self._entered_elsewhere.pop((namespace or "/", room), None)
        await super().close_room(room, namespace)

    def basic_enter_room(self, sid: str, namespace: str, room: Any, eio_sid: str | None = None) -> None:
        opened = room is not None and room != sid and room not in self.rooms.get(namespace, {})
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        if opened:
            key = (namespace, room)
            self._ops.put_nowait(("open", key, self.directory.opened(key)))

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)
        key = (namespace, room)
        if room is not None and room != sid and key in self.directory \
                and room not in self.rooms.get(namespace, {}):
            self.directory.closed(key)
            self._ops.put_nowait(("close", key, None))

    # ------------------------------------------------------------------------------------ directory shell

    def _set_key(self, key: RoomKey) -> str:
        return f"{self.channel}:room:{json.dumps(list(key))}"

    async def _write_directory(self) -> None:
        """Applies this process's room openings and closings to Redis, one at a time, in order."""
        while True:
            op, key, generation = await self._ops.get()
            try:
                for attempt in range(WRITE_ATTEMPTS):
                    try:
                        await self._write(op, key, generation)
                        break
                    except Exception:  # noqa: BLE001 - Redis down: retried, then logged
                        if attempt == WRITE_ATTEMPTS - 1:
                            log.error("could not write room %r to Redis: other processes may not publish "
                                      "emits for its members here", key, exc_info=True)
                        else:
                            await asyncio.sleep(0.1 * 2 ** attempt)
            finally:
                self._ops.task_done()

    async def _write(self, op: str, key: RoomKey, generation: int | None) -> None:
        client, name = self.client(), self._set_key(key)
        present = op != "close"
        if present:
            async with client.pipeline(transaction=True) as pipe:
                pipe.sadd(name, self.host_id)
                pipe.smembers(name)
                _, members = await pipe.execute()
            if generation is not None:
                self.directory.snapshot(key, generation, (m.decode() for m in members))
        else:
            await client.srem(name, self.host_id)
        await client.publish(self.rooms_channel, json.dumps([key[0], key[1], self.host_id, present]))

    def _announcement(self, raw: Any) -> None:
        try:
            namespace, room, host, present = json.loads(raw)
        except (TypeError, ValueError):
            log.warning("ignored a malformed room announcement %r", raw[:200])
            return
        self.directory.announced((str(namespace), str(room)), str(host), bool(present))

    async def _listen(self) -> Any:
        """Yields the emit channel's messages; handles room announcements; resubscribes after a failure."""
        channel, rooms_channel, delay = self.channel.encode(), self.rooms_channel.encode(), 1.0
        own = f'"host_id":"{self.host_id}"}}'.encode()
        while True:
            pubsub = self.client().pubsub()
            try:
                await pubsub.subscribe(self.channel, self.rooms_channel)
                confirmed = 0
                async for message in pubsub.listen():
                    kind = message.get("type")
                    if kind == "subscribe":
                        # Both subscriptions confirmed by Redis: snapshots read from now on miss nothing.
                        confirmed += 1
                        if confirmed == 2:
                            delay = 1.0
                            for key, generation in self.directory.resubscribed():
                                self._ops.put_nowait(("open", key, generation))
                    elif kind == "message" and message.get("channel") == channel:
                        # Redis sends this process its own publishes too: skipped before decoding them (the
                        # pub/sub listener would decode, then drop them by host id).
                        if not message["data"].endswith(own):
                            yield message["data"]
                    elif kind == "message" and message.get("channel") == rooms_channel:
                        self._announcement(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the connection broke: resubscribe with backoff
                log.error("lost the Redis subscription; resubscribing in %.0f s", delay, exc_info=True)
            finally:
                self.directory.unsubscribed()
                await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESUBSCRIBE_MAX_S)
