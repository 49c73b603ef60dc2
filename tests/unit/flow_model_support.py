"""Parts of the model-based flow test (test_flow_model.py): the experiment it runs, a Socket.IO server that
records and checks every emit, the pages, the uploads a page would send, and the database checks.

The server side is real (Experiment, EventRouter, DataWriter on SQLite); only the socket transport is
replaced, by :class:`RecordingSio`, which behaves as python-socketio does where the flow depends on it
(``disconnect(sid)`` runs the disconnect handler) and checks at every emit that it has a target and that
the target socket belongs to the participant the emit was computed for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StartScene, StaticScene
from interactive_gym.experiment_loader import import_experiment_module
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.events import EventRouter
from interactive_gym.server.experiment import Experiment
from interactive_gym.server.storage import Storage

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

T = TypeVar("T")
WAIT_TIMEOUT_S = 5.0
GRACE_S = 2.0
BROWSER_EPISODES = 2
BROWSER_MAX_STEPS = 3
# Events a page receives that are about one participant: the target must be that participant's live socket.
PERSONAL = ("scene", "session", "game_start", "waiting")


def build_config(db: Path) -> RemoteConfig:
    """consent -> instructions -> 2-human server game -> browser game -> end."""
    width, height = gatherers.canvas_size()
    duel = GymScene("duel", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
                    controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                    policy_mapping={"agent_0": "human", "agent_1": "human"}, max_steps=3, num_episodes=1, fps=60,
                    waiting_room_timeout_s=WAIT_TIMEOUT_S, disconnect_grace_s=GRACE_S)
    demo = import_experiment_module(DEMO_DIR / "experiment.py")
    solo = demo.browser_game(fps=10, max_steps=BROWSER_MAX_STEPS, num_episodes=BROWSER_EPISODES)
    stager = Stager([StartScene("consent"), StaticScene("instructions"), duel, solo,
                     EndScene("end", completion_code="DONE", error_completion_code="ERR")])
    config = RemoteConfig().experiment("flow_model", stager=stager, db=db)
    config.validate()
    return config


class Clock:
    """A clock the test moves (the flow's wall clock and the modes' monotonic clock read it)."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@dataclass
class Emit:
    event: str
    data: Any
    to: str | None
    room: str | None


class RecordingSio:
    """A Socket.IO server stand-in: records emits (checking each one), rooms, handlers.

    Args:
        owner_of: Socket id -> participant id of the page that opened it (kept by the test).
    """

    def __init__(self, owner_of: dict[str, str]) -> None:
        self.owner_of = owner_of
        self.handlers: dict[str, Callable[..., Awaitable[Any]]] = {}
        self.rooms: dict[str, set[str]] = defaultdict(set)
        self.inbox: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        self.open: set[str] = set()
        self.problems: list[str] = []
        self.emitted = 0
        self.experiment: Experiment | None = None

    def on(self, event: str, handler: Callable[..., Awaitable[Any]]) -> None:
        self.handlers[event] = handler

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None,
                   **kwargs: Any) -> None:
        self.emitted += 1
        if to is None and room is None:
            self.problems.append(f"{event} emitted without a target")
            return
        if to is not None:
            self._check_personal(event, data, to)
            self.inbox[to].append((event, data))
        if room is not None:
            for sid in self.rooms.get(room, ()):
                if event != "render":
                    self.inbox[sid].append((event, data))

    def _check_personal(self, event: str, data: Any, sid: str) -> None:
        owner = self.owner_of.get(sid)
        if owner is None:
            self.problems.append(f"{event} sent to {sid}, a socket no page opened")
            return
        if event not in PERSONAL:
            return
        experiment = self.experiment
        assert experiment is not None
        participant = experiment.registry.get(owner)
        if participant is None or participant.sid != sid:
            self.problems.append(f"{event} sent to {sid}, which is not {owner}'s live socket")
        if event in ("scene", "session") and data.get("participant_id") != owner:
            self.problems.append(f"{event} for {data.get('participant_id')} sent to {owner}'s socket {sid}")
        if event == "game_start":
            runner = experiment.server_mode.runners.get(data["game_id"])
            if runner is None or owner not in runner.game.humans.values():
                self.problems.append(f"game_start of {data['game_id']} sent to {owner}, not one of its players")
        if event == "waiting":
            room = experiment.server_mode.rooms.rooms.get(data["scene_id"])
            if room is None or owner not in room.waiting():
                self.problems.append(f"waiting count sent to {owner}, who is not waiting in {data['scene_id']}")

    async def enter_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        experiment = self.experiment
        assert experiment is not None
        runner = experiment.server_mode.runners.get(room)
        owner = self.owner_of.get(sid)
        if runner is None or owner not in runner.game.humans.values():
            self.problems.append(f"{owner}'s socket {sid} put in room {room} of a game they do not play")
        self.rooms[room].add(sid)

    async def leave_room(self, sid: str, room: str, namespace: str | None = None) -> None:
        self.rooms[room].discard(sid)

    async def disconnect(self, sid: str, namespace: str | None = None) -> None:
        """Server-side close: as python-socketio, runs the disconnect handler of a socket still open."""
        if sid in self.open:
            self.open.discard(sid)
            for members in self.rooms.values():
                members.discard(sid)
            await self.handlers["disconnect"](sid, "server disconnect")

    def drop_all(self) -> None:
        """The server process is gone: every socket is closed, no handler runs."""
        self.open.clear()
        self.rooms.clear()


@dataclass
class Page:
    """One browser page (a tab; a reload is a new page load in the same tab).

    Attributes:
        pid: The participant id in its URL.
        tab_id: Per tab (sessionStorage).
        page_id: Per page load.
        sid: Its live socket, if connected.
        scene: The last ``scene`` event it took (as the page does: a same-index game scene re-sent is ignored).
        game_id: The server-mode game it was told to play.
        refused: The reason of the last ``refused`` it got.
        over: Whether it was told its current game scene's game is over.
        played: Episodes of its browser config it has uploaded complete.
    """

    pid: str
    tab_id: str
    page_id: str
    sid: str | None = None
    scene: dict[str, Any] | None = None
    game_id: str | None = None
    refused: str | None = None
    over: bool = False
    played: set[int] = field(default_factory=set)
    payloads: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)

    def take(self, events: list[tuple[str, Any]], storage: dict[str, str]) -> None:
        """Reads what the server sent this page (resume secrets go to the browser's storage)."""
        for event, data in events:
            if event == "session":
                storage[data["participant_id"]] = data["resume_secret"]
            elif event == "scene":
                same = self.scene is not None and self.scene["index"] == data["index"]
                if not same:
                    self.game_id, self.over, self.played = None, False, set()
                self.over = self.over or "game_over" in data["scene"]
                # A page keeps the browser config it is playing when the same scene is sent again.
                if not (same and "browser" in self.scene["scene"]):  # type: ignore[index]
                    self.scene = data
            elif event == "game_start":
                self.game_id = data["game_id"]
            elif event == "game_over" and data.get("game_id") == self.game_id:
                self.over = True
            elif event == "refused":
                self.refused = data["reason"]


def upload_payload(page: Page, episode: int, steps: int, end_reason: str) -> dict[str, Any] | None:
    """The ``browser_episode`` a page would send for ``episode`` of its browser config (the same object on a
    retry). Every step's ``info`` names the upload, so the database check can tell uploads apart."""
    config = (page.scene or {}).get("scene", {}).get("browser")
    if config is None:
        return None
    partial = end_reason != "done"
    key = (config["scene_index"], config["attempt"], episode, steps, end_reason)
    if key in page.payloads:
        return page.payloads[key]
    now = time.time()
    tag = {"attempt": config["attempt"], "episode": episode, "steps": steps, "end": end_reason}
    rows = [{"t": t, "keys": {"agent_0": []}, "actions": {"agent_0": 0, "agent_1": 0},
             "rewards": {"agent_0": 0.0, "agent_1": 0.0}, "terminated": {"agent_0": False, "agent_1": False},
             "truncated": {"agent_0": not partial and t == steps - 1, "agent_1": not partial and t == steps - 1},
             "info": tag, "client_ts": now - 1 + 0.1 * t} for t in range(steps)]
    payload = {"scene_id": config["scene_id"], "episode": episode, "seed": config["seeds"][episode],
               "bundle_hash": config["bundle"]["hash"], "partial": partial, "end_reason": end_reason,
               "steps": rows, "scene_index": config["scene_index"], "attempt": config["attempt"],
               "clock": {"started_at": now - 1.05, "ended_at": now - 0.5, "offset_s": 0.0, "rtt_s": 0.001}}
    if end_reason == "error":
        payload["error"] = "Traceback: the model's env failed"
    page.payloads[key] = payload
    return payload


def stored_episode_problems(db: Path) -> list[str]:
    """Browser episodes that share a visit key, or whose steps come from two uploads or another attempt."""
    problems = []
    with Storage(db, readonly=True) as storage:
        seen: set[tuple[Any, ...]] = set()
        for row in storage.episodes():
            if row.mode != "browser":
                continue
            key = (row.source, row.scene_index, row.attempt, row.episode)
            if key in seen:
                problems.append(f"two stored episodes share {key}")
            seen.add(key)
            tags = {(s.info or {}).get("attempt", "?") if isinstance(s.info, dict) else "?" for s in
                    storage.steps(row.id)}
            uploads = {repr(s.info) for s in storage.steps(row.id)}
            if len(uploads) > 1:
                problems.append(f"episode {key} holds steps of {len(uploads)} uploads: {sorted(uploads)}")
            if tags and tags != {row.attempt}:
                problems.append(f"episode {key} (attempt {row.attempt}) holds steps of attempts {sorted(map(str, tags))}")
    return problems


def stored_statuses(db: Path) -> dict[str, tuple[str, str | None]]:
    """participant id -> (status, current scene) as stored."""
    with Storage(db, readonly=True) as storage:
        return {p.participant_id: (p.status, p.current_scene) for p in storage.participants()}


class Loop:
    """One event loop in one worker thread for a whole test case: background tasks (games, posted work)
    survive from one rule to the next, and Playwright's loop in the main thread is never touched."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        self.loop = asyncio.new_event_loop()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.pool.submit(self.loop.run_until_complete, coroutine).result()

    def close(self) -> None:
        self.pool.submit(self.loop.close).result()
        self.pool.shutdown()


async def start_server(config: RemoteConfig, sio: RecordingSio, clock: Clock, monotonic: Clock,
                       restore: bool) -> tuple[DataWriter, Experiment, EventRouter, dict[str, Callable[..., Any]]]:
    """A started writer, the experiment (participants restored after a restart) and its event dispatchers."""
    # NORMAL: commits survive the process, not power loss; the model never cuts power, and it saves an fsync
    # per commit (most of a step's time on a shared disk).
    writer = DataWriter(config.database_path(), experiment_id=config.experiment_id, flush_interval_s=0.05,
                        synchronous="NORMAL")
    await writer.start()
    experiment = Experiment(config, sio, writer, clock=clock, monotonic=monotonic)
    sio.experiment = experiment
    if restore:
        await experiment.restore_participants()
    router = EventRouter(sio, experiment)
    router.register()
    dispatch = {route.event: router._dispatcher(route) for route in router.routes()}
    return writer, experiment, router, dispatch
