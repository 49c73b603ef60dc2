"""Runs the preflight of a whole experiment: server scenes in CPython, browser/p2p scenes in Pyodide (Node).

Called after ``RemoteConfig.validate()`` (the scenes are checked, their facts known). Browser and p2p scenes
get exactly what their page gets: the bundle and the scene config from ``BrowserScenes`` (the server's own),
the p2p block from ``p2p_config.p2p_block``; all of them run in one Node process so Pyodide starts once.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interactive_gym.preflight import frames
from interactive_gym.preflight.hints import SELF_HOSTED_INDEX, Where, failure_message

NODE_SCRIPT = Path(__file__).with_name("pyodide_preflight.mjs")
NODE_TIMEOUT_S = 300


class PreflightError(Exception):
    """At least one scene failed its first frames; ``str()`` is the start-up message."""

    def __init__(self, report: PreflightReport) -> None:
        super().__init__("\n".join(r.message for r in report.results if r.message))
        self.report = report


@dataclass(frozen=True)
class SceneResult:
    """One scene's preflight: where it ran, how long it took, and the message if it failed."""

    scene_id: str
    mode: str
    runtime: str
    ms: float
    ok: bool
    message: str | None = None


@dataclass(frozen=True)
class PreflightReport:
    results: tuple[SceneResult, ...]
    pyodide_start_ms: float | None = None
    total_ms: float = 0.0
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def summary(self) -> str:
        """One line per scene, for the start-up log."""
        lines = [f"preflight: {r.scene_id} ({r.mode}, {r.runtime}) {'ok' if r.ok else 'FAILED'} in {r.ms:.0f} ms"
                 for r in self.results]
        if self.pyodide_start_ms is not None:
            lines.append(f"preflight: Pyodide started in {self.pyodide_start_ms:.0f} ms (once for all scenes)")
        lines.append(f"preflight: {self.total_ms:.0f} ms in total")
        return "\n".join(lines)


def _pyodide_dir() -> Path:
    from interactive_gym.server.static_files import find_node_modules

    return find_node_modules() / "pyodide"


def _lock_info(pyodide_dir: Path) -> tuple[set[str], str]:
    lock = json.loads((pyodide_dir / "pyodide-lock.json").read_text(encoding="utf-8"))
    version = json.loads((pyodide_dir / "package.json").read_text(encoding="utf-8")).get("version", "")
    return set(lock.get("packages", {})), version


def _page_config(browser: Any, scene: Any) -> dict[str, Any]:
    """The scene config the page gets: ``BrowserScenes.scene_config`` with the seeds of game 0, and for p2p the
    block ``P2PMode.scene_config`` adds for a game of every human player (``p2p_config.p2p_block``)."""
    from interactive_gym.browser.p2p_config import p2p_block

    seeds = [scene.episode_seed(0, e) for e in range(scene.num_episodes)]
    page: dict[str, Any] = browser.scene_config(scene, seeds, mode=scene.mode)
    if scene.mode == "p2p":
        page["p2p"] = p2p_block(scene, len(scene.facts.humans))
    return page


def run_server_scene(scene: Any, steps: int = frames.PREFLIGHT_STEPS) -> dict[str, Any]:
    """Server mode (CPython): the server's own ``ServerGame`` plays ``steps`` ticks; humans hold no key."""
    from interactive_gym.envs.multiagent import base_env
    from interactive_gym.server.remote_game import ServerGame

    stage = frames.Stage()
    stage.name_function(scene.env_creator, "env_creator")
    stage.name_function(scene.render_fn, "render_fn")
    for agent, policy in scene.policy_mapping.items():
        stage.name_function(getattr(policy, "fn", policy), f"policy of {agent!r}")
    try:
        stage.name = "building the environment"
        game = ServerGame("preflight", scene, {h: "preflight" for h in scene.facts.humans}, 0)
        stage.name_env_methods(base_env(game.env))
        stage.name = "the first frame (env.reset and render_fn)"
        game.start_episode()
        played = 0
        for step in range(steps):
            stage.name = f"step {step + 1} (policies, env.step and render_fn)"
            outcome = game.tick()
            played += 1
            if outcome.episode_done:
                break
        return {"ok": True, "frames": played}
    except Exception as exc:  # noqa: BLE001 - every failure is described for the researcher
        return frames.describe_failure(exc, stage)


def run_pyodide_jobs(jobs: list[dict[str, Any]], pyodide_dir: Path, env: dict[str, str],
                     node: str | None = None) -> dict[str, Any]:
    """Runs the browser/p2p scene jobs in one Node process; returns its JSON result.

    Raises:
        RuntimeError: if Node is missing or the process fails outside the scenes.
    """
    node = node or shutil.which("node")
    if node is None:
        raise RuntimeError("node is not installed: browser and p2p scenes are checked in Pyodide under Node "
                           "(install Node 18+, then npm ci)")
    job = {"pyodide_dir": str(pyodide_dir), "env": env, "driver": Path(frames.__file__).read_text(encoding="utf-8"),
           "scenes": jobs}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=True) as handle:
        json.dump(job, handle)
        handle.flush()
        done = subprocess.run([node, str(NODE_SCRIPT), handle.name], capture_output=True, text=True,
                              timeout=NODE_TIMEOUT_S, check=False)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the Pyodide preflight (node) failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run_preflight(config: Any, *, steps: int = frames.PREFLIGHT_STEPS, node: str | None = None) -> PreflightReport:
    """Plays the first ``steps`` frames of every game scene where it runs.

    Args:
        config: A validated ``RemoteConfig``.
        steps: Steps after the reset.
        node: Path of the ``node`` executable (default: found on ``PATH``).

    Raises:
        PreflightError: if any scene failed (the message names scene, function, traceback and fix).
        ConfigError: if a browser scene cannot even be bundled.
    """
    from interactive_gym.scenes.gym_scene import GymScene
    from interactive_gym.server.browser_scenes import BrowserScenes

    started = time.perf_counter()
    scenes = [s for s in config.stager.all_scenes() if isinstance(s, GymScene)]
    results: list[SceneResult] = []
    for scene in (s for s in scenes if s.mode == "server"):
        t0 = time.perf_counter()
        outcome = run_server_scene(scene, steps)
        ms = (time.perf_counter() - t0) * 1000
        where = Where(scene.scene_id, scene.mode, "CPython")
        results.append(SceneResult(scene.scene_id, scene.mode, "CPython", round(ms, 1), outcome["ok"],
                                   None if outcome["ok"] else failure_message(outcome, where)))
    in_browser = [s for s in scenes if s.mode in ("browser", "p2p")]
    pyodide_start = None
    if in_browser:
        jobs, wheres = [], []
        browser = BrowserScenes(config)  # bundles every browser/p2p scene (ConfigError if one cannot ship)
        pyodide_dir = _pyodide_dir()
        known, version = _lock_info(pyodide_dir)
        env: dict[str, str] = {}
        for scene in in_browser:
            bundle = browser.bundle(scene)
            page = _page_config(browser, scene)
            env.update((page.get("pyodide") or {}).get("env") or {})
            files = [{"path": f.path, "b64": base64.b64encode(f.data).decode("ascii")}
                     for f in bundle.files if f.kind == "source"]
            settings = page.get("pyodide") or {}
            wheres.append(Where(scene.scene_id, scene.mode, "Pyodide", settings.get("index_url", SELF_HOSTED_INDEX),
                                tuple(settings.get("packages") or ()), known, version))
            # A custom (full) Pyodide cannot be reached from here; its packages are tried from the local one.
            jobs.append({"scene_id": scene.scene_id, "mode": scene.mode, "steps": steps, "config": page,
                         "packages": list(settings.get("packages") or []), "files": files})
        outcome = run_pyodide_jobs(jobs, pyodide_dir, env, node)
        pyodide_start = float(outcome["startup_ms"])
        for where, result in zip(wheres, outcome["scenes"], strict=True):
            results.append(SceneResult(where.scene_id, where.mode, "Pyodide", float(result.get("ms", 0.0)),
                                       bool(result["ok"]), None if result["ok"] else failure_message(result, where)))
    report = PreflightReport(tuple(results), pyodide_start, round((time.perf_counter() - started) * 1000, 1))
    if not report.ok:
        raise PreflightError(report)
    return report
