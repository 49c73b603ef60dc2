"""The front of ``interactive-gym run --workers N``: one listening port, each connection handed to one worker.

The front accepts a TCP connection, peeks (``MSG_PEEK``: nothing is consumed) until the HTTP request line is
there, reads the route key from its ``ig_route`` query parameter, and sends the connected socket's file
descriptor to that worker over a Unix socket (``SCM_RIGHTS``). From then on the worker's uvicorn owns the
connection as if it had accepted it: the front never sees a byte of the traffic, so it costs nothing per packet.

:func:`route_key` and :func:`choose_worker` are the decisions (pure); :class:`Front` is the asyncio shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import unquote_plus

from interactive_gym.server.cluster.options import WORKER_NAME

log = logging.getLogger("interactive_gym.cluster.front")

ROUTE_PARAM = "ig_route"
MAX_HEAD = 8192  # a request line longer than this is not a page's: closed
PEEK_TIMEOUT_S = 10.0
PEEK_INTERVAL_S = 0.005  # while a request line is incomplete (its data is readable, so no wake-up to wait for)
MAX_PENDING = 1024  # connections being peeked at once; beyond it new ones are closed (bounded memory and fds)
RECONNECT_S = 0.5
SEND_WAIT_S = 2.0  # longest a handoff waits for room in a worker's Unix socket buffer before that worker is down
UNAVAILABLE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
               b"Content-Length: 44\r\nConnection: close\r\n\r\n"
               b"No server process is running; retry shortly\n")


def route_key(head: bytes) -> str | None:
    """The worker a request names: its request line's first ``ig_route`` query value, if a worker name.

    Args:
        head: The first bytes of the connection (the request line, maybe more, maybe partial).

    Returns:
        ``w0``, ``w1``, ... or ``None`` when the request line is incomplete or malformed, has no
        ``ig_route``, or its first ``ig_route`` is not a worker name. Any method is accepted: the key
        only says where a page's connections go. Never raises.
    """
    line, found, _ = head.partition(b"\r\n")
    if not found:
        return None  # a partial line may hold a cut key (w12 read as w1)
    parts = line.decode("latin-1").split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        return None
    target = parts[1].partition("#")[0]
    _, has_query, query = target.partition("?")
    if not has_query:
        return None
    for pair in query.split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name) == ROUTE_PARAM:
            worker = unquote_plus(value)
            return worker if WORKER_NAME.fullmatch(worker) else None  # the first one decides
    return None


def choose_worker(route: str | None, alive: Sequence[str], turn: int) -> str | None:
    """Where a connection goes: the named worker if it is alive, else the next live one in turn.

    Args:
        route: The request's route key (:func:`route_key`), or ``None``.
        alive: The live workers, in a stable order.
        turn: A counter the caller advances for each connection placed by turn (round robin).

    Returns:
        A worker name, or ``None`` if no worker is alive.
    """
    if route is not None and route in alive:
        return route
    if not alive:
        return None
    return alive[turn % len(alive)]


class _Link:
    """The front's Unix socket connection to one worker, and whether it is up."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.sock: socket.socket | None = None
        self.reconnecting: asyncio.Task[None] | None = None


class Front:
    """Accepts connections on ``host:port`` and hands each to a worker (see the module docstring).

    Args:
        host: Address to listen on. port: Port to listen on (0: any free port, see :attr:`port`).
        workers: Each worker's name and the path of its handoff socket (``HandoffServer``), in routing order.
        peek_timeout: Longest a connection may take to send its request line before it is closed.
        max_pending: Connections being peeked at once beyond which new ones are closed.
    """

    def __init__(self, host: str, port: int, workers: Mapping[str, Path | str], *,
                 peek_timeout: float = PEEK_TIMEOUT_S, max_pending: int = MAX_PENDING) -> None:
        self.host, self.requested_port = host, port
        self.peek_timeout, self.max_pending = peek_timeout, max_pending
        self._links = {name: _Link(name, Path(path)) for name, path in workers.items()}
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._turn = 0
        self._closed = False

    @property
    def port(self) -> int:
        """The port listened on (after :meth:`start`)."""
        assert self._listener is not None, "Front.start() first"
        return int(self._listener.getsockname()[1])

    def alive(self) -> list[str]:
        """The workers a connection can be handed to now, in routing order."""
        return [link.name for link in self._links.values() if link.sock is not None]

    async def start(self) -> None:
        """Connects to every worker (those not reachable yet are retried every 0.5 s) and starts listening."""
        for link in self._links.values():
            if not await self._connect(link):
                self._link_down(link)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._listener = socket.create_server((self.host, self.requested_port), family=family, backlog=2048)
        self._listener.setblocking(False)
        self._accepting = asyncio.get_running_loop().create_task(self._accept_loop())

    async def close(self) -> None:
        """Stops listening, drops the connections not handed off yet and the links to the workers."""
        self._closed = True
        tasks = [t for t in (self._accepting, *self._pending,
                             *(link.reconnecting for link in self._links.values())) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._listener is not None:
            self._listener.close()
        for link in self._links.values():
            self._drop(link)

    # ------------------------------------------------------------------------------------------ accepting

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            try:
                conn, _ = await loop.sock_accept(self._listener)
            except OSError as exc:  # EMFILE and the like: keep serving the connections already open
                log.warning("accept failed: %s", exc)
                await asyncio.sleep(0.1)
                continue
            if len(self._pending) >= self.max_pending:
                conn.close()
                continue
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # carried to the worker with the fd
            task = loop.create_task(self._place(conn))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _place(self, conn: socket.socket) -> None:
        """Peeks at one connection's request line and hands it off (or answers 503, or closes it)."""
        try:
            try:
                async with asyncio.timeout(self.peek_timeout):
                    head = await self._peek_line(conn)
            except TimeoutError:
                head = None
            if head is None:
                return
            route = route_key(head)
            while True:
                alive = self.alive()
                worker = choose_worker(route, alive, self._turn)
                if worker is None:
                    await self._unavailable(conn)
                    return
                if worker != route:
                    self._turn += 1
                if await self._hand_off(self._links[worker], conn):
                    return
        finally:
            conn.close()  # the front's copy; a worker that received the fd has its own

    async def _peek_line(self, conn: socket.socket) -> bytes | None:
        """The connection's first bytes once they hold a line end; ``None`` if it closed or sent 8 KiB without."""
        await _readable(conn)
        while True:
            try:
                head = conn.recv(MAX_HEAD, socket.MSG_PEEK)
            except BlockingIOError:
                head = None  # readable a moment ago, nothing now: poll on
            except OSError:
                return None
            if head is not None:
                if not head or len(head) >= MAX_HEAD and b"\r\n" not in head:
                    return None  # closed, or not an HTTP request line
                if b"\r\n" in head:
                    return head
            await asyncio.sleep(PEEK_INTERVAL_S)

    async def _unavailable(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            conn.recv(MAX_HEAD)  # consume the peeked request, so closing does not reset the reply away
            await asyncio.get_running_loop().sock_sendall(conn, UNAVAILABLE)
            conn.shutdown(socket.SHUT_WR)

    # --------------------------------------------------------------------------------------------- links

    async def _hand_off(self, link: _Link, conn: socket.socket) -> bool:
        """Sends ``conn``'s fd to ``link``'s worker; on failure the worker is down and ``False`` returned."""
        deadline = asyncio.get_running_loop().time() + SEND_WAIT_S
        while link.sock is not None:
            try:
                socket.send_fds(link.sock, [b"c"], [conn.fileno()])
                return True
            except BlockingIOError:  # the worker's buffer is full: it is not reading
                if asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(PEEK_INTERVAL_S)
            except OSError as exc:
                log.warning("worker %s did not take a connection (%s): routing elsewhere", link.name, exc)
                break
        self._link_down(link)
        return False

    async def _connect(self, link: _Link) -> bool:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, str(link.path))
        except OSError:
            sock.close()
            return False
        link.sock = sock
        # A worker never writes: readable means it closed (exited), so it is down before a handoff fails.
        asyncio.get_running_loop().add_reader(sock.fileno(), self._on_link_readable, link)
        return True

    def _on_link_readable(self, link: _Link) -> None:
        if link.sock is None:
            return
        try:
            if link.sock.recv(64):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        log.warning("worker %s closed its handoff socket", link.name)
        self._link_down(link)

    def _drop(self, link: _Link) -> None:
        if link.sock is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(link.sock.fileno())
            link.sock.close()
            link.sock = None

    def _link_down(self, link: _Link) -> None:
        self._drop(link)
        if not self._closed and (link.reconnecting is None or link.reconnecting.done()):
            link.reconnecting = asyncio.get_running_loop().create_task(self._reconnect(link))

    async def _reconnect(self, link: _Link) -> None:
        while not await self._connect(link):
            await asyncio.sleep(RECONNECT_S)
        log.info("worker %s is reachable again", link.name)


async def _readable(sock: socket.socket) -> None:
    """Waits until ``sock`` has data (or EOF) to read."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(sock.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())
