"""A uvicorn server that listens on nothing itself and serves the connections the front hands it.

The front (front.py) accepts each TCP connection and sends its file descriptor over a Unix socket. Here
each received descriptor becomes a connection of this process's event loop with uvicorn's own HTTP protocol,
built exactly as ``uvicorn.Server.startup`` builds it, so the app cannot tell it from one uvicorn accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from pathlib import Path

import uvicorn

log = logging.getLogger("interactive_gym.cluster.handoff")

MAX_FDS = 64  # per receive; the front sends one per message, and a stream receive never spans two


class HandoffServer(uvicorn.Server):
    """``uvicorn.Server`` fed by a front through the Unix socket at ``path``.

    Args:
        config: The uvicorn configuration (its host and port are not listened on).
        path: Where the handoff socket is created (a stale file there is replaced; removed at shutdown).
    """

    def __init__(self, config: uvicorn.Config, path: Path | str) -> None:
        super().__init__(config)
        self.path = Path(path)
        self._listener: socket.socket | None = None
        self._links: set[socket.socket] = set()
        self._accepting: asyncio.Task[None] | None = None
        self._serving: set[asyncio.Task[None]] = set()  # strong references until each connection is set up

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Starts the app (lifespan) with no listening socket of uvicorn's, then listens on :attr:`path`."""
        await super().startup(sockets=[])
        if self.should_exit:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by a worker of the same name that was killed
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.path))
        os.chmod(self.path, 0o600)  # handing connections in is the front's job only (same user)
        listener.listen(16)
        listener.setblocking(False)
        self._listener = listener
        self._accepting = asyncio.get_running_loop().create_task(self._accept_links())
        log.info("serving connections handed over on %s", self.path)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stops taking connections (removing the socket file), then shuts uvicorn down as usual."""
        self._stop_receiving()
        await super().shutdown(sockets=sockets)

    def protocol(self) -> asyncio.Protocol:
        """A new connection's protocol, as ``uvicorn.Server.startup``'s ``create_protocol`` makes it."""
        return self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
            _loop=asyncio.get_running_loop(),
        )

    # ------------------------------------------------------------------------------------------ receiving

    async def _accept_links(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._listener is not None
        while True:
            link, _ = await loop.sock_accept(self._listener)
            link.setblocking(False)
            self._links.add(link)
            loop.add_reader(link.fileno(), self._receive, link)

    def _receive(self, link: socket.socket) -> None:
        """Takes every descriptor waiting on ``link`` and starts serving each."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, fds, flags, _ = socket.recv_fds(link, 1024, MAX_FDS)
            except BlockingIOError:
                return
            except OSError as exc:
                log.warning("handoff link failed: %s", exc)
                data, fds, flags = b"", [], 0
            if flags & socket.MSG_CTRUNC:
                log.error("handoff message truncated: connections were lost")
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                task = loop.create_task(self._serve_connection(conn))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)
            if not data and not fds:  # the front closed this link
                self._close_link(link)
                return

    async def _serve_connection(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(self.protocol, conn, ssl=self.config.ssl)
        except Exception:  # noqa: BLE001 - one bad connection must not stop the others
            log.exception("could not serve a handed-over connection")
            conn.close()

    def _close_link(self, link: socket.socket) -> None:
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(link.fileno())
        self._links.discard(link)
        link.close()

    def _stop_receiving(self) -> None:
        if self._accepting is not None:
            self._accepting.cancel()
        for link in list(self._links):
            self._close_link(link)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
