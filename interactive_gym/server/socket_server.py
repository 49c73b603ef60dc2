"""The Socket.IO server of an experiment: python-socketio's AsyncServer that never broadcasts by accident.

python-socketio sends an event to every client when ``emit`` gets neither ``to`` nor ``room`` — a socket id
that became None across an ``await`` would then show one participant's scene on every page. Every emit of the
experiment goes through :meth:`TargetedServer.emit`, which refuses such a call (logged and counted).
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

log = logging.getLogger("interactive_gym.sockets")


class TargetedServer(socketio.AsyncServer):
    """``socketio.AsyncServer`` whose ``emit`` requires a target socket or room."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.untargeted_emits = 0

    async def emit(self, event: str, data: Any = None, to: Any = None, room: Any = None,  # type: ignore[override]
                   **kwargs: Any) -> None:
        """Sends ``event`` to ``to`` or ``room``; without either, sends nothing and logs an error."""
        if to is None and room is None:
            self.untargeted_emits += 1
            log.error("refused to emit %r without a target (it would have gone to every client)", event)
            return
        await super().emit(event, data, to=to, room=room, **kwargs)
