"""Helpers for the browser-runtime e2e tests: a tiny ONNX MLP, scene configs and the test server app."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from db_under_test import location_for
from onnx import TensorProto, helper, numpy_helper
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from interactive_gym.browser.scene_config import browser_scene_config
from interactive_gym.controls import KeyMapping
from interactive_gym.policies import OnnxPolicy
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.pyodide_bundle import BundleRegistry, build_browser_bundle
from interactive_gym.server.static_files import static_mounts
from interactive_gym.server.upload_validation import (
    EpisodeUpload,
    episode_write_kwargs,
    rules_from_config,
    validate_episode_upload,
)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
PAGES = Path(__file__).parent / "pages"
if str(DEMO) not in sys.path:
    sys.path.insert(0, str(DEMO))

import gatherers  # noqa: E402  (needs the demo folder on sys.path, like an experiment's own folder)

MAPPING = KeyMapping({"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
                      "ArrowRight": gatherers.RIGHT}, default_action=gatherers.STAY)
AGENTS = ("agent_0", "agent_1")


def build_mlp(path: Path, inputs: int, hidden: int = 16, actions: int = 5, seed: int = 0) -> Path:
    """Writes a 2-layer MLP ``float32[1, inputs] -> logits[1, actions]`` with seeded random weights."""
    rng = np.random.default_rng(seed)
    weights = {
        "w1": rng.normal(0, 1.0, (inputs, hidden)).astype(np.float32),
        "b1": rng.normal(0, 0.1, (hidden,)).astype(np.float32),
        "w2": rng.normal(0, 1.0, (hidden, actions)).astype(np.float32),
        "b2": rng.normal(0, 0.1, (actions,)).astype(np.float32),
    }
    nodes = [
        helper.make_node("Gemm", ["obs", "w1", "b1"], ["h"]),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "mlp_policy",
        [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, inputs])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, actions])],
        [numpy_helper.from_array(v, name=k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


class BrowserTestSite:
    """A Starlette app with bundle routes, static files, test pages, scene configs and a beacon sink."""

    def __init__(self) -> None:
        self.registry = BundleRegistry()
        self.configs: dict[str, dict[str, Any]] = {}
        self.beacons: list[dict[str, Any]] = []
        self.manifest_failures = 0  # the next N manifest requests fail (retry test)

    def add_scene(self, name: str, *, env_creator: Any = gatherers.make_env, policy_mapping: dict[str, Any],
                  seeds: list[int], max_steps: int, num_episodes: int = 1, fps: int = 30,
                  env_kwargs: dict[str, Any] | None = None, extra_modules: tuple[str, ...] = (),
                  pyodide: dict[str, Any] | None = None) -> dict[str, Any]:
        bundle = build_browser_bundle(name, env_creator=env_creator, render_fn=gatherers.render,
                                      policy_mapping=policy_mapping, extra_modules=extra_modules)
        self.registry.add(bundle)
        width, height = gatherers.canvas_size()
        has_human = "human" in policy_mapping.values()
        config = browser_scene_config(
            scene_id=name, bundle=bundle, manifest_url=self.registry.manifest_url(bundle), env_creator=env_creator,
            render_fn=gatherers.render, policy_mapping=policy_mapping, agent_order=list(policy_mapping),
            controls=MAPPING if has_human else None,
            fps=fps, num_episodes=num_episodes, max_steps=max_steps, width=width, height=height, seeds=seeds,
            env_kwargs=env_kwargs or {}, pyodide=pyodide,
        )
        self.configs[name] = config
        return config

    async def _config(self, request: Request) -> Response:
        config = self.configs.get(request.path_params["name"])
        return JSONResponse(config) if config else JSONResponse({"error": "no such config"}, status_code=404)

    async def _beacon(self, request: Request) -> Response:
        self.beacons.append(json.loads(await request.body()))
        return Response(status_code=204)

    def app(self) -> Starlette:
        async def guard(scope, receive, send):  # fails the first manifest requests on demand
            if scope["type"] == "http" and scope["path"].endswith("manifest.json") and self.manifest_failures > 0:
                self.manifest_failures -= 1
                await Response("temporarily unavailable", status_code=503)(scope, receive, send)
                return
            await inner(scope, receive, send)

        inner = Starlette(routes=[
            *self.registry.routes(),
            Route("/test-config/{name}", self._config),
            Route("/test-beacon", self._beacon, methods=["POST"]),
            *static_mounts(),
            Mount("/test-pages", app=StaticFiles(directory=PAGES)),
        ])
        return guard


def onnx_partner(tmp_path: Path, sample: bool = True, frame_skip: int = 2) -> OnnxPolicy:
    model = build_mlp(tmp_path / "partner.onnx", inputs=len(gatherers.obs_vector(gatherers.make_env().reset(0)[0]["agent_0"])))
    return OnnxPolicy(model, obs_to_input=gatherers.obs_vector, sample=sample, frame_skip=frame_skip)


def store_uploads(db: Path, config: dict[str, Any], payloads: list[dict[str, Any]], participant: str) -> list[Any]:
    """Validates each payload as the server would and writes it with DataWriter (to the database the test's
    ``db`` path stands for on the engine under test, ``db_under_test``); returns the results."""
    rules = rules_from_config(config, AGENTS)
    results = [validate_episode_upload(p, participant_id=participant, participant_scene_id=config["scene_id"],
                                       rules=rules) for p in payloads]

    async def write() -> None:
        writer = DataWriter(location_for(db), experiment_id="e2e")  # the engine under test
        await writer.start()
        for result in results:
            if isinstance(result, EpisodeUpload):
                await writer.write_episode(**episode_write_kwargs(result, config, received_at=1.0))
        await writer.close()

    # Playwright's sync API owns this thread's event loop; the writer gets its own thread and loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, write()).result()
    return results
