"""JsonFirstPacket and DirectSendManager send exactly what python-socketio's defaults send."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from typing import Any

import pytest
import socketio
from engineio import packet as eio_packet
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet as sio_packet

from interactive_gym.server.fast_socketio import DirectSendManager, JsonFirstPacket


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread: in a full test session Playwright's loop owns this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


payloads = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=6),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


def encoded(packet_class: type[sio_packet.Packet], **kwargs: Any) -> Any:
    try:
        packet = packet_class(**kwargs)
        return packet.packet_type, packet.encode()
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return type(exc)


@settings(max_examples=400, deadline=None)
@given(payloads, st.sampled_from([None, "/", "/games"]), st.sampled_from([None, 7]),
       st.sampled_from([sio_packet.EVENT, sio_packet.ACK]))
def test_packet_encodes_exactly_like_the_default(data: Any, namespace: str | None, ack_id: int | None,
                                                 packet_type: int) -> None:
    kwargs = dict(packet_type=packet_type, data=["render", data], namespace=namespace, id=ack_id)
    assert encoded(JsonFirstPacket, **kwargs) == encoded(sio_packet.Packet, **kwargs)


@pytest.mark.parametrize("data", [
    ["render", {"frame": b"\x00\x01"}], ["x", bytearray(b"ab")], ["x", (1, b"a")], ["x", {1: "int key"}],
    ["x", float("nan")], ["x", object()], None, ["x", {"deep": [[{"b": b"z"}]]}],
], ids=repr)
def test_edge_payloads_match_the_default(data: Any) -> None:
    kwargs = dict(packet_type=sio_packet.EVENT, data=data, namespace="/")
    assert encoded(JsonFirstPacket, **kwargs) == encoded(sio_packet.Packet, **kwargs)


def test_incoming_packets_decode_like_the_default() -> None:
    for text in ('2["keys","g-1",["ArrowUp"],3]', '21["ack"]', "0/games,", '451-["up",{"_placeholder":true,"num":0}]'):
        mine, theirs = JsonFirstPacket(encoded_packet=text), sio_packet.Packet(encoded_packet=text)
        assert (mine.packet_type, mine.namespace, mine.id, mine.data, mine.attachment_count) == (
            theirs.packet_type, theirs.namespace, theirs.id, theirs.data, theirs.attachment_count)


def test_a_mutated_payload_is_encoded_afresh() -> None:
    packet = JsonFirstPacket(sio_packet.EVENT, data=["e", 1])
    packet.data = ["e", 2]
    assert packet.encode() == '2["e",2]'


# -- DirectSendManager ------------------------------------------------------------------------------------------
class FakeEngine:
    def __init__(self, broken: set[str] | None = None) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.broken = broken or set()
        self._ids = 0

    def generate_id(self) -> str:
        self._ids += 1
        return f"sid-{self._ids}"

    async def send_packet(self, eio_sid: str, pkt: eio_packet.Packet) -> None:
        if eio_sid in self.broken:
            raise ConnectionError("socket closed")
        self.sent.append((eio_sid, pkt.encode()))


class FakeServer:
    """What a manager uses of its server: the packet class and the Engine.IO server (send_packet)."""

    def __init__(self, packet_class: type[sio_packet.Packet], broken: set[str] | None = None) -> None:
        self.packet_class = packet_class
        self.eio = FakeEngine(broken)

    async def _send_eio_packet(self, eio_sid: str, pkt: eio_packet.Packet) -> None:  # the default's path
        # A failed send is a failed task in python-socketio: logged, never raised to the emitter.
        with contextlib.suppress(ConnectionError):
            await self.eio.send_packet(eio_sid, pkt)


async def connected(manager: socketio.AsyncManager, server: FakeServer) -> dict[str, str]:
    manager.set_server(server)
    manager.initialize()
    sids = {}
    for eio_sid in ("e1", "e2", "e3"):
        sids[eio_sid] = await manager.connect(eio_sid, "/")
    await manager.enter_room(sids["e1"], "/", "g-1")
    await manager.enter_room(sids["e2"], "/", "g-1")
    return sids


EMITS: list[dict[str, Any]] = [
    dict(event="render", data={"t": 1, "packet": {"objects": []}}, room="g-1"),
    dict(event="render", data={"t": 2}, to="g-1", skip_sid="e2"),
    dict(event="waiting", data=("a", 2), to="e3"),
    dict(event="ping", data=None, room=None),
    dict(event="blob", data={"bytes": b"\x00\xff"}, room="g-1"),
    dict(event="nobody", data=1, room="no-such-room"),
]


async def run_emits(manager_class: type[socketio.AsyncManager], packet_class: type[sio_packet.Packet],
                    broken: set[str] | None = None) -> list[tuple[str, Any]]:
    manager, server = manager_class(), FakeServer(packet_class, broken)
    sids = await connected(manager, server)
    for emit in EMITS:
        emit = dict(emit)
        for key in ("to", "skip_sid"):
            if emit.get(key) in sids:
                emit[key] = sids[emit[key]]
        await manager.emit(emit.pop("event"), emit.pop("data"), "/", **emit)
    await asyncio.sleep(0)
    return server.eio.sent


@pytest.mark.parametrize("broken", [set(), {"e1"}], ids=["all-open", "one-closed"])
def test_direct_manager_sends_what_the_default_sends(broken: set[str]) -> None:
    default = run(run_emits(socketio.AsyncManager, sio_packet.Packet, broken))
    direct = run(run_emits(DirectSendManager, JsonFirstPacket, broken))
    assert direct == default
    assert len(direct) > 5 and all(eio_sid not in broken for eio_sid, _ in direct)


def test_direct_manager_sends_without_creating_tasks() -> None:
    async def main() -> int:
        manager, server = DirectSendManager(), FakeServer(JsonFirstPacket)
        await connected(manager, server)
        before = len(asyncio.all_tasks())
        loop = asyncio.get_running_loop()
        created: list[Any] = []
        factory = loop.get_task_factory()
        loop.set_task_factory(lambda lp, coro, **kw: created.append(coro) or asyncio.Task(coro, loop=lp, **kw))
        try:
            await manager.emit("render", {"t": 1}, "/", room="g-1")
        finally:
            loop.set_task_factory(factory)
        assert len(server.eio.sent) == 2 and len(asyncio.all_tasks()) == before
        return len(created)

    assert run(main()) == 0


def test_emits_with_a_callback_use_the_default_path() -> None:
    async def main() -> list[tuple[str, Any]]:
        manager, server = DirectSendManager(), FakeServer(JsonFirstPacket)
        sids = await connected(manager, server)

        async def send_packet(eio_sid: str, pkt: sio_packet.Packet) -> None:
            server.eio.sent.append((eio_sid, pkt.encode()))

        server._send_packet = send_packet  # type: ignore[attr-defined]
        await manager.emit("ask", {"q": 1}, "/", to=sids["e3"], callback=lambda *a: None)
        return server.eio.sent

    sent = run(main())
    assert sent == [("e3", '21["ask",{"q":1}]')]
