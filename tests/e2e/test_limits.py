"""Message limits and slow readers against a real uvicorn server, with real clients (python-socketio, a raw
websocket that stops reading, raw HTTP). No browser: the server is the app's own socket stack
(ExperimentSocketServer + DirectSendManager + JsonFirstPacket, with the app's limits) and a ticking game loop
that renders a real Surface and emits as GameRunner does. Large uploads are decoded off the event loop, in
order, and undecodable messages are answered."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import time
from typing import Any

import socketio
import wsproto
import wsproto.events as ws_events
from experiment_harness import run_async
from starlette.applications import Starlette
from starlette.routing import Route

from interactive_gym.rendering import Surface
from interactive_gym.server.beacon import BeaconEndpoint
from interactive_gym.server.fast_socketio import DirectSendManager, ExperimentSocketServer, JsonFirstPacket
from interactive_gym.server.latest_wins import LatestWins
from interactive_gym.server.message_limits import MAX_BEACON_BYTES, MAX_ENGINEIO_BYTES, MAX_MESSAGE_CHARS
from interactive_gym.server.upload_validation import (
    MAX_UPLOAD_BYTES,
    EpisodeUpload,
    UploadRules,
    validate_episode_upload,
)

FPS = 50
OBJECTS = 600  # transient texts per frame: ~30 kB render packets, so a stalled reader's buffers fill in seconds


class TickingGame:
    """Renders a changing Surface FPS times a second and emits each packet to room "g" like GameRunner."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        self.surface = Surface(800, 600, "#000000")
        self.sent_seq: list[int] = []
        self.running = False

    def full(self, payload: dict[str, Any]) -> dict[str, Any]:
        return {**payload, "packet": self.surface.snapshot()}

    async def run(self) -> None:
        self.running = True
        t = 0
        while self.running:
            for i in range(OBJECTS):
                self.surface.text(i % 40 * 20, i // 40 * 20, f"cell {i} at tick {t}")
            self.surface.rect(t % 700, 10, 20, 20, id="mover")
            packet = self.surface.commit()
            payload = {"game_id": "g", "t": t, "packet": packet}
            await self.sio.emit("render", LatestWins(payload, key="g", full=functools.partial(self.full, payload)),
                                room="g")
            self.sent_seq.append(packet["seq"])
            t += 1
            await asyncio.sleep(1 / FPS)


def build_server() -> tuple[ExperimentSocketServer, Any, TickingGame, list[str]]:
    sio = ExperimentSocketServer(async_mode="asgi", cors_allowed_origins=[], max_http_buffer_size=MAX_ENGINEIO_BYTES,
                                 max_message_chars=MAX_MESSAGE_CHARS, client_manager=DirectSendManager(),
                                 serializer=JsonFirstPacket)
    game = TickingGame(sio)
    connects: list[str] = []

    @sio.event
    async def connect(sid: str, environ: dict, auth: Any = None) -> None:
        connects.append(sid)
        await sio.enter_room(sid, "g")

    @sio.on("browser_episode")
    async def upload(sid: str, payload: Any) -> dict[str, Any]:
        return {"ok": True, "steps": len(payload["steps"])}

    @sio.on("start_game")
    async def start_game(sid: str, payload: Any = None) -> None:
        sio.start_background_task(game.run)

    @sio.on("stop_game")
    async def stop_game(sid: str, payload: Any = None) -> None:
        game.running = False

    return sio, socketio.ASGIApp(sio), game, connects


def episode_of(total_bytes: int) -> dict[str, Any]:
    """An upload-shaped payload whose JSON is about ``total_bytes`` long."""
    step = {"t": 0, "observation": {"agent_0": list(range(200))}, "actions": {"agent_0": 1}}
    per_step = len(json.dumps(step, separators=(",", ":"))) + 1
    return {"scene_id": "solo", "episode": 0, "steps": [dict(step, t=i) for i in range(total_bytes // per_step)]}


def test_uploads_up_to_the_cap_are_handled_and_over_it_get_a_final_answer_without_a_reconnect(live_server) -> None:
    sio, asgi, _, connects = build_server()
    server = live_server(asgi)

    async def scenario() -> None:
        errors: list[Any] = []
        client = socketio.AsyncClient(reconnection=False)
        client.on("error", errors.append)
        await client.connect(server.url, transports=["websocket"])
        sid = client.get_sid()

        three_mb = episode_of(3_000_000)
        assert 2_900_000 < len(json.dumps(three_mb)) < MAX_UPLOAD_BYTES
        assert await client.call("browser_episode", three_mb, timeout=60) == {"ok": True,
                                                                              "steps": len(three_mb["steps"])}

        five_mb = episode_of(5_000_000)
        answer = await client.call("browser_episode", five_mb, timeout=60)
        assert answer["ok"] is False and answer["code"] == "too_large" and answer["retryable"] is False
        assert str(MAX_MESSAGE_CHARS) in answer["error"]
        await asyncio.sleep(0.3)
        assert errors and errors[-1]["event"] == "browser_episode" and "too_large" not in errors[-1]["message"]
        assert client.connected and client.get_sid() == sid and connects == [sid]  # no drop, no reconnect
        assert sio.refused["too_large"] == 1
        # The connection still works normally afterwards.
        assert (await client.call("browser_episode", episode_of(10_000), timeout=30))["ok"] is True

        # Beyond Engine.IO's ceiling (twice the cap) the connection is closed: the page never sends that much.
        await client.emit("browser_episode", episode_of(MAX_ENGINEIO_BYTES + 100_000))
        deadline = time.monotonic() + 30
        while client.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not client.connected
        await client.disconnect()

    run_async(scenario())


class RawWebSocket:
    """A Socket.IO client spoken by hand over wsproto, with a tiny receive buffer, that can stop reading."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.messages: list[str] = []
        self._parts: list[str] = []  # a message arrives in pieces across reads
        self.eio_sid = ""

    async def connect(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small TCP window
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.port))
        self.reader, self.writer = await asyncio.open_connection(sock=sock)
        self._send(ws_events.Request(host="127.0.0.1", target="/socket.io/?EIO=4&transport=websocket"))
        opened = await self.next_message()
        assert opened.startswith("0"), opened
        self.eio_sid = json.loads(opened[1:])["sid"]
        self._send(ws_events.TextMessage("40"))
        assert (await self.next_message()).startswith("40")

    def _send(self, event: Any) -> None:
        self.writer.write(self.conn.send(event))

    def emit(self, event: str) -> None:
        self._send(ws_events.TextMessage("42" + json.dumps([event])))

    async def next_message(self) -> str:
        while not self.messages:
            await self.read_some()
        return self.messages.pop(0)

    async def read_some(self) -> None:
        data = await asyncio.wait_for(self.reader.read(65536), 10)
        self.conn.receive_data(data or None)
        for event in self.conn.events():
            if isinstance(event, ws_events.TextMessage):
                self._parts.append(event.data)
                if event.message_finished:
                    message = "".join(self._parts)
                    self._parts = []
                    if message == "2":  # Engine.IO ping: a live page answers, or the server drops it
                        self._send(ws_events.TextMessage("3"))
                    else:
                        self.messages.append(message)
            elif isinstance(event, ws_events.Ping):
                self._send(event.response())

    async def read_until_quiet(self, quiet_s: float) -> None:
        while True:
            try:
                await asyncio.wait_for(self.read_some(), quiet_s)
            except TimeoutError:
                return

    async def read_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                await asyncio.wait_for(self.read_some(), max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                return


def renders(messages: list[str]) -> list[dict[str, Any]]:
    return [json.loads(m[2:])[1] for m in messages if m.startswith('42["render"')]


def test_a_reader_that_stops_reading_costs_one_waiting_render_while_others_get_every_tick(live_server) -> None:
    sio, asgi, game, _ = build_server()
    server = live_server(asgi)

    async def scenario() -> None:
        fast_renders: list[dict[str, Any]] = []
        fast = socketio.AsyncClient(reconnection=False)
        fast.on("render", fast_renders.append)
        await fast.connect(server.url, transports=["websocket"])
        slow = RawWebSocket(server.port)
        await slow.connect()
        queue = sio.eio.sockets[slow.eio_sid].queue

        await fast.emit("start_game")
        depths = []
        stall_until = time.monotonic() + 6  # the slow client reads nothing for 6 s (~300 ticks)
        while time.monotonic() < stall_until:
            depths.append(queue.qsize())
            await asyncio.sleep(0.05)
        stalled_ticks = len(game.sent_seq)
        superseded = queue.superseded
        # The stall was real (renders piled up behind the blocked transport and were replaced), and the
        # waiting backlog for that socket never grew past a couple of packets.
        assert max(depths) <= 2, max(depths)
        assert superseded > 50, (superseded, stalled_ticks)

        # The slow client reads again while the game goes on, then the game stops.
        await slow.read_for(2.0)
        await fast.emit("stop_game")
        await asyncio.sleep(0.3)
        await slow.read_until_quiet(1.0)
        await asyncio.sleep(0.5)

        # The fast client got every tick, in order.
        assert [r["packet"]["seq"] for r in fast_renders] == game.sent_seq
        assert len(game.sent_seq) >= stalled_ticks > 100
        # The slow one got an unbroken chain (each diff follows the packet before it, as packet_apply.js
        # requires), with full snapshots where renders were dropped, ending on the last frame.
        got = renders(slow.messages)
        previous = None
        fulls = 0
        for render in got:
            packet = render["packet"]
            if packet["full"]:
                fulls += 1
            else:
                assert previous is not None and packet["seq"] == previous + 1, (previous, packet["seq"])
            previous = packet["seq"]
        assert fulls >= 2 and got[-1]["packet"]["seq"] == game.sent_seq[-1]
        assert len(got) < len(game.sent_seq)  # it was sent less, not everything late
        await fast.disconnect()

    run_async(scenario())


async def http_post(port: int, path: str, headers: dict[str, str], body: bytes, *, send_all: bool = True) -> int:
    """POSTs ``body`` (or only its first kilobyte, when ``send_all`` is False) and returns the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": "127.0.0.1", **headers}.items())
    writer.write(f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + (body if send_all else body[:1024]))
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 15)
    writer.close()
    return int(status_line.split()[1])


def test_beacon_checks_the_token_and_size_before_reading_and_parses_large_bodies(live_server) -> None:
    stored: list[tuple[str, Any]] = []

    async def store(token: str, payload: Any) -> bool:
        stored.append((token, payload))
        return True

    endpoint = BeaconEndpoint(known_token=lambda token: token == "tok", store=store)
    server = live_server(Starlette(routes=[Route("/beacon/{token}", endpoint, methods=["POST"])]))

    async def scenario() -> None:
        huge = {"Content-Length": str(20 * 1024 * 1024), "Content-Type": "text/plain"}
        # Answered while most of the declared body was never sent: the server did not wait to read it.
        assert await http_post(server.port, "/beacon/nope", huge, b"x" * 2048, send_all=False) == 404
        assert await http_post(server.port, "/beacon/tok", huge, b"x" * 2048, send_all=False) == 413
        # No declared length (chunked): reading stops past the cap.
        chunk = b"x" * 65536
        chunked = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(MAX_BEACON_BYTES // 65536 + 2))
        assert await http_post(server.port, "/beacon/tok", {"Transfer-Encoding": "chunked"},
                               chunked + b"0\r\n\r\n") == 413
        assert await http_post(server.port, "/beacon/tok", {"Content-Length": "8"}, b"not json") == 400
        assert stored == []
        big = json.dumps(episode_of(1_000_000)).encode()  # parsed in a worker thread
        small = b'{"episode": 1}'
        for body in (big, small):
            assert await http_post(server.port, "/beacon/tok", {"Content-Length": str(len(body))}, body) == 204
        assert [token for token, _ in stored] == ["tok", "tok"]
        assert stored[0][1] == json.loads(big) and stored[1][1] == {"episode": 1}

    run_async(scenario())


def cap_sized_upload() -> dict[str, Any]:
    """A valid partial episode (upload_validation's format) whose compact JSON is just under the cap."""
    def step(t: int) -> dict[str, Any]:
        return {"t": t, "observation": {"agent_0": [(t + i) % 50 for i in range(60)]}, "actions": {"agent_0": t % 5},
                "rewards": {"agent_0": 0.5}, "terminated": {"agent_0": False}, "truncated": {"agent_0": False},
                "keys": {"agent_0": ["ArrowUp"]}, "client_ts": 1764120000.5 + t / 30}

    per_step = len(json.dumps(step(0), separators=(",", ":"))) + 1
    payload = {"scene_id": "solo", "episode": 0, "seed": 7, "bundle_hash": "h" * 64, "partial": True,
               "end_reason": "page_closed", "steps": [step(t) for t in range(MAX_UPLOAD_BYTES // per_step)]}
    excess = len(json.dumps(payload, separators=(",", ":"))) - (MAX_UPLOAD_BYTES - 100)
    if excess > 0:  # steps grow longer with t: drop enough of the last ones at once
        del payload["steps"][-(excess // per_step + 1):]
    return payload


def test_a_cap_sized_upload_is_decoded_off_the_loop_validated_and_keeps_its_order_while_the_loop_ticks(
        live_server) -> None:
    sio, asgi, _, _ = build_server()
    rules = UploadRules(scene_id="solo", num_episodes=1, max_steps=100_000, agent_ids=("agent_0",), seeds=(7,),
                        bundle_hash="h" * 64)
    seen: list[tuple[str, Any]] = []
    ticks: list[float] = []

    async def ticker() -> None:  # what every game on the server's loop would feel
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.005)

    validated: list[Any] = []

    @sio.on("browser_episode")
    async def upload(sid: str, payload: Any) -> None:
        seen.append(("browser_episode", payload.wire_bytes))  # on arrival: the order handlers are reached in
        validated.append(await asyncio.to_thread(validate_episode_upload, payload, participant_id="p",
                                                 participant_scene_id="solo", rules=rules))

    @sio.on("after")
    async def after(sid: str, payload: Any) -> None:
        seen.append(("after", payload))

    @sio.on("watch")
    async def watch(sid: str, payload: Any = None) -> dict[str, Any]:
        if payload == "start":
            sio.start_background_task(ticker)
            return {}
        worst = max(b - a for a, b in zip(ticks, ticks[1:], strict=False))
        return {"worst_gap_s": worst, "ticks": len(ticks)}

    server = live_server(asgi)
    episode = cap_sized_upload()
    text = json.dumps(episode, separators=(",", ":"))
    # Encoded before the clock starts: this client shares the server's process (and its GIL).
    messages = [f'2["browser_episode",{text}]', '2["after",{"n":1}]', f'2["browser_episode",{text}]',
                '2["after",{"n":2}]']

    async def scenario() -> None:
        client = socketio.AsyncClient(reconnection=False)
        await client.connect(server.url, transports=["websocket"])
        await client.call("watch", "start")
        await asyncio.sleep(0.2)
        for message in messages:  # sent back to back, exactly as socket.io-client frames them
            await client.eio.send(message)
        deadline = time.monotonic() + 60
        while (len(seen) < 4 or len(validated) < 2) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        watched = await client.call("watch", "stop")
        await client.disconnect()

        assert [event for event, _ in seen] == ["browser_episode", "after", "browser_episode", "after"]
        assert [data["n"] for event, data in seen if event == "after"] == [1, 2]
        assert [size for event, size in seen if event == "browser_episode"] == [len(text.encode())] * 2
        assert all(isinstance(result, EpisodeUpload) and result.steps == episode["steps"] for result in validated)
        assert sio.decoded_off_loop == 2
        # Off the loop means the loop ran while the worker decoded: ticks inside every decode (a decode on the loop
        # would leave none), whatever the machine's load. The stall itself only gets a generous sanity bound (the
        # benchmark reports the real figure).
        spans = list(sio.off_loop_spans)
        assert len(spans) == 2
        for start, end in spans:
            assert sum(start < t < end for t in ticks) >= 2, (start, end, watched)
        assert watched["ticks"] > 20 and watched["worst_gap_s"] < 2.0, watched

    run_async(scenario())


def test_hostile_messages_get_a_clear_answer_and_the_connection_goes_on(live_server) -> None:
    sio, asgi, _, connects = build_server()
    server = live_server(asgi)
    padding = '{"pad":"' + "x" * 100_000 + '"},'  # large enough to be decoded in the worker thread
    hostile = {
        "invalid JSON": '2["browser_episode",' + padding + '{"steps": [1, 2,',
        "huge integer": '2["browser_episode",' + padding + '{"n":' + "9" * 5000 + "}]",
        "deeply nested": '2["browser_episode",' + padding + "[" * 100_000 + "]" * 100_000 + "]",
        "small invalid JSON": '2["browser_episode",{"steps":',
    }

    async def scenario() -> None:
        errors: list[dict[str, Any]] = []
        client = socketio.AsyncClient(reconnection=False)
        client.on("error", errors.append)
        await client.connect(server.url, transports=["websocket"])
        sid = client.get_sid()
        for message in hostile.values():
            await client.eio.send(message)
        deadline = time.monotonic() + 30
        while len(errors) < len(hostile) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert [e["event"] for e in errors] == ["browser_episode"] * len(hostile)
        assert all(e["message"].startswith("message could not be decoded") for e in errors), errors
        assert "Integer is too large" in errors[1]["message"] and "nests too deeply" in errors[2]["message"]
        assert sio.refused["malformed"] == len(hostile)
        # Same socket, still answering: no drop, no reconnect.
        small = episode_of(100_000)
        assert await client.call("browser_episode", small, timeout=30) == {"ok": True, "steps": len(small["steps"])}
        assert client.get_sid() == sid and connects == [sid]
        await client.disconnect()

    run_async(scenario())
