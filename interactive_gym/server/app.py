"""Builds the ASGI application of an experiment: Starlette for pages and files, python-socketio for events.

Wiring only: the state lives in the :class:`~interactive_gym.server.experiment.Experiment` created here, owned
by the app; its socket events are registered by :class:`~interactive_gym.server.events.EventRouter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import socketio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from interactive_gym.configurations.remote_config import RemoteConfig
from interactive_gym.server.admin.dashboard import Dashboard
from interactive_gym.server.beacon import BeaconEndpoint
from interactive_gym.server.cluster.options import ClusterOptions
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.episode_verifier import EpisodeVerifier
from interactive_gym.server.events import EventRouter
from interactive_gym.server.experiment import Experiment
from interactive_gym.server.fast_socketio import DirectSendManager, ExperimentSocketServer, JsonFirstPacket
from interactive_gym.server.message_limits import MAX_ENGINEIO_BYTES, MAX_MESSAGE_CHARS
from interactive_gym.server.rate_limits import RateLimiter
from interactive_gym.server.static_files import PACKAGE_DIR, static_mounts
from interactive_gym.server.storage_connection import describe

if TYPE_CHECKING:
    from interactive_gym.server.cluster.worker_links import WorkerLinks

log = logging.getLogger("interactive_gym.app")
INDEX_HTML = PACKAGE_DIR / "server" / "templates" / "index.html"

# Young collections once 50,000 more container objects exist than were freed, not 700: a game tick's objects die
# by reference counting, so the default collected ~24 times a second at 50 games for nothing (5% of the server's
# time, pauses up to 12 ms); benchmarks/results/server_capacity_demo_gc_threshold_50000.json against
# server_capacity_demo_uvloop_websockets_sansio.json (p99 tick lateness at 50 games 35 ms -> 18 ms).
YOUNG_GC_THRESHOLD = 50_000


@contextlib.contextmanager
def serving_heap(young_threshold: int) -> Iterator[None]:
    """The garbage collector's settings while the server serves, restored afterwards (tests start many servers).

    What exists at start-up (modules, the experiment, restored participants) lives as long as the server: frozen,
    a full collection no longer walks it (its pause would otherwise land in some game's tick).
    """
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_threshold, *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        gc.unfreeze()


class ExperimentApp:
    """The running experiment: ``asgi`` is what uvicorn serves; ``server`` holds the state.

    Args:
        config: The validated experiment.
        young_gc_threshold: The collector's first threshold while serving (benchmarks compare others).
        cluster: This process is one worker of several (``interactive-gym run --workers N``).
    """

    def __init__(self, config: RemoteConfig, *, young_gc_threshold: int = YOUNG_GC_THRESHOLD,
                 cluster: ClusterOptions | None = None) -> None:
        self.config = config
        self.young_gc_threshold = young_gc_threshold
        self.writer = DataWriter(config.database_path(), experiment_id=config.experiment_id)
        self.worker: WorkerLinks | None = None
        if cluster is not None:
            # Imported here: the redis extra is needed by workers only.
            from interactive_gym.server.cluster.worker_links import WorkerLinks

            self.worker = WorkerLinks(config, cluster)
        # DirectSendManager/JsonFirstPacket: the same bytes as the defaults, with less CPU per emit (every game
        # sends a render packet every tick), a bounded render backlog per slow reader, and the message limits
        # above (see fast_socketio.py). A worker's manager is the Redis one (the same local fast path).
        manager = self.worker.manager if self.worker is not None else DirectSendManager()
        self.sio = ExperimentSocketServer(
            async_mode="asgi", cors_allowed_origins=[], max_http_buffer_size=MAX_ENGINEIO_BYTES,
            max_message_chars=MAX_MESSAGE_CHARS, client_manager=manager, serializer=JsonFirstPacket)
        self.server = Experiment(config, self.sio, self.writer, verifier=EpisodeVerifier(self.writer),
                                 placement=self.worker.placement if self.worker is not None else None)
        self.events = EventRouter(self.sio, self.server, limiter=RateLimiter())
        self.events.register()
        self.dashboard = Dashboard(self.sio, self.server, config.database_path())
        beacon = BeaconEndpoint(known_token=self.events.knows_beacon_token, store=self.events.beacon)
        self._housekeeping: asyncio.Task[None] | None = None
        page = INDEX_HTML.read_text(encoding="utf-8").replace("{{experiment_id}}", config.experiment_id)
        routes = [
            Route("/", lambda request: HTMLResponse(page)),
            Route("/assets/{scene_id}/{name}", self._asset),
            Route("/healthz", lambda request: Response("ok")),
            Route("/favicon.ico", lambda request: Response(status_code=204)),
            Route("/beacon/{token}", beacon, methods=["POST"]),
            *self.server.browser.registry.routes(),
            *self.dashboard.routes(),
            *static_mounts(),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self.asgi = socketio.ASGIApp(self.sio, other_asgi_app=self.starlette)

    async def _asset(self, request: Request) -> Response:
        """Serves an image a scene registered, looked up by scene and name (never a client-given path)."""
        assert self.config.stager is not None
        scene = self.config.stager.scene(request.path_params["scene_id"])
        registry = getattr(scene, "assets", None)
        path: Path | None = registry.resolve(request.path_params["name"]) if registry is not None else None
        if path is None:
            return Response("not found", status_code=404)
        # A researcher may replace an image between runs of the server: revalidated (ETag), never guessed fresh.
        return FileResponse(path, headers={"Cache-Control": "no-cache"})

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.writer.start()
        restored = await self.server.restore_participants()
        if restored:
            log.info("restored %d participants from %s", restored, describe(self.config.database_path()))
        if self.worker is not None:
            assert self.server.flow.handovers is not None
            await self.worker.start(self.server.flow.handovers.hand_over)
        self._housekeeping = asyncio.create_task(self._housekeep())
        log.info("experiment %s: data in %s", self.config.experiment_id, describe(self.config.database_path()))
        self.dashboard.announce()
        try:
            with serving_heap(self.young_gc_threshold):
                yield
        finally:
            self._housekeeping.cancel()
            await self.dashboard.close()
            await self.server.shutdown()
            if self.worker is not None:
                await self.worker.close()
            await self.writer.close()

    async def _housekeep(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.server.housekeeping()
            except Exception:  # noqa: BLE001 - housekeeping must keep running
                log.exception("housekeeping failed")


def create_app(config: RemoteConfig, *, young_gc_threshold: int = YOUNG_GC_THRESHOLD,
               cluster: ClusterOptions | None = None) -> ExperimentApp:
    """Validates nothing (the caller did, at start-up) and builds the app."""
    return ExperimentApp(config, young_gc_threshold=young_gc_threshold, cluster=cluster)
