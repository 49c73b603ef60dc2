"""Determinism checks for environments used with rollback netcode (what ``interactive-gym check-env`` runs).

* **sync test**: every frame, roll back ``check_distance`` frames and re-simulate; states must match bit for bit
  (catches wall clocks, hidden globals, and state the snapshot misses);
* **two instances**: two freshly built envs given the same seed and inputs must stay identical (catches RNGs
  seeded from the OS, per-instance randomness, anything that differs between two browsers);
* **snapshots**: a saved snapshot must not change while the game continues, and loading it must restore exactly
  the saved state (catches ``get_state`` returning live references and ``set_state`` keeping them);
* **gymnasium**: Gymnasium's own ``check_env`` for single-agent Gymnasium environments;
* **across processes** (:func:`compare_runs`, run by ``check-env`` itself): the same trace in separate
  interpreters, CPython under other ``PYTHONHASHSEED`` values and Pyodide, must match frame by frame
  (catches iteration over sets or dicts of ``str``, ``hash()``, and CPython/Pyodide differences).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from interactive_gym.netcode.checksum import describe_difference
from interactive_gym.netcode.requests import AdvanceFrame, LoadState, SaveState
from interactive_gym.netcode.sync_test import SyncTestMismatchError, SyncTestSession

from .state import EnvStateAdapter
from .trace import SeededInputs, TraceResult, state_difference

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class CheckResult:
    """One check: its name, whether it passed, a one-line summary and optional detail lines."""

    name: str
    passed: bool
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass
class EnvCheckReport:
    """All checks of one environment."""

    target: str
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(r.passed for r in self.results)


def run_sync_test(adapter: EnvStateAdapter, frames: int, check_distance: int, seed: int = 0) -> CheckResult:
    """Runs a :class:`SyncTestSession` on ``adapter`` for ``frames`` frames with random inputs."""
    name = f"sync test ({frames} frames, rolling back {check_distance} every frame)"
    session = SyncTestSession(len(adapter.agents), adapter.input_size, check_distance)
    inputs = SeededInputs(adapter, seed, 0.3)
    try:
        for _ in range(frames):
            for player, data in enumerate(inputs.next()):
                session.add_input(player, data)
            for request in session.advance_frame():
                if isinstance(request, AdvanceFrame):
                    adapter.advance(request.frame, request.inputs)
                elif isinstance(request, SaveState):
                    state = adapter.save_state()
                    request.cell.save(request.frame, state, adapter.checksum(state))
                elif isinstance(request, LoadState):
                    adapter.load_state(request.cell.state)
        session.verify()
    except SyncTestMismatchError as exc:
        details = [f"first bad frame: {exc.frame} (stepping frame {exc.frame - 1} again gave a different state)"]
        details.append("differences (first simulation != after rollback):")
        details.extend("  " + line for line in describe_difference(exc.original_state, exc.resimulated_state))
        return CheckResult(name, False, f"state of frame {exc.frame} changed after rollback and re-simulation",
                           details)
    except Exception as exc:  # the env itself failed; report it rather than crash the checker
        return CheckResult(name, False, f"the environment raised near frame {session.current_frame}: {type(exc).__name__}: {exc}")
    return CheckResult(name, True, f"{session.frames_checked} re-simulated states matched")


def check_two_instances(build: Callable[[], Any], frames: int, seed: int = 0) -> CheckResult:
    """Steps two fresh instances with the same seed and inputs and compares their states every frame."""
    name = f"two instances ({frames} frames, same seed and inputs)"
    try:
        first = EnvStateAdapter(build(), seed=seed, isolate_global_random=True)
        second = EnvStateAdapter(build(), seed=seed, isolate_global_random=True)
        inputs = SeededInputs(first, seed + 1, 0.3)
        for frame in range(frames + 1):
            a, b = first.save_state(), second.save_state()
            if first.checksum(a) != second.checksum(b):
                details = [f"first difference in the state of frame {frame}:"]
                details.extend("  " + line for line in describe_difference(a, b))
                return CheckResult(name, False, f"two instances diverged at frame {frame}", details)
            if frame < frames:
                step = inputs.next()
                first.advance(frame, step)
                second.advance(frame, step)
    except Exception as exc:
        return CheckResult(name, False, f"the environment raised: {type(exc).__name__}: {exc}")
    return CheckResult(name, True, "identical at every frame")


def check_snapshots(build: Callable[[], Any], seed: int = 0, frames: int = 30) -> CheckResult:
    """Checks that snapshots are independent of the live env, and that loading restores them exactly."""
    name = "snapshots are independent copies"
    try:
        adapter = EnvStateAdapter(build(), seed=seed)
        inputs = SeededInputs(adapter, seed + 2, 0.5)
        for frame in range(5):
            adapter.advance(frame, inputs.next())
        saved = adapter.save_state()
        before = adapter.checksum(saved)
        for frame in range(5, 5 + frames):
            adapter.advance(frame, inputs.next())
        if adapter.checksum(saved) != before:
            return CheckResult(name, False, "a saved snapshot changed while the game went on",
                               ["get_state() must return copies (e.g. list(...), dict(...)), not live references"])
        adapter.load_state(saved)
        restored = adapter.save_state()
        if adapter.checksum(restored) != before:
            details = ["differences (saved != after load):"]
            details.extend("  " + line for line in describe_difference(saved, restored))
            return CheckResult(name, False, "loading a snapshot did not restore the saved state", details)
        for frame in range(5, 5 + frames):
            adapter.advance(frame, inputs.next())
        if adapter.checksum(saved) != before:
            return CheckResult(name, False, "a snapshot changed after it was loaded and the game went on",
                               ["set_state() must copy what it takes from the snapshot, not keep references"])
    except Exception as exc:
        return CheckResult(name, False, f"the environment raised: {type(exc).__name__}: {exc}")
    return CheckResult(name, True, "saved snapshots stay unchanged and load exactly")


def check_gymnasium(build: Callable[[], Any]) -> CheckResult | None:
    """Gymnasium's ``check_env`` for single-agent Gymnasium envs; ``None`` when it does not apply."""
    try:
        import gymnasium
        from gymnasium.utils.env_checker import check_env
    except ImportError:
        return None
    env = build()
    if not isinstance(env, gymnasium.Env):
        return None
    name = "gymnasium env checker"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            check_env(env.unwrapped, skip_render_check=True)
        except Exception as exc:
            return CheckResult(name, False, f"{type(exc).__name__}: {exc}")
    notes = sorted({_ANSI.sub("", str(w.message)).splitlines()[0] for w in caught})
    summary = "passed" + (f" with {len(notes)} warning(s)" if notes else "")
    return CheckResult(name, True, summary, [f"warning: {n}" for n in notes])


# What usually makes one env differ between processes when it agrees with itself inside one.
HASH_ORDER_CAUSE = (
    "likely cause: iterating over a set (or a dict filled from one) of str or bytes, or using hash(): their order "
    "follows the interpreter's per-process hash seed (and str hashes are 32-bit in Pyodide, 64-bit in CPython). "
    "Iterate sorted(...) instead, or keep a list or a dict filled in a fixed order."
)
PYODIDE_CAUSES = (
    HASH_ORDER_CAUSE,
    "other causes seen between CPython and Pyodide: math functions returning a different last bit, numpy's "
    "default integer being 32-bit in the browser, different versions of a package.",
)


def compare_runs(
    name: str,
    labels: tuple[str, str],
    reference: TraceResult,
    other: TraceResult,
    reference_state: dict[str, str] | None,
    causes: Sequence[str],
) -> CheckResult:
    """The verdict on two traces of the same game in separate interpreters.

    Args:
        name: The check's name.
        labels: How to call the reference and the other interpreter in the report.
        reference: The reference trace.
        other: The other trace, run with ``reference=`` the reference checksums (it stops at the first difference).
        reference_state: The reference's state at ``other["mismatch"]`` (``run_trace(..., state_at=f)``), if any.
        causes: Lines naming the likely causes, printed when the traces differ.
    """
    for label, run in zip(labels, (reference, other), strict=True):
        if run["error"]:
            return CheckResult(name, False, f"the environment failed in {label}: {run['error']}")
    frame = other["mismatch"]
    if frame is None:
        return CheckResult(name, True, f"identical at every frame ({len(other['checksums'])} states)")
    when = "right after reset" if frame == 0 else f"after stepping frame {frame - 1}"
    details = [f"first difference in the state of frame {frame} ({when}), {labels[0]} != {labels[1]}:"]
    details.extend("  " + line for line in state_difference(reference_state or {}, other["state"] or {}))
    details.extend(causes)
    return CheckResult(name, False, f"{labels[0]} and {labels[1]} diverged at frame {frame}", details)


def check_environment(
    build: Callable[[], Any], target: str = "env", frames: int = 2000, check_distance: int = 7, seed: int = 0
) -> EnvCheckReport:
    """Runs every check on environments made by ``build`` (called once per check for fresh instances)."""
    results: list[CheckResult] = []
    try:
        adapter = EnvStateAdapter(build(), seed=seed)
    except Exception as exc:
        results.append(CheckResult("state adapter", False, f"{type(exc).__name__}: {exc}"))
        return EnvCheckReport(target, results)
    mode = "get_state()/set_state()" if adapter.has_state_api else "deep copy of the env object"
    kind = f"{len(adapter.agents)} agent(s)" + ("" if adapter.multi_agent else " (single-agent env)")
    results.append(CheckResult("state adapter", True, f"{kind}, input {adapter.input_size} byte(s), state via {mode}"))
    gym_result = check_gymnasium(build)
    if gym_result is not None:
        results.append(gym_result)
    results.append(check_snapshots(build, seed))
    results.append(check_two_instances(build, min(frames, 500), seed))
    results.append(run_sync_test(adapter, frames, check_distance, seed))
    return EnvCheckReport(target, results)
