"""The /admin routes on the real app (Starlette, Experiment, SQLite), called through ASGI: every route needs the
session (401, counted), POSTs need the CSRF token and this origin, login is limited, the cookie's flags, the
enrolment switch (a new participant is refused, a known one goes on), the export zip and timelines."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.experiment_loader import import_experiment_module
from interactive_gym.server.admin.auth import COOKIE_NAME, PASSWORD_ENV
from interactive_gym.server.app import ExperimentApp, create_app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "test-password-1"
ROUTES = [("GET", "/admin/state"), ("GET", "/admin/export.zip"), ("GET", "/admin/participants/p1/timeline"),
          ("POST", "/admin/logout"), ("POST", "/admin/enrolment"), ("POST", "/admin/games/g-1/end")]


async def call(app: ExperimentApp, method: str, path: str, *, headers: dict[str, str] | None = None,
               body: Any = None, client: str = "127.0.0.1") -> tuple[int, dict[str, list[str]], bytes]:
    """One HTTP request through the app's Starlette ASGI app."""
    raw = json.dumps(body).encode() if body is not None else b""
    all_headers = {"host": "testserver", **(headers or {})}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in all_headers.items()],
             "client": (client, 5000), "server": ("testserver", 80)}
    inbox = [{"type": "http.request", "body": raw, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if inbox:
            return inbox.pop(0)
        await asyncio.Event().wait()  # the client stays connected until the response is sent
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app.starlette(scope, receive, send)
    start = sent[0]
    out: dict[str, list[str]] = {}
    for key, value in start["headers"]:
        out.setdefault(key.decode().lower(), []).append(value.decode())
    return start["status"], out, b"".join(m.get("body", b"") for m in sent[1:])


class Admin:
    """The running app in the test's event loop, with a logged-in session."""

    def __init__(self, app: ExperimentApp) -> None:
        self.app = app
        self.cookie = ""
        self.csrf = ""

    async def login(self) -> None:
        status, headers, _ = await call(self.app, "POST", "/admin/login", body={"password": PASSWORD})
        assert status == 200
        self.cookie = headers["set-cookie"][0].split(";")[0].split("=", 1)[1]
        status, _, page = await call(self.app, "GET", "/admin", headers=self.headers())
        assert status == 200
        self.csrf = page.decode().split('name="csrf-token" content="')[1].split('"')[0]

    def headers(self, csrf: bool = False) -> dict[str, str]:
        out = {"cookie": f"{COOKIE_NAME}={self.cookie}"}
        if csrf:
            out["x-csrf-token"] = self.csrf
        return out


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExperimentApp]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sys.path.insert(0, str(ROOT / "examples" / "demo"))
    example = import_experiment_module(ROOT / "examples" / "demo" / "two_humans.py")
    config = example.build_config(max_steps=5, fps=10, db=str(tmp_path / "study.sqlite"))
    config.validate()
    yield create_app(config)


def run(app: ExperimentApp, scenario: Any) -> Any:
    async def main() -> Any:
        async with app._lifespan(app.starlette):
            return await scenario(Admin(app))
    return asyncio.run(main())


def test_every_route_without_a_session_is_401_and_counted(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        auth = app.dashboard.auth
        for method, path in [("GET", "/admin"), *ROUTES]:
            before = sum(auth.unauthorized.values())
            status, _, _ = await call(app, method, path)
            assert status == 401, (method, path)
            assert sum(auth.unauthorized.values()) == before + 1
        for method, path in ROUTES:  # a forged cookie is no better
            status, _, _ = await call(app, method, path, headers={"cookie": f"{COOKIE_NAME}=abc.1.2.def"})
            assert status == 401, (method, path)
    run(app, scenario)


def test_wrong_password_is_401_and_login_is_rate_limited(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        statuses = [(await call(app, "POST", "/admin/login", body={"password": "nope"}))[0] for _ in range(7)]
        assert statuses == [401] * 5 + [429] * 2
        # The limit is per address: another client may still log in, with the right password only.
        status, _, _ = await call(app, "POST", "/admin/login", body={"password": PASSWORD}, client="10.1.1.1")
        assert status == 200
    run(app, scenario)


def test_session_cookie_is_httponly_strict_and_secure_behind_https(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        _, plain, _ = await call(app, "POST", "/admin/login", body={"password": PASSWORD})
        flags = plain["set-cookie"][0].lower()
        assert "httponly" in flags and "samesite=strict" in flags and "secure" not in flags
        _, https, _ = await call(app, "POST", "/admin/login", body={"password": PASSWORD},
                                 headers={"x-forwarded-proto": "https"})
        assert "secure" in https["set-cookie"][0].lower()
    run(app, scenario)


def test_posts_need_the_csrf_token_and_this_origin(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        await admin.login()
        status, _, _ = await call(app, "POST", "/admin/enrolment", headers=admin.headers(), body={"open": False})
        assert status == 403
        status, _, _ = await call(app, "POST", "/admin/enrolment", body={"open": False},
                                  headers={**admin.headers(), "x-csrf-token": "0" * 64})
        assert status == 403
        status, _, _ = await call(app, "POST", "/admin/enrolment", body={"open": False},
                                  headers={**admin.headers(csrf=True), "origin": "https://evil.example"})
        assert status == 403
        assert app.server.flow.enrolment_open  # nothing changed
        status, _, body = await call(app, "POST", "/admin/enrolment", headers=admin.headers(csrf=True),
                                     body={"open": False})
        assert status == 200 and json.loads(body) == {"ok": True, "enrolment_open": False}
        assert not app.server.flow.enrolment_open
        status, _, _ = await call(app, "POST", "/admin/enrolment", headers=admin.headers(csrf=True),
                                  body={"open": "no"})
        assert status == 400
        status, _, _ = await call(app, "POST", "/admin/login", body={"password": PASSWORD},
                                  headers={"origin": "https://evil.example"})
        assert status == 403
    run(app, scenario)


def test_paused_enrolment_refuses_new_participants_and_keeps_known_ones(app: ExperimentApp) -> None:
    emitted: list[tuple[str, Any, Any]] = []

    async def record(event: str, data: Any = None, to: Any = None, room: Any = None, **kwargs: Any) -> None:
        emitted.append((event, data, to))

    async def scenario(admin: Admin) -> None:
        app.sio.emit = record  # type: ignore[method-assign]
        flow = app.server.flow
        await flow.connect("sid-a", "alice", "subject_id", {"subject_id": "alice"}, {"tab_id": "t-a"})
        flow.enrolment_open = False
        await flow.connect("sid-b", "bob", "subject_id", {"subject_id": "bob"}, {"tab_id": "t-b"})
        refused = [data for event, data, to in emitted if event == "refused" and to == "sid-b"]
        assert refused == [{"reason": "refused_paused",
                            "message": "This study is not taking participants right now. Please try again later."}]
        assert app.server.registry.get("bob") is None  # no trace: bob can come back once enrolment reopens
        secret = next(d for e, d, to in emitted if e == "session" and to == "sid-a")["resume_secret"]
        await flow.disconnect("sid-a")
        await flow.connect("sid-a2", "alice", "subject_id", {"subject_id": "alice"},
                           {"tab_id": "t-a", "resume": {"alice": secret}})
        assert app.server.registry.get("alice").sid == "sid-a2"  # a known participant goes on
        assert not [d for e, d, to in emitted if e == "refused" and to == "sid-a2"]
        flow.enrolment_open = True
        await flow.connect("sid-b2", "bob", "subject_id", {"subject_id": "bob"}, {"tab_id": "t-b"})
        assert app.server.registry.get("bob") is not None
    run(app, scenario)


def test_export_zip_holds_the_csvs_and_timeline_reads_one_participant(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        await admin.login()
        writer = app.writer
        await writer.upsert_participant("p1", url_params={"note": "<b>x</b>"}, status="active", current_scene="consent")
        await writer.record_event("participant_identified", {"id_source": "subject_id"}, participant_id="p1")
        status, headers, body = await call(app, "GET", "/admin/export.zip", headers=admin.headers())
        assert status == 200 and headers["content-type"] == ["application/zip"]
        names = zipfile.ZipFile(io.BytesIO(body)).namelist()
        assert {"participants.csv", "events.csv", "episodes.csv", "steps.csv"} <= set(names)
        participants = zipfile.ZipFile(io.BytesIO(body)).read("participants.csv").decode()
        assert "p1" in participants
        status, _, body = await call(app, "GET", "/admin/participants/p1/timeline", headers=admin.headers())
        timeline = json.loads(body)
        assert status == 200 and timeline["participant"]["url_params"] == {"note": "<b>x</b>"}
        assert [e["kind"] for e in timeline["events"]] == ["participant_identified"]
        assert (await call(app, "GET", "/admin/participants/nobody/timeline", headers=admin.headers()))[0] == 404
        assert (await call(app, "GET", "/admin/participants/a%20b/timeline", headers=admin.headers()))[0] == 400
        assert (await call(app, "POST", "/admin/games/g-none/end", headers=admin.headers(csrf=True)))[0] == 404
    run(app, scenario)


def test_logout_ends_the_session(app: ExperimentApp) -> None:
    async def scenario(admin: Admin) -> None:
        await admin.login()
        assert (await call(app, "GET", "/admin/state", headers=admin.headers()))[0] == 200
        assert (await call(app, "POST", "/admin/logout", headers=admin.headers(csrf=True)))[0] == 200
        assert (await call(app, "GET", "/admin/state", headers=admin.headers()))[0] == 401
    run(app, scenario)


def test_the_live_socket_needs_the_session_cookie(app: ExperimentApp) -> None:
    from socketio.exceptions import ConnectionRefusedError as SocketRefused

    async def scenario(admin: Admin) -> None:
        live = app.dashboard.live
        for environ in ({}, {"HTTP_COOKIE": f"{COOKIE_NAME}=forged.1.2.abc"}, {"HTTP_COOKIE": "bad;;=cookie"}):
            with pytest.raises(SocketRefused):
                await live._connect("sid-x", environ)
        assert app.dashboard.auth.unauthorized["socket:connect"] == 3
        await admin.login()
        rooms: list[tuple[str, str]] = []

        async def enter_room(sid: str, room: str, namespace: str | None = None) -> None:
            rooms.append((sid, room))
        app.sio.enter_room = enter_room  # type: ignore[method-assign]  # (no engine.io socket in this test)
        assert await live._connect("sid-y", {"HTTP_COOKIE": f"{COOKIE_NAME}={admin.cookie}"}) is True
        assert rooms == [("sid-y", "dashboards")]
        await live._disconnect("sid-y")
    run(app, scenario)
