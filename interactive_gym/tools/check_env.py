"""``interactive-gym check-env module:factory``: is this environment safe for rollback netcode?

Builds the environment from its factory and runs the determinism checks of :mod:`interactive_gym.envs.checks`
(sync test, two instances, snapshot independence, and Gymnasium's checker for Gymnasium envs) in this process, then
the same game in separate CPython processes under other ``PYTHONHASHSEED`` values (and, with ``--pyodide``, in
Pyodide in Node), compared frame by frame. Prints one line per check and a verdict; exit code 0 when everything
passed, 1 when a check failed, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

from interactive_gym.cli import UserError
from interactive_gym.envs.checks import (
    HASH_ORDER_CAUSE,
    PYODIDE_CAUSES,
    CheckResult,
    EnvCheckReport,
    check_environment,
    compare_runs,
)
from interactive_gym.envs.determinism import CHECK_HASH_SEEDS, PYTHON_HASH_SEED
from interactive_gym.envs.factory import FactoryError, env_builder
from interactive_gym.envs.trace import TraceRequest, TraceResult
from interactive_gym.tools.env_runs import cpython_run, failed_result, pyodide_files, pyodide_run

MAX_PROCESS_FRAMES = 500

CHECKLIST = """\
Determinism checklist for rollback netcode:
  - keep every random number generator in the state (seed it in reset(seed=...); include rng.getstate()
    in get_state()); never use an unseeded Random() or the OS entropy;
  - never read the wall clock (time.time, perf_counter, datetime) inside step();
  - no hidden globals: everything step() reads or writes lives on the env and in get_state();
  - never iterate a set of strings (or use hash()) where the order matters: sort it first;
  - fixed step: one step() is one frame, whatever the frame rate;
  - rendering is separate from stepping and never changes the state;
  - get_state() returns copies, and set_state() copies what it takes."""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers ``check-env``."""
    parser = subparsers.add_parser(
        "check-env",
        help="check that an environment is deterministic enough for rollback (p2p) mode",
        description="Builds the environment from module:factory and checks that it re-simulates identically "
        "after rollbacks (sync test), that two instances stay identical, that snapshots are independent copies, "
        "and (for Gymnasium envs) Gymnasium's own env checker; then that separate processes with other hash seeds "
        "(and, with --pyodide, Pyodide) play the same game identically.",
    )
    parser.add_argument("target", help="module:factory, e.g. examples.demo.gatherers:make_env")
    parser.add_argument("--kwargs", help="JSON object of keyword arguments for the factory")
    parser.add_argument("--frames", type=int, default=2000, help="frames of the sync test (default 2000)")
    parser.add_argument("--check-distance", type=int, default=7,
                        help="frames rolled back every frame in the sync test, 1..60 (default 7)")
    parser.add_argument("--seed", type=int, default=0, help="seed for resets and random inputs (default 0)")
    parser.add_argument("--pyodide", action="store_true",
                        help="also run the game in Pyodide (needs node and node_modules/pyodide) and compare it "
                        "frame by frame with CPython")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


def _label(hash_seed: str, runtime: str = "CPython") -> str:
    return f"{runtime} (PYTHONHASHSEED={hash_seed})"


def _reference_state(request: TraceRequest, other: TraceResult) -> dict[str, str] | None:
    """The reference's state at the frame where ``other`` first differed (a second, shorter reference run)."""
    if other["error"] or other["mismatch"] is None:
        return None
    return cpython_run(TraceRequest(**request, state_at=other["mismatch"]), PYTHON_HASH_SEED)["state"]


def _first_to_differ(runs: list[tuple[str, TraceResult]]) -> tuple[str, TraceResult]:
    """The run that failed, else the one that differed earliest, else the first."""
    def rank(item: tuple[str, TraceResult]) -> tuple[bool, int]:
        mismatch = item[1]["mismatch"]
        return item[1]["error"] is None, mismatch if mismatch is not None else MAX_PROCESS_FRAMES + 1
    return min(runs, key=rank)


def process_checks(
    target: str, kwargs: str | None, frames: int, seed: int, *, pyodide: bool, in_process_ok: bool
) -> list[CheckResult]:
    """The same game in other interpreters, compared frame by frame with CPython under the peers' hash seed.

    Args:
        target: ``module:factory``, importable here.
        kwargs: The factory's ``--kwargs`` JSON.
        frames: Frames to play (at most :data:`MAX_PROCESS_FRAMES`).
        seed: Seed for resets and inputs.
        pyodide: Also compare Pyodide in Node.
        in_process_ok: Whether the in-process checks passed; if not, a difference here is blamed on them.
    """
    request = TraceRequest(target=target, kwargs=kwargs, frames=min(frames, MAX_PROCESS_FRAMES), seed=seed,
                           sys_path=[p for p in [os.getcwd(), *sys.path] if p])
    reference = cpython_run(request, PYTHON_HASH_SEED)
    compare = TraceRequest(**request, reference=reference["checksums"])
    fix_first = ["the checks in one process already differ: fix those first"]
    ref_label = _label(PYTHON_HASH_SEED)

    with ThreadPoolExecutor(max_workers=len(CHECK_HASH_SEEDS)) as pool:
        others = list(pool.map(lambda s: (s, cpython_run(compare, s)), CHECK_HASH_SEEDS))
    seed_used, other = _first_to_differ(others)
    name = f"other hash seeds ({request['frames']} frames, PYTHONHASHSEED={PYTHON_HASH_SEED} vs "
    name += ", ".join(CHECK_HASH_SEEDS) + ")"
    results = [compare_runs(name, (ref_label, _label(seed_used)), reference, other,
                            _reference_state(request, other), [HASH_ORDER_CAUSE] if in_process_ok else fix_first)]
    if pyodide:
        label = _label(PYTHON_HASH_SEED, "Pyodide")
        try:
            from interactive_gym.server.static_files import VendorMissingError, find_node_modules

            in_browser = pyodide_run(compare, pyodide_files(target), find_node_modules())
        except (VendorMissingError, ValueError) as exc:  # BundleError and FactoryError are ValueErrors
            in_browser = failed_result(label, str(exc))
        results.append(compare_runs(f"Pyodide ({request['frames']} frames, compared with CPython)",
                                    (ref_label, label), reference, in_browser, _reference_state(request, in_browser),
                                    list(PYODIDE_CAUSES) if in_process_ok else fix_first))
    return results


def check_target(
    target: str, kwargs: str | None = None, frames: int = 2000, check_distance: int = 7, seed: int = 0, *,
    pyodide: bool = False, build: Callable[[], Any] | None = None,
) -> EnvCheckReport:
    """Every check of ``check-env`` on ``module:factory``: in this process, then across processes.

    Raises:
        FactoryError: when the factory cannot be imported or called.
    """
    build = build or env_builder(target, kwargs)
    report = check_environment(build, target, frames, check_distance, seed)
    if report.results and report.results[0].passed:  # the state adapter works, so the env can be traced
        report.results.extend(process_checks(target, kwargs, frames, seed, pyodide=pyodide,
                                             in_process_ok=report.passed))
    return report


def run(args: argparse.Namespace) -> int:
    """Runs the checks and prints the verdict; returns the exit code."""
    if args.frames < 1:
        raise UserError("--frames must be at least 1")
    if not 1 <= args.check_distance <= 60:
        raise UserError("--check-distance must be between 1 and 60")
    try:
        build = env_builder(args.target, args.kwargs)
    except FactoryError as exc:
        raise UserError(str(exc)) from exc
    report = check_target(args.target, args.kwargs, args.frames, args.check_distance, args.seed,
                          pyodide=args.pyodide, build=build)
    if args.json:
        print(json.dumps({"target": report.target, "passed": report.passed,
                          "checks": [asdict(r) for r in report.results]}, indent=2))
        return 0 if report.passed else 1
    print(f"check-env {args.target}")
    for result in report.results:
        mark = "PASS" if result.passed else "FAIL"
        print(f"  [{mark}] {result.name}: {result.summary}")
        for line in result.details:
            print(f"         {line}")
    if report.passed:
        print("verdict: OK - deterministic under rollback; ready for peer-to-peer mode.")
        return 0
    print("verdict: NOT READY - this environment would desync peers in peer-to-peer mode.")
    print(CHECKLIST)
    return 1
