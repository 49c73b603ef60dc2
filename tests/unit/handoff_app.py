"""A tiny worker for the front/handoff tests: ``python handoff_app.py NAME SOCKET_PATH``.

It serves, through :class:`HandoffServer` and the same uvicorn options as ``interactive-gym run``, an ASGI app
that answers every HTTP request with its worker name (and the path it saw) and echoes websocket messages
prefixed with its name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from interactive_gym.server.cluster.handoff import HandoffServer
from interactive_gym.tools.run import uvicorn_options

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def make_app(name: str) -> Callable[[dict[str, Any], Receive, Send], Awaitable[None]]:
    """The ASGI app of worker ``name``."""

    async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "http":
            body = f"{name} {scope['path']}?{scope['query_string'].decode()}".encode()
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode()),
                                    (b"x-worker-pid", str(os.getpid()).encode())]})
            await send({"type": "http.response.body", "body": body})
        elif scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                await send({"type": "websocket.send", "text": f"{name}:{message.get('text')}"})

    return app


def main(name: str, path: str) -> None:
    config = uvicorn.Config(make_app(name), **uvicorn_options("127.0.0.1", 0, "warning", "127.0.0.1"))
    HandoffServer(config, path).run()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
