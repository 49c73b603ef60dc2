"""Socket.IO event handlers: validate each payload against its declared schema, then call the server.

Thin by intent. A payload that fails validation is answered with an ``error`` event to that client only and
counted; it never reaches the experiment logic, and nothing raised here can stop another participant's game.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import socketio

from interactive_gym.server.experiment_server import ExperimentServer
from interactive_gym.server.schemas import PayloadError, validate_payload

log = logging.getLogger("interactive_gym.handlers")


def register_handlers(sio: socketio.AsyncServer, server: ExperimentServer) -> None:
    """Registers every participant event of the experiment on ``sio``."""

    @sio.event
    async def connect(sid: str, environ: dict, auth: Any = None) -> bool:
        return await server.connect(sid, auth)

    @sio.event
    async def disconnect(sid: str, *args: Any) -> None:
        await server.disconnect(sid)

    def handler(event: str):  # noqa: ANN202 - decorator factory
        def wrap(fn):  # noqa: ANN001, ANN202
            async def run(sid: str, payload: Any = None) -> Any:
                try:
                    data = validate_payload(event, payload)
                except PayloadError as exc:
                    return await server.reject(sid, event, str(exc))
                try:
                    return await fn(sid, **data)
                except Exception:  # noqa: BLE001 - one client's event must never take the server down
                    log.exception("handler %s failed for %s", event, sid)
                    return await server.reject(sid, event, "internal error handling this event")

            sio.on(event, run)
            return fn

        return wrap

    @handler("advance")
    async def advance(sid: str, scene_index: int, scene_id: str, answers: dict | None = None) -> Any:
        return await server.advance(sid, scene_index, scene_id, answers or {})

    @handler("join_game")
    async def join_game(sid: str, scene_index: int, scene_id: str) -> Any:
        return await server.join_game(sid, scene_index, scene_id)

    @handler("keys")
    async def keys(sid: str, game_id: str, held: list[str], seq: int) -> None:
        await server.keys(sid, game_id, held, seq)

    @handler("visibility")
    async def visibility(sid: str, visible: bool) -> None:
        await server.visibility(sid, visible)

    @sio.on("browser_episode")
    async def browser_episode(sid: str, payload: Any = None) -> Any:
        # Validated against the upload schema (upload_validation.py) by the server before anything is stored.
        try:
            return await server.browser_episode(sid, payload)
        except Exception:  # noqa: BLE001 - one client's upload must never take the server down
            log.exception("browser_episode failed for %s", sid)
            return await server.reject(sid, "browser_episode", "internal error handling this upload")

    @handler("ping")
    async def ping(sid: str, t: float) -> dict[str, float]:
        return {"t": t, "server_t": time.time() * 1000}
