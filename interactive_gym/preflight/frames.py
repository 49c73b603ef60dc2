"""Plays the first few frames of a game scene where it will really run, and describes any failure.

The very same file runs in CPython (server mode) and inside Pyodide (browser and p2p modes, next to the
exact bundle the page gets). It builds the real hosts (``BrowserGameHost``, ``P2PGameHost``; server mode's
``ServerGame`` is driven by ``runner.py`` with :class:`Stage` and :func:`describe_failure` from here), resets, and steps a few times with default or sampled actions, so
the environment, the render function and every policy run at least once before a participant arrives.

A failure is described as a plain dict (JSON-ready, it crosses from Node to the server): which function
raised (the outermost researcher function on the traceback, found by code object), at which stage, the
exception, a missing module if any, and the traceback's last lines. Standard library only at module level
(browser modules are imported inside the functions, after the bundle is installed).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Mapping
from types import CodeType
from typing import Any

PREFLIGHT_STEPS = 3
TRACEBACK_LINES = 8
MAX_P2P_TICKS = 600  # 20 s of game time at 30 fps: peers that never synchronise are a failure, not a hang


class Stage:
    """The stage being run and the functions worth naming if something raises (code object -> label)."""

    def __init__(self) -> None:
        self.name = "starting"
        self.named: dict[CodeType, str] = {}

    def name_function(self, fn: Any, label: str) -> None:
        code = getattr(getattr(fn, "__func__", fn), "__code__", None)
        if isinstance(code, CodeType):
            self.named.setdefault(code, label)

    def name_env_methods(self, env: Any) -> None:
        for method in ("reset", "step", "action_space"):
            self.name_function(getattr(type(env), method, None), f"env.{method}")


def _missing_module(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ModuleNotFoundError) and current.name:
            return current.name.split(".")[0]
        current = current.__cause__ or current.__context__
    return None


def describe_failure(exc: BaseException, stage: Stage) -> dict[str, Any]:
    """The JSON-ready description of ``exc`` raised during ``stage``."""
    function = None
    tb = exc.__traceback__
    while tb is not None:  # outermost first: the researcher function the host was calling
        label = stage.named.get(tb.tb_frame.f_code)
        if label is not None:
            function = label
            break
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip().splitlines()
    return {
        "ok": False,
        "stage": stage.name,
        "function": function,
        "error_type": type(exc).__name__,
        "error": str(exc),
        "missing_module": _missing_module(exc),
        "traceback_tail": text[-TRACEBACK_LINES:],
    }


def _refs(config: Mapping[str, Any]) -> list[tuple[str, str]]:
    bundle = config["bundle"]
    refs = [("env_creator", bundle["factory"]), ("render_fn", bundle["render"])]
    for agent, spec in config["agents"].items():
        if spec.get("kind") == "python":
            refs.append((f"policy of {agent!r}", spec["ref"]))
        elif spec.get("kind") == "onnx":
            refs.append((f"obs_to_input of {agent!r}", spec["obs_to_input"]))
    return refs


def _import_refs(config: Mapping[str, Any], stage: Stage) -> None:
    from interactive_gym.browser.refs import resolve_ref

    for what, ref in _refs(config):
        stage.name = f"importing {ref.split(':')[0]} (for {what})"
        stage.name_function(resolve_ref(ref), f"{what} {ref}")


def run_browser_scene(config: Mapping[str, Any], steps: int = PREFLIGHT_STEPS) -> dict[str, Any]:
    """Browser mode: builds ``BrowserGameHost`` from the page's config, resets and plays ``steps`` frames.

    ONNX agents get their observation input computed (``obs_to_input`` runs) and play action 0: the network
    itself runs in onnxruntime-web, outside Python.
    """
    stage = Stage()
    try:
        _import_refs(config, stage)
        from interactive_gym.browser.host import BrowserGameHost

        stage.name = "building the environment"
        host = BrowserGameHost.from_config(config)
        stage.name_env_methods(host._base_env)
        stage.name = "the first frame (env.reset and render_fn)"
        host.reset(int(config["seeds"][0]))
        played = 0
        for step in range(steps):
            stage.name = f"step {step + 1} (policies, env.step and render_fn)"
            for agent in host.onnx_agents:
                if host.onnx_due(agent):
                    host.observation_input(agent)
                    host.set_external_action(agent, 0)
            host.frame("")
            played += 1
            if host.episode_over:
                break
        return {"ok": True, "frames": played}
    except Exception as exc:  # noqa: BLE001 - every failure is described for the researcher
        return describe_failure(exc, stage)


def run_p2p_scene(config: Mapping[str, Any], steps: int = PREFLIGHT_STEPS) -> dict[str, Any]:
    """p2p mode: every player's ``P2PGameHost`` in this interpreter, packets passed in memory, until every
    peer has confirmed ``steps`` frames; then one save/load/checksum round trip of the simulation."""
    stage = Stage()
    try:
        _import_refs(config, stage)
        from interactive_gym.browser.p2p_host import P2PGameHost

        stage.name = "building the environment and input codecs"
        players = int(config["p2p"]["num_players"])
        hosts = [P2PGameHost.from_config(config, p, now_ms=0.0, isolate_global_random=True) for p in range(players)]
        stage.name_env_methods(hosts[0]._base_env)
        for host in hosts:
            host.start(0.0)
        period = 1000.0 / float(config.get("fps", 30))
        now = 0.0
        for tick in range(MAX_P2P_TICKS):
            now += period
            stage.name = f"p2p tick {tick + 1} (policies, env.step and render_fn)"
            for player, host in enumerate(hosts):
                outcome = json.loads(host.tick(now, ""))
                for peer, packet in outcome["out"]:
                    hosts[int(peer)].receive(player, packet)
            if all(h.session.confirmed_frame >= steps for h in hosts) or all(h.done for h in hosts):
                break
        else:
            raise RuntimeError(f"the peers did not confirm {steps} frames in {MAX_P2P_TICKS} ticks")
        stage.name = "saving, loading and checksumming the simulation (rollback)"
        sim = hosts[0].sim
        state = sim.save_state()
        sim.checksum(state)
        sim.load_state(state)
        return {"ok": True, "frames": min(h.session.confirmed_frame for h in hosts)}
    except Exception as exc:  # noqa: BLE001 - every failure is described for the researcher
        return describe_failure(exc, stage)


def run_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """One browser or p2p scene of a Pyodide preflight job (``{"mode", "config", "steps"}``), timed."""
    started = time.perf_counter()
    runner = run_p2p_scene if job["mode"] == "p2p" else run_browser_scene
    result = runner(job["config"], int(job.get("steps", PREFLIGHT_STEPS)))
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def run_job_json(text: str) -> str:
    """:func:`run_job` over JSON text (what the Node script passes)."""
    return json.dumps(run_job(json.loads(text)))
