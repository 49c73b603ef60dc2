"""The dashboard as one object the app builds: its sessions, live push and routes (wiring only)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from starlette.routing import Route

from interactive_gym.server.admin.auth import PASSWORD_ENV, AdminAuth
from interactive_gym.server.admin.live import LiveDashboard
from interactive_gym.server.admin.reads import StudyReader
from interactive_gym.server.admin.routes import AdminRoutes


class Dashboard:
    """``/admin`` of one experiment.

    Args:
        sio: The Socket.IO server (the ``/admin`` namespace is registered on it).
        experiment: The Experiment.
        db_path: The experiment database.
        auth: Sessions; by default from the environment (``INTERACTIVE_GYM_ADMIN_PASSWORD`` or a one-time token).

    Raises:
        ValueError: if ``INTERACTIVE_GYM_ADMIN_PASSWORD`` is set but unusable (said at start-up).
    """

    def __init__(self, sio: Any, experiment: Any, db_path: Path | str, auth: AdminAuth | None = None) -> None:
        self.auth = auth or AdminAuth.from_environment()
        self.reader = StudyReader(db_path)
        self.live = LiveDashboard(sio, experiment, self.auth, self.reader)
        self.live.register()
        self.http = AdminRoutes(self.auth, self.live, experiment, self.reader, db_path)

    def routes(self) -> list[Route]:
        return self.http.routes()

    def announce(self, out: TextIO = sys.stdout) -> None:
        """Tells the researcher how to log in: the one-time token is printed here, once, and nowhere else."""
        if self.auth.credential.from_env:
            print(f"Dashboard at /admin (password from {PASSWORD_ENV}).", file=out, flush=True)
        else:
            print(f"Dashboard at /admin, one-time token for this run: {self.auth.credential.secret}\n"
                  f"  (set {PASSWORD_ENV} to choose a password instead)", file=out, flush=True)

    async def close(self) -> None:
        await self.live.close()
