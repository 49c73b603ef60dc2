"""``interactive-gym replay <db> --participant P --episode E``: does a recorded episode reproduce?

Reads the episode from the experiment database, imports its environment factory (recorded in the episode's
meta as ``"module:function"`` with its kwargs), re-runs the recorded actions from the recorded seed in
CPython and reports whether every observation, reward, termination and truncation matches. Exit code 0:
reproduced; 1: mismatches (listed); 2: a usage problem (no such episode, factory not importable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from interactive_gym.cli import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-run a recorded episode and check that it reproduces",
        description="Re-runs the recorded actions of one episode through its environment (from the recorded "
                    "seed) and checks every recorded observation, reward, termination and truncation.",
    )
    parser.add_argument("db", help="the experiment's SQLite database")
    parser.add_argument("--participant", required=True, help="participant id")
    parser.add_argument("--episode", required=True, type=int, help="episode number within the scene (0-based)")
    parser.add_argument("--scene", help="scene id (needed if the participant played several game scenes)")
    parser.add_argument("--experiment", help="the experiment's Python file (its folder is searched for the "
                                             "environment's modules); default: the current directory")
    parser.set_defaults(func=run)


def _participant_of(row: Any, participant: str) -> bool:
    agents = row.agents if isinstance(row.agents, dict) else {}
    return participant in (row.source, row.game_id) or participant in agents.values()


def find_episode(storage: Any, participant: str, episode: int, scene: str | None) -> Any:
    """The one stored episode of ``participant`` numbered ``episode`` (in ``scene`` if given)."""
    matches = [
        row for row in storage.episodes()
        if row.episode == episode and _participant_of(row, participant) and (scene is None or row.scene_id == scene)
    ]
    if not matches:
        raise UserError(f"no episode {episode} of participant {participant!r}"
                        + (f" in scene {scene!r}" if scene else "") + " in the database")
    scenes = sorted({row.scene_id for row in matches})
    if len(scenes) > 1:
        raise UserError(f"participant {participant!r} has episode {episode} in scenes {scenes}; pass --scene")
    return matches[-1]


def _prepare_imports(experiment: str | None) -> None:
    if experiment:
        from interactive_gym.experiment_loader import ExperimentFileError, load_experiment

        try:
            load_experiment(experiment)
        except ExperimentFileError as exc:
            raise UserError(str(exc)) from None
    elif str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))


def run(args: argparse.Namespace) -> int:
    from interactive_gym.browser.refs import RefError, resolve_ref
    from interactive_gym.browser.replay import replay_episode
    from interactive_gym.server.storage import Storage, StorageError

    if not Path(args.db).is_file():
        raise UserError(f"database not found: {args.db}")
    try:
        with Storage(args.db, readonly=True) as storage:
            row = find_episode(storage, args.participant, args.episode, args.scene)
            steps = storage.steps(row.id)
    except StorageError as exc:
        raise UserError(f"cannot read {args.db}: {exc}") from None
    factory_ref = row.meta.get("factory")
    if not factory_ref:
        raise UserError(f"episode {args.episode} ({row.mode} mode) has no recorded environment factory; "
                        "only episodes recorded with their factory reference can be replayed")
    if row.seed is None:
        raise UserError(f"episode {args.episode} has no recorded seed, so it cannot be replayed")
    _prepare_imports(args.experiment)
    try:
        factory = resolve_ref(factory_ref)
    except RefError as exc:
        raise UserError(f"{exc} (pass --experiment path/to/experiment.py)") from None
    rows = [
        {"t": s.t, "observation": s.observation, "actions": s.actions, "rewards": s.rewards,
         "terminated": s.terminated, "truncated": s.truncated}
        for s in steps
    ]
    report = replay_episode(factory, row.meta.get("env_kwargs") or {}, row.seed, rows,
                            max_steps=row.meta.get("max_steps"))
    status = f" [{row.status}]" if row.status != "complete" else ""
    print(f"{row.scene_id} episode {row.episode} of {args.participant} (seed {row.seed}, {factory_ref}){status}")
    print(report.summary())
    return 0 if report.ok else 1
