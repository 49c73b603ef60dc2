"""Browser-mode figures in headless Chromium on this machine; prints one JSON document.

Measures, with the demo environment (Fruit Gatherers) and a small ONNX MLP partner:

* ``cold_first_frame_ms``: page navigation start -> first game frame drawn, fresh browser context (empty
  HTTP cache): Pyodide download + start, bundle, env import, renderer, ONNX session; and the same with a
  scripted Python partner (no onnxruntime-web), and ``bare_pyodide_load_ms`` (navigation start ->
  ``loadPyodide`` resolved, nothing else: the floor for the first frame).
* ``preloaded_first_frame_ms``: Pyodide preloaded while the participant reads instructions; time from
  "start the game" to the first frame.
* ``loop``: frames/s of the full per-frame path (keys -> Python step + render -> JSON packet) in the page,
  the env's raw steps/s in Pyodide, the per-frame split (env.step, render function, packet commit, and the
  overhead: everything else, i.e. JS<->Python crossing, key cleaning, action mapping, recording, JSON), and
  ONNX inference per call.
* ``worker``: the same frame path in a module Worker, driven by postMessage per frame.

Usage: ``.venv/bin/python benchmarks/browser_mode.py [--frames 3000] [--runs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import uvicorn
from onnx import TensorProto, helper, numpy_helper
from playwright.sync_api import sync_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples" / "demo"))
sys.path.insert(0, str(ROOT))

import gatherers  # noqa: E402

from interactive_gym.browser.scene_config import browser_scene_config  # noqa: E402
from interactive_gym.controls import KeyMapping  # noqa: E402
from interactive_gym.policies import OnnxPolicy  # noqa: E402
from interactive_gym.server.pyodide_bundle import BundleRegistry, build_browser_bundle  # noqa: E402
from interactive_gym.server.static_files import find_node_modules, static_mounts  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = Path(__file__).parent / "pages"


def build_mlp(path: Path, inputs: int, hidden: int = 64, actions: int = 5) -> Path:
    """A 2-layer MLP policy (inputs -> 64 -> 5 logits) with seeded random weights."""
    rng = np.random.default_rng(0)
    init = [numpy_helper.from_array(rng.normal(0, 1, shape).astype(np.float32), name=name)
            for name, shape in (("w1", (inputs, hidden)), ("b1", (hidden,)), ("w2", (hidden, actions)),
                                ("b2", (actions,)))]
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["obs", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["hr"]),
         helper.make_node("Gemm", ["hr", "w2", "b2"], ["logits"])],
        "mlp", [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, inputs])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, actions])], init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def make_app(configs: dict[str, dict[str, Any]], registry: BundleRegistry) -> Any:
    async def config_route(request: Request) -> Response:
        return JSONResponse(configs[request.path_params["name"]])

    inner = Starlette(routes=[*registry.routes(), Route("/bench-config/{name}", config_route), *static_mounts(),
                              Mount("/bench-pages", app=StaticFiles(directory=PAGES))])

    async def isolated(scope, receive, send):
        # Cross-origin isolation gives performance.now() 5 us resolution instead of 100 us.
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"cross-origin-opener-policy", b"same-origin"),
                                      (b"cross-origin-embedder-policy", b"require-corp")]
            await send(message)

        await inner(scope, receive, send_with_headers)

    return isolated


def scene_configs(tmp: Path) -> tuple[dict[str, dict[str, Any]], BundleRegistry]:
    """Two scenes: human + ONNX partner ("onnx"), and human + scripted Python partner ("python")."""
    inputs = len(gatherers.obs_vector(gatherers.make_env().reset(0)[0]["agent_0"]))
    policy = OnnxPolicy(build_mlp(tmp / "mlp.onnx", inputs), obs_to_input=gatherers.obs_vector, sample=True)
    registry = BundleRegistry()
    configs = {}
    width, height = gatherers.canvas_size()
    keys = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)
    for name, partner in (("onnx", policy), ("python", gatherers.greedy_policy)):
        mapping = {"agent_0": "human", "agent_1": partner}
        bundle = build_browser_bundle(name, env_creator=gatherers.make_env, render_fn=gatherers.render,
                                      policy_mapping=mapping)
        registry.add(bundle)
        configs[name] = browser_scene_config(
            scene_id=name, bundle=bundle, manifest_url=registry.manifest_url(bundle),
            env_creator=gatherers.make_env, render_fn=gatherers.render, policy_mapping=mapping,
            agent_order=gatherers.make_env().possible_agents, controls=keys,
            fps=30, num_episodes=1, max_steps=600, width=width, height=height, seeds=[1])
    return configs, registry


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lock = json.loads((find_node_modules() / "pyodide" / "package.json").read_text())
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "load_average_1m_at_start": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "pyodide": lock.get("version")}


def run_page(browser: Any, url: str, timeout_ms: int = 120_000) -> dict[str, Any]:
    context = browser.new_context()  # fresh context: empty HTTP cache (a "cold" visit)
    try:
        page = context.new_page()
        page.goto(url)
        page.wait_for_function("window.result !== undefined", timeout=timeout_ms)
        result = page.evaluate("window.result")
    finally:
        context.close()
    if "error" in result:
        raise RuntimeError(f"{url}: {result['error']}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of the first-frame measurements")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        configs, registry = scene_configs(Path(tmp))
        server = uvicorn.Server(uvicorn.Config(make_app(configs, registry), host="127.0.0.1", port=0,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        page = f"http://127.0.0.1:{port}/bench-pages/bench_browser.html"
        base = f"{page}?config=/bench-config/onnx"
        python_base = f"{page}?config=/bench-config/python"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            cold_runs = [run_page(browser, f"{base}&mode=cold") for _ in range(args.runs)]
            cold = [r["firstFrameMs"] for r in cold_runs]
            cold_python = [run_page(browser, f"{python_base}&mode=cold")["firstFrameMs"] for _ in range(args.runs)]
            baseline = [run_page(browser, f"{base}&mode=baseline")["pyodideReadyMs"] for _ in range(args.runs)]
            warm = [run_page(browser, f"{base}&mode=preloaded&read_ms=3000") for _ in range(args.runs)]
            loop = run_page(browser, f"{base}&mode=loop&frames={args.frames}")
            worker = run_page(browser, f"{base}&mode=worker&frames={args.frames}")
            chromium = browser.version
            browser.close()
        server.should_exit = True
        thread.join(timeout=10)
    report = {
        "machine": {**machine(), "chromium": chromium},
        "cold_first_frame_ms": {
            "median": statistics.median(cold), "runs": cold,
            "parts_ms": [{k: round(r["stats"].get(k, 0)) for k in ("runtimeMs", "rendererMs", "agentsMs")}
                         for r in cold_runs],
        },
        "cold_first_frame_python_partner_ms": {"median": statistics.median(cold_python), "runs": cold_python},
        "bare_pyodide_load_ms": {"median": statistics.median(baseline), "runs": baseline},
        "preloaded_first_frame_ms": {"median": statistics.median(w["firstFrameAfterStartMs"] for w in warm),
                                     "runs": [w["firstFrameAfterStartMs"] for w in warm],
                                     "preload_ms": [w["preloadMs"] for w in warm]},
        "loop": loop,
        "worker": worker,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
