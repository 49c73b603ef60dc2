"""JsonFirstPacket and DirectSendManager send exactly what python-socketio's defaults send."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
from pathlib import Path
from typing import Any

import pytest
import socketio
from engineio import packet as eio_packet
from hypothesis import given, settings
from hypothesis import strategies as st
from socketio import packet as sio_packet

from interactive_gym.server import message_limits as app_limits
from interactive_gym.server.fast_socketio import (
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    DirectSendManager,
    JsonFirstPacket,
    PacketLimitError,
)
from interactive_gym.server.latest_wins import LatestWins, LatestWinsFrame, LatestWinsQueue
from interactive_gym.server.upload_validation import MAX_UPLOAD_BYTES


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


# -- limits on incoming packets ---------------------------------------------------------------------------------
@pytest.mark.parametrize("text", ['59-["x",{"_placeholder":true,"num":0}]', '5999999999-["x"]', '50-["x"]', '5-["x"]',
                                  '69-0["x"]'])
def test_a_binary_packet_declaring_too_many_or_no_attachments_is_refused_before_parsing(text: str) -> None:
    with pytest.raises(PacketLimitError, match="1 to 8 attachments"):
        JsonFirstPacket(encoded_packet=text)


def test_attachments_up_to_the_caps_assemble_like_the_default() -> None:
    placeholders = ",".join(f'{{"_placeholder":true,"num":{i}}}' for i in range(MAX_ATTACHMENTS))
    text = f'5{MAX_ATTACHMENTS}-["x",[{placeholders}]]'
    mine, theirs = JsonFirstPacket(encoded_packet=text), sio_packet.Packet(encoded_packet=text)
    parts = [bytes([i]) * (MAX_ATTACHMENT_BYTES // MAX_ATTACHMENTS) for i in range(MAX_ATTACHMENTS)]
    done = [(mine.add_attachment(p), theirs.add_attachment(p)) for p in parts]
    assert done[-1] == (True, True) and mine.data == theirs.data


def test_attachments_over_the_byte_cap_are_refused() -> None:
    packet = JsonFirstPacket(encoded_packet='52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    assert packet.add_attachment(b"a" * MAX_ATTACHMENT_BYTES) is False
    with pytest.raises(PacketLimitError, match="larger than"):
        packet.add_attachment(b"b")


def test_the_pages_upload_cap_is_the_servers() -> None:
    js = (Path(__file__).resolve().parents[2] / "interactive_gym/server/static/js/episode_uploader.js").read_text()
    match = re.search(r"export const MAX_UPLOAD_BYTES = ([\d\s*]+);", js)
    assert match is not None
    assert eval(match.group(1), {"__builtins__": {}}) == MAX_UPLOAD_BYTES  # noqa: S307 - digits and '*' only


def test_engineio_admits_every_upload_the_validator_accepts() -> None:
    assert MAX_UPLOAD_BYTES + len('21234567890["browser_episode",]') <= app_limits.MAX_MESSAGE_CHARS
    assert app_limits.MAX_ENGINEIO_BYTES > app_limits.MAX_MESSAGE_CHARS
    assert app_limits.MAX_BEACON_BYTES >= MAX_UPLOAD_BYTES


# -- latest-wins render delivery ------------------------------------------------------------------------------------
def frame(key: str, n: int, calls: list[str]) -> LatestWinsFrame:
    def full() -> str:
        calls.append(f"full-{key}-{n}")
        return f"F{key}{n}"

    return LatestWinsFrame(key, f"d{key}{n}", full)


def drain(queue: asyncio.Queue) -> list[Any]:
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
        queue.task_done()
    return items


def test_a_waiting_render_is_replaced_by_the_newer_one_sent_full_at_the_end() -> None:
    async def main() -> None:
        queue = LatestWinsQueue()
        calls: list[str] = []
        other = eio_packet.Packet(eio_packet.MESSAGE, "episode_start")
        for item in (frame("g", 1, calls), other, frame("g", 2, calls), frame("h", 1, calls), frame("g", 3, calls)):
            queue.put_nowait(item)
        assert [p.data for p in drain(queue)] == ["episode_start", "dh1", "Fg3"]
        assert calls == ["full-g-2", "full-g-3"] and queue.superseded == 2
        # Once taken by the transport, a frame is out of reach: the next one is queued as it is (a diff).
        queue.put_nowait(frame("g", 4, calls))
        assert [p.data for p in drain(queue)] == ["dg4"]
        await asyncio.wait_for(queue.join(), 1)  # dropped frames do not leave join() waiting forever

    run(main())


def test_non_render_packets_are_never_dropped_and_keep_their_order() -> None:
    queue = LatestWinsQueue()
    sent = [eio_packet.Packet(eio_packet.MESSAGE, f"m{i}") for i in range(50)]
    for i, packet in enumerate(sent):
        queue.put_nowait(packet)
        queue.put_nowait(frame("g", i, []))
    items = drain(queue)
    assert [p.data for p in items if not isinstance(p, LatestWinsFrame)] == [f"m{i}" for i in range(50)]
    assert [p.data for p in items if isinstance(p, LatestWinsFrame)] == ["Fg49"]


def test_the_manager_builds_the_full_version_once_per_emit_for_every_slow_recipient() -> None:
    async def main() -> tuple[list[str], list[str]]:
        manager, server = DirectSendManager(), FakeServer(JsonFirstPacket)
        await connected(manager, server)
        queues = {"e1": LatestWinsQueue(), "e2": LatestWinsQueue()}

        async def send_packet(eio_sid: str, pkt: eio_packet.Packet) -> None:
            queues[eio_sid].put_nowait(pkt)

        server.eio.send_packet = send_packet  # type: ignore[method-assign]
        snapshots: list[int] = []

        def payload(t: int) -> LatestWins:
            return LatestWins({"t": t, "packet": {"seq": t}}, key="g-1",
                              full=lambda: snapshots.append(t) or {"t": t, "packet": {"seq": t, "full": True}})

        for t in (1, 2, 3):
            await manager.emit("render", payload(t), "/", room="g-1")
        assert snapshots == [2, 3]  # built only when something was dropped, once for both sockets
        return [p.encode() for p in drain(queues["e1"])], [p.encode() for p in drain(queues["e2"])]

    first, second = run(main())
    assert first == second == ['42["render",{"t":3,"packet":{"seq":3,"full":true}}]']


def test_a_latest_wins_payload_is_the_plain_payload_to_everyone_else() -> None:
    payload = LatestWins({"t": 1, "packet": {"seq": 1}}, key="g", full=dict)
    assert payload == {"t": 1, "packet": {"seq": 1}}
    assert JsonFirstPacket(sio_packet.EVENT, data=["render", payload]).encode() == '2["render",{"t":1,"packet":{"seq":1}}]'
