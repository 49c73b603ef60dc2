"""The ``/beacon/{token}`` endpoint: a closing page's partial episode, sent with ``navigator.sendBeacon``.

A beacon has no socket and gets no ack; the page stashed the same payload and resends it on its next load, so
a refused beacon loses nothing. Anyone can POST here, so the checks go cheapest first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from engineio import json as eio_json
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from interactive_gym.server.message_limits import MAX_BEACON_BYTES, PARSE_OFF_LOOP_BYTES
from interactive_gym.server.upload_validation import SizedPayload


class BeaconEndpoint:
    """``navigator.sendBeacon`` target for a closing page's partial episode (no socket, no ack).

    Cheap checks first: the token (unguessable, from the URL the server gave the page) before reading the body,
    the declared length before reading, the actual length while reading (stops past the cap), and only then
    the parse (off the event loop when large).

    Args:
        known_token: Whether a token belongs to a participant (a dict lookup, no I/O).
        store: Stores the payload for the token's participant; returns whether it was stored.
    """

    def __init__(self, known_token: Callable[[str], bool], store: Callable[[str, Any], Awaitable[bool]]) -> None:
        self._known_token = known_token
        self._store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # An ASGI app, so a Route can take the instance itself.
        response = await self.handle(Request(scope, receive))
        await response(scope, receive, send)

    async def handle(self, request: Request) -> Response:
        """Answers one beacon POST: 404 unknown token, 413 too large, 400 not JSON or not stored, 204 stored."""
        token = request.path_params["token"]
        if not self._known_token(token):
            return Response("unknown token", status_code=404)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BEACON_BYTES:
            return Response("too large", status_code=413)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BEACON_BYTES:
                return Response("too large", status_code=413)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            # The same parser (and integer-size guard) python-socketio uses for Socket.IO uploads.
            payload = (await asyncio.to_thread(eio_json.loads, body) if size > PARSE_OFF_LOOP_BYTES
                       else eio_json.loads(body))
        except ValueError:
            return Response("not JSON", status_code=400)
        if isinstance(payload, dict):
            # The body's byte count is the upload's size as the page measured it: never re-encode to size it.
            payload = SizedPayload(payload, wire_bytes=size)
        stored = await self._store(token, payload)
        return Response(status_code=204 if stored else 400)
