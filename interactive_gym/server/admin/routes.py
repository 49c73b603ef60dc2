"""The dashboard's HTTP routes under ``/admin``. Thin: every rule is in :mod:`.auth`, every figure in
:mod:`.snapshot`; these check the session, read or change one thing, and answer.

Every route but the login needs the session cookie (else 401, counted); every POST also needs the session's
CSRF token in the ``X-CSRF-Token`` header and, when the browser sends one, an ``Origin`` of this server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from interactive_gym.export import ExportError, export_csv
from interactive_gym.server.admin.auth import COOKIE_NAME, CSRF_HEADER, SESSION_MAX_AGE_S, AdminAuth
from interactive_gym.server.admin.live import LiveDashboard
from interactive_gym.server.admin.reads import StudyReader
from interactive_gym.server.flow.participants import ID_PATTERN
from interactive_gym.server.static_files import STATIC_DIR

log = logging.getLogger("interactive_gym.admin")
PAGE_DIR = STATIC_DIR / "admin"
MAX_BODY_BYTES = 4096
GAME_ID_CHARS = 64


class AdminRoutes:
    """``/admin`` and its actions.

    Args:
        auth: Sessions, CSRF and the login limit.
        live: The live push (its snapshot is also the answer of ``GET /admin/state``).
        experiment: The Experiment (enrolment, games).
        reader: Read-only database access (timelines).
        db_path: The database file (export).
        monotonic: Clock of the login rate limit.
    """

    def __init__(self, auth: AdminAuth, live: LiveDashboard, experiment: Any, reader: StudyReader, db_path: Path | str,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.auth = auth
        self.live = live
        self.experiment = experiment
        self.reader = reader
        self.db_path = db_path
        self.monotonic = monotonic
        self._page = (PAGE_DIR / "admin.html").read_text(encoding="utf-8")
        self._login_page = (PAGE_DIR / "login.html").read_text(encoding="utf-8")

    def routes(self) -> list[Route]:
        return [
            Route("/admin", self.page, methods=["GET"]),
            Route("/admin/login", self.login, methods=["POST"]),
            Route("/admin/logout", self._post(self.logout), methods=["POST"]),
            Route("/admin/state", self._get(self.state), methods=["GET"]),
            Route("/admin/export.zip", self._get(self.export), methods=["GET"]),
            Route("/admin/enrolment", self._post(self.enrolment), methods=["POST"]),
            Route("/admin/games/{game_id}/end", self._post(self.end_game), methods=["POST"]),
            Route("/admin/participants/{participant_id}/timeline", self._get(self.timeline), methods=["GET"]),
        ]

    # -- guards ---------------------------------------------------------------------------------------------
    def _session(self, request: Request) -> str | None:
        return self.auth.session_of(request.cookies.get(COOKIE_NAME), time.time())

    def _unauthorized(self, request: Request, message: str = "log in at /admin first") -> JSONResponse:
        self.auth.refuse(f"{request.method} {request.url.path}")
        return JSONResponse({"ok": False, "error": message}, status_code=401)

    def _get(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            if self._session(request) is None:
                return self._unauthorized(request)
            return await handler(request)
        return guarded

    def _post(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            session = self._session(request)
            if session is None:
                return self._unauthorized(request)
            if not _same_origin(request) or not self.auth.csrf_ok(session, request.headers.get(CSRF_HEADER)):
                self.auth.refuse(f"csrf {request.url.path}")
                return JSONResponse({"ok": False, "error": "missing or wrong CSRF token"}, status_code=403)
            return await handler(request)
        return guarded

    # -- pages and login ------------------------------------------------------------------------------------
    async def page(self, request: Request) -> Response:
        """The dashboard for a session; the login form (401) without one."""
        session = self._session(request)
        if session is None:
            self.auth.refuse("GET /admin")
            return HTMLResponse(self._login_page, status_code=401, headers=_NO_STORE)
        return HTMLResponse(self._page.replace("{{csrf_token}}", self.auth.csrf_token(session)), headers=_NO_STORE)

    async def login(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not self.auth.login_allowed(client, self.monotonic()):
            return JSONResponse({"ok": False, "error": "too many login attempts; wait a minute"}, status_code=429,
                                headers={"Retry-After": "5"})
        if not _same_origin(request):
            self.auth.refuse("login (cross-site)")
            return JSONResponse({"ok": False, "error": "cross-site login refused"}, status_code=403)
        body = await _json_body(request)
        if not self.auth.check_password(body.get("password") if isinstance(body, dict) else None):
            return self._unauthorized(request, "wrong password or token")
        cookie = self.auth.open_session(time.time())
        response = JSONResponse({"ok": True})
        response.set_cookie(COOKIE_NAME, cookie, max_age=int(SESSION_MAX_AGE_S), path="/", httponly=True,
                            samesite="strict", secure=_is_https(request))
        log.info("dashboard login from %s", client)
        return response

    async def logout(self, request: Request) -> Response:
        self.auth.close_session(request.cookies.get(COOKIE_NAME))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=_is_https(request))
        return response

    # -- reads ----------------------------------------------------------------------------------------------
    async def state(self, request: Request) -> Response:
        """The live view once (the socket pushes the same every second)."""
        return JSONResponse(self.live.view(), headers=_NO_STORE)

    async def timeline(self, request: Request) -> Response:
        participant_id = request.path_params["participant_id"]
        if not ID_PATTERN.fullmatch(participant_id):
            return JSONResponse({"ok": False, "error": "not a participant id"}, status_code=400)
        found = await asyncio.to_thread(self.reader.timeline, participant_id)
        if found is None:
            return JSONResponse({"ok": False, "error": "no such participant in the database"}, status_code=404)
        return JSONResponse(_plain(found), headers=_NO_STORE)

    async def export(self, request: Request) -> Response:
        """Every table as CSV, zipped (built in a temporary folder off the event loop, removed after sending)."""
        folder = Path(tempfile.mkdtemp(prefix="ig-admin-export-"))
        try:
            archive = await asyncio.to_thread(self._build_zip, folder)
        except ExportError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        except Exception:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        name = f"{self.experiment.config.experiment_id}-export.zip"
        return FileResponse(archive, media_type="application/zip", filename=name,
                            background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))

    def _build_zip(self, folder: Path) -> Path:
        files = export_csv(self.db_path, folder / "csv")
        archive = folder / "export.zip"
        with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path, _rows in files:
                zf.write(path, arcname=path.name)
        return archive

    # -- actions --------------------------------------------------------------------------------------------
    async def enrolment(self, request: Request) -> Response:
        body = await _json_body(request)
        value = body.get("open") if isinstance(body, dict) else None
        if not isinstance(value, bool):
            return JSONResponse({"ok": False, "error": 'send {"open": true} or {"open": false}'}, status_code=400)
        flow = self.experiment.flow
        if flow.enrolment_open != value:
            flow.enrolment_open = value
            await self.experiment.writer.record_event("enrolment_opened" if value else "enrolment_paused", {})
            log.info("enrolment %s from the dashboard", "opened" if value else "paused")
        return JSONResponse({"ok": True, "enrolment_open": value})

    async def end_game(self, request: Request) -> Response:
        game_id = request.path_params["game_id"]
        if len(game_id) > GAME_ID_CHARS:
            return JSONResponse({"ok": False, "error": "not a game id"}, status_code=400)
        server_mode, p2p_mode = self.experiment.server_mode, self.experiment.p2p_mode
        # A second tab or a repeated click while the game is still ending: ended once, recorded once. Nothing
        # is awaited between this check and the mode marking the game, so two concurrent asks cannot both pass.
        if game_id in server_mode.ending or game_id in p2p_mode.ended_by_researcher:
            return JSONResponse({"ok": True, "duplicate": True})
        mode = "server"
        ended = server_mode.end_game(game_id)
        if not ended:
            mode = "p2p"
            ended = await p2p_mode.end_game(game_id)
        if not ended:
            return JSONResponse({"ok": False, "error": "no such running game"}, status_code=404)
        await self.experiment.writer.record_event("game_ended_by_researcher", {"mode": mode}, game_id=game_id)
        log.info("game %s ended from the dashboard", game_id)
        return JSONResponse({"ok": True})


_NO_STORE = {"Cache-Control": "no-store"}


def _is_https(request: Request) -> bool:
    """Behind a TLS proxy the scheme arrives in ``X-Forwarded-Proto`` (only ever used to make cookies stricter)."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _same_origin(request: Request) -> bool:
    """No ``Origin`` (not a browser's cross-site request) or the one of this server's host."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


async def _json_body(request: Request) -> Any:
    """The JSON body of at most :data:`MAX_BODY_BYTES`, or None (too big or not JSON)."""
    size = 0
    chunks = []
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except ValueError:
        return None


def _plain(value: Any) -> Any:
    """JSON-safe: what the database holds that JSON cannot (bytes, NaN, infinities, tuples) becomes text/lists."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
