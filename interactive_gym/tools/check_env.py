"""``interactive-gym check-env module:factory``: is this environment safe for rollback netcode?

Builds the environment from its factory and runs the determinism checks of :mod:`interactive_gym.envs.checks`
(sync test, two instances, snapshot independence, and Gymnasium's checker for Gymnasium envs). Prints one line per
check and a verdict; exit code 0 when everything passed, 1 when a check failed, 2 for a usage problem.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from interactive_gym.cli import UserError
from interactive_gym.envs.checks import check_environment
from interactive_gym.envs.factory import FactoryError, env_builder

CHECKLIST = """\
Determinism checklist for rollback netcode:
  - keep every random number generator in the state (seed it in reset(seed=...); include rng.getstate()
    in get_state()); never use an unseeded Random() or the OS entropy;
  - never read the wall clock (time.time, perf_counter, datetime) inside step();
  - no hidden globals: everything step() reads or writes lives on the env and in get_state();
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
        "and (for Gymnasium envs) Gymnasium's own env checker.",
    )
    parser.add_argument("target", help="module:factory, e.g. examples.demo.gatherers:make_env")
    parser.add_argument("--kwargs", help="JSON object of keyword arguments for the factory")
    parser.add_argument("--frames", type=int, default=2000, help="frames of the sync test (default 2000)")
    parser.add_argument("--check-distance", type=int, default=7,
                        help="frames rolled back every frame in the sync test, 1..60 (default 7)")
    parser.add_argument("--seed", type=int, default=0, help="seed for resets and random inputs (default 0)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run)


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
    report = check_environment(build, args.target, args.frames, args.check_distance, args.seed)
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
