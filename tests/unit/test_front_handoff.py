"""The front and the handoff, with real processes and sockets: one port, each connection served by one worker.

Two worker processes (``handoff_app.py``: uvicorn through :class:`HandoffServer`, answering with their name)
and a :class:`Front` in a thread of this process; the clients are plain sockets, ``http.client`` and
``websockets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from handoff_app import make_app
from websockets.sync.client import connect as ws_connect

from interactive_gym.server.cluster.front import Front
from interactive_gym.server.cluster.handoff import HandoffServer
from interactive_gym.tools.run import uvicorn_options

APP = Path(__file__).with_name("handoff_app.py")
START_S = 30.0


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls ``condition`` until it returns something truthy; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def connectable(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


class Workers:
    """Worker processes of ``handoff_app.py``, one handoff socket each in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.sock"

    def start(self, name: str) -> None:
        self.procs[name] = subprocess.Popen([sys.executable, str(APP), name, str(self.path(name))])
        wait_for(lambda: connectable(self.path(name)) or self.procs[name].poll() is not None, START_S,
                 f"worker {name}'s handoff socket")
        assert self.procs[name].poll() is None, f"worker {name} exited with {self.procs[name].returncode}"

    def kill(self, name: str) -> None:
        self.procs[name].kill()
        self.procs[name].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class FrontThread:
    """A :class:`Front` running on an event loop in a thread of the test process."""

    def __init__(self, workers: dict[str, Path], **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.front = Front("127.0.0.1", 0, workers, **options)
        self.call(self.front.start())
        self.port = self.front.port

    def call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def alive(self) -> list[str]:
        async def read() -> list[str]:
            return self.front.alive()
        return list(self.call(read()))

    def close(self) -> None:
        self.call(self.front.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    running = Workers(tmp_path_factory.mktemp("handoff"))
    try:
        for name in ("w0", "w1"):
            running.start(name)
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def front(workers: Workers) -> Iterator[FrontThread]:
    running = FrontThread({name: workers.path(name) for name in ("w0", "w1")}, peek_timeout=0.5)
    yield running
    running.close()


def get(port: int, target: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", target)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def served_by(port: int, target: str) -> str:
    status, body = get(port, target)
    assert status == 200, (status, body)
    return body.split(" ")[0]


def test_a_route_key_reaches_its_worker(front: FrontThread) -> None:
    assert get(front.port, "/socket.io/?EIO=4&transport=websocket&ig_route=w1") == \
        (200, "w1 /socket.io/?EIO=4&transport=websocket&ig_route=w1")
    for _ in range(3):
        assert served_by(front.port, "/?ig_route=w0") == "w0"
        assert served_by(front.port, "/?ig_route=w1") == "w1"


def test_without_a_key_the_workers_alternate(front: FrontThread) -> None:
    names = [served_by(front.port, target) for target in ("/", "/?ig_route=nope", "/", "/?ig_route=w7")]
    assert set(names) == {"w0", "w1"}
    assert all(a != b for a, b in zip(names, names[1:], strict=False)), names


def test_websocket_through_the_front(front: FrontThread) -> None:
    for name in ("w0", "w1"):
        with ws_connect(f"ws://127.0.0.1:{front.port}/socket.io/?EIO=4&transport=websocket&ig_route={name}",
                        open_timeout=10) as ws:
            for text in ("hello", "again"):
                ws.send(text)
                assert ws.recv(timeout=10) == f"{name}:{text}"


def test_a_request_line_in_pieces_is_waited_for(front: FrontThread) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"GET /?ig_route=w1 HT")
        time.sleep(0.05)  # two TCP segments: the front must peek again, not route on the first
        sock.sendall(b"TP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = read_all(sock)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"w1 /?ig_route=w1"), reply


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_fifty_concurrent_connections_are_all_served(front: FrontThread) -> None:
    routes = ["w0", "w1", ""]
    socks = [socket.create_connection(("127.0.0.1", front.port), timeout=10) for _ in range(50)]
    try:
        for i, sock in enumerate(socks):  # all 50 open before any request is sent
            sock.sendall(f"GET /c{i}?ig_route={routes[i % 3]} HTTP/1.1\r\nHost: x\r\n"
                         "Connection: close\r\n\r\n".encode())
        replies = [read_all(sock) for sock in socks]
    finally:
        for sock in socks:
            sock.close()
    for i, reply in enumerate(replies):
        assert reply.startswith(b"HTTP/1.1 200"), (i, reply)
        name, target = reply.rsplit(b"\r\n\r\n", 1)[1].decode().split(" ")
        assert target == f"/c{i}?ig_route={routes[i % 3]}"
        assert name == (routes[i % 3] or name) and name in ("w0", "w1")


def closed_after(sock: socket.socket) -> float:
    """Seconds until the peer closes ``sock`` (EOF or reset)."""
    start = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        assert sock.recv(100) == b""
    return time.monotonic() - start


def test_a_silent_connection_is_closed_after_the_timeout(front: FrontThread) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        elapsed = closed_after(sock)
    assert 0.4 <= elapsed < 5, elapsed


def test_eight_kib_without_a_line_end_is_closed(front: FrontThread) -> None:
    with socket.create_connection(("127.0.0.1", front.port), timeout=10) as sock:
        sock.sendall(b"G" * 9000)
        assert closed_after(sock) < 0.4  # well before the peek timeout


def test_connections_beyond_the_peek_bound_are_closed(workers: Workers) -> None:
    running = FrontThread({"w0": workers.path("w0")}, peek_timeout=5, max_pending=2)
    held = [socket.create_connection(("127.0.0.1", running.port), timeout=10) for _ in range(2)]
    try:
        with socket.create_connection(("127.0.0.1", running.port), timeout=10) as third:
            assert closed_after(third) < 1  # closed at once, not after the 5 s peek timeout
        for sock in held:  # still being waited for
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(1)
        held[0].settimeout(10)
        held[0].sendall(b"GET /?ig_route=w0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_all(held[0]).endswith(b"w0 /?ig_route=w0")
    finally:
        for sock in held:
            sock.close()
        running.close()


def test_no_worker_alive_answers_503(tmp_path: Path) -> None:
    running = FrontThread({"w0": tmp_path / "w0.sock", "w1": tmp_path / "w1.sock"})
    try:
        assert running.alive() == []
        status, body = get(running.port, "/socket.io/?ig_route=w0")
        assert status == 503 and "retry" in body
    finally:
        running.close()


def test_handoff_server_serves_a_handed_fd_and_removes_its_socket(tmp_path: Path) -> None:
    """In-process, without the front: fails loudly if uvicorn's protocol construction changed."""
    path = tmp_path / "one.sock"
    server = HandoffServer(uvicorn.Config(make_app("solo"), **uvicorn_options("127.0.0.1", 0, "warning",
                                                                             "127.0.0.1")), path)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        wait_for(lambda: connectable(path), 10, "the handoff socket")
        ours, theirs = socket.socketpair()
        with ours, socket.socket(socket.AF_UNIX) as link:
            link.connect(str(path))
            socket.send_fds(link, [b"c"], [theirs.fileno()])
            theirs.close()
            ours.settimeout(10)
            ours.sendall(b"GET /pair HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert read_all(ours).endswith(b"solo /pair?")
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()
    assert not path.exists()


def test_a_killed_worker_is_routed_around_and_rejoins(front: FrontThread, workers: Workers) -> None:
    assert front.alive() == ["w0", "w1"]
    workers.kill("w1")
    try:
        for _ in range(4):  # named, and by turn: all to w0, none fails
            assert served_by(front.port, "/?ig_route=w1") == "w0"
            assert served_by(front.port, "/") == "w0"
        assert front.alive() == ["w0"]
    finally:
        workers.start("w1")  # same name, same socket path
    wait_for(lambda: front.alive() == ["w0", "w1"], 5, "the front to reconnect to w1")
    assert served_by(front.port, "/?ig_route=w1") == "w1"
