"""Helpers for the participant-lifecycle e2e tests: a page simulated by a real python-socketio client (the auth
``app.js`` sends, the resume secret it keeps, reconnects as a network blip or a reload), small configs, counter envs
of one, two and three agents for server-mode games, and database reads."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import db_under_test
import socketio
from gymnasium.spaces import Discrete

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene, StaticScene
from interactive_gym.server.storage import Storage

CONSENT = {"consent": True}


class Page:
    """One participant's page: a real Socket.IO client that connects with the auth the real page sends.

    Args:
        url: The server.
        subject: The ``subject_id`` URL parameter.
        tab_id: The page's per-tab id (kept across reloads of that tab, like ``sessionStorage``).
    """

    def __init__(self, url: str, subject: str, tab_id: str | None = None) -> None:
        self.url = url
        self.subject = subject
        self.tab_id = tab_id or f"tab-{subject}"
        self.page_id = secrets.token_hex(6)
        self.secret: str | None = None
        self.inbox: list[tuple[str, Any]] = []
        self.sio: socketio.AsyncClient | None = None

    async def open(self, *, with_secret: bool = True) -> Page:
        """Connects a new socket (the secret learned from an earlier ``session`` is presented, like localStorage)."""
        client = socketio.AsyncClient(reconnection=False)
        client.on("*", self._received)
        resume = {self.subject: self.secret} if with_secret and self.secret else {}
        await client.connect(self.url, auth={"url_params": {"subject_id": self.subject}, "tab_id": self.tab_id,
                                             "page_id": self.page_id, "resume": resume},
                             transports=["websocket"])
        self.sio = client
        return self

    def _received(self, event: str, data: Any = None) -> None:
        self.inbox.append((event, data))
        if event == "session" and isinstance(data, dict) and data.get("participant_id") == self.subject:
            self.secret = data["resume_secret"]

    async def blip(self) -> None:
        """The socket drops and the same page reconnects (same page id)."""
        await self.close()
        await self.open()

    async def reload(self) -> None:
        """The tab is reloaded: a new page (new page id) in the same tab."""
        await self.close()
        self.page_id = secrets.token_hex(6)
        await self.open()

    async def close(self) -> None:
        if self.sio is not None:
            await self.sio.disconnect()
            self.sio = None

    async def call(self, event: str, data: Any = None, timeout: float = 10.0) -> Any:
        assert self.sio is not None
        return await self.sio.call(event, data, timeout=timeout)

    async def emit(self, event: str, data: Any = None) -> None:
        assert self.sio is not None
        await self.sio.emit(event, data)

    def events(self, name: str) -> list[Any]:
        return [data for event, data in self.inbox if event == name]

    def scenes(self) -> list[dict[str, Any]]:
        return self.events("scene")

    async def wait(self, name: str, where: Callable[[Any], bool] = lambda data: True, timeout: float = 10.0) -> Any:
        """The first ``name`` event (already received or arriving within ``timeout``) for which ``where`` holds."""
        deadline = time.monotonic() + timeout
        while True:
            found = [data for data in self.events(name) if where(data)]
            if found:
                return found[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.subject}: no matching {name!r}; got {[e for e, _ in self.inbox]}")
            await asyncio.sleep(0.02)

    async def wait_scene(self, scene_id: str, timeout: float = 10.0) -> dict[str, Any]:
        return await self.wait("scene", lambda s: s["scene"]["scene_id"] == scene_id, timeout)


# -- configs ---------------------------------------------------------------------------------------------------
def pages_config(db: Path, *middle: str) -> RemoteConfig:
    """Consent, one static page per name in ``middle``, the end page."""
    stager = Stager([StartScene("consent", body_html="<p>Hello</p>"),
                     *(StaticScene(name, title=name) for name in middle), EndScene("end", completion_code="DONE1")])
    return RemoteConfig().experiment("lifecycle", stager=stager, db=db)


def game_config(db: Path, *games: GymScene, consent: bool = False) -> RemoteConfig:
    """Optional consent, the game scenes, the end page (``completion_code="DONE1"``)."""
    first = [StartScene("consent", body_html="<p>Hello</p>")] if consent else []
    stager = Stager([*first, *games, EndScene("end", completion_code="DONE1", error_completion_code="ERR1")])
    return RemoteConfig().experiment("lifecycle", stager=stager, db=db)


class Counters:
    """Agents each pressing a button; the episode never ends on its own (``max_steps`` truncates it, or a rule
    ends the game for the player). The subclasses name the agents."""

    possible_agents: list[str] = []

    def __init__(self) -> None:
        self.agents = list(self.possible_agents)
        self.t = 0

    def action_space(self, agent: str) -> Discrete:
        return Discrete(2)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.t = 0
        return {a: [0] for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> tuple[dict, dict, dict, dict, dict]:
        self.t += 1
        none = {a: False for a in self.agents}
        return ({a: [self.t] for a in self.agents}, {a: 0.0 for a in self.agents}, none, dict(none),
                {a: {} for a in self.agents})


class OneCounter(Counters):
    """One agent (solo server-mode games)."""

    possible_agents = ["agent_0"]


class TwoCounters(Counters):
    """Two agents (pair games)."""

    possible_agents = ["agent_0", "agent_1"]


class ThreeCounters(Counters):
    """Three agents (server-mode waiting tests)."""

    possible_agents = ["agent_0", "agent_1", "agent_2"]


def draw_counter(env: Any, surface: Any) -> None:
    surface.text(4, 4, f"t={env.t}", id="t")


def humans_scene(scene_id: str, env: type[Counters], *, fps: int, max_steps: int, **kwargs: Any) -> GymScene:
    """A server-mode game of ``env``'s agents, every one played by a human (``kwargs``: more GymScene options)."""
    return GymScene(scene_id, env_creator=env, render_fn=draw_counter, width=64, height=64, controls={"ArrowUp": 1},
                    policy_mapping={a: "human" for a in env.possible_agents}, fps=fps, max_steps=max_steps, **kwargs)


def three_human_scene(scene_id: str = "trio", **kwargs: Any) -> GymScene:
    return humans_scene(scene_id, ThreeCounters, fps=10, max_steps=1000, **kwargs)


# -- database --------------------------------------------------------------------------------------------------
def read_db(path: Path, read: Callable[[Storage], Any]) -> Any:
    """Reads the experiment database with a read-only connection (the server keeps writing)."""
    with db_under_test.open_storage(path) as storage:
        return read(storage)


def participant_row(path: Path, participant_id: str) -> Any:
    return next(p for p in read_db(path, lambda s: s.participants()) if p.participant_id == participant_id)


def event_kinds(path: Path, participant_id: str | None = None) -> list[str]:
    rows = read_db(path, lambda s: s.events())
    return [e.kind for e in rows if participant_id is None or e.participant_id == participant_id]


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Waits for a condition the server reaches on its own clock (housekeeping); fails naming it."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.05)
