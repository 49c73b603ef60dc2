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


def _guarded(server: ExperimentServer, event: str, method: Any) -> Any:
    async def run(sid: str, payload: Any = None) -> Any:
        try:
            return await method(sid, payload)
        except Exception:  # noqa: BLE001 - one client's upload must never take the server down
            log.exception("%s failed for %s", event, sid)
            return await server.reject(sid, event, "internal error handling this upload")

    return run


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

    @handler("p2p_join")
    async def p2p_join(sid: str, scene_index: int, scene_id: str, rtt_ms: float | None = None) -> Any:
        return await server.p2p_join(sid, scene_index, scene_id, rtt_ms)

    @handler("p2p_game_end")
    async def p2p_game_end(sid: str, game_id: str, reason: str) -> Any:
        return await server.p2p_game_end(sid, game_id, reason)

    # Episode uploads are validated against the upload schema (upload_validation.py) before anything is stored.
    for event, method in (("browser_episode", server.browser_episode), ("p2p_episode", server.p2p_episode)):
        sio.on(event, _guarded(server, event, method))

    @handler("ping")
    async def ping(sid: str, t: float) -> dict[str, float]:
        return {"t": t, "server_t": time.time() * 1000}
