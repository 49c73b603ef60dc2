"""``interactive-gym replay <db> --participant P --episode E``: does a recorded episode reproduce?

Works for every mode. It reads the episode from the experiment database, re-runs the recorded actions of
every agent from the recorded seed in a fresh CPython process started with the browser's hash seed
(``replay_worker.py``), and reports whether every observation, reward, termination and truncation matches
(``interactive_gym/replay.py``). Where the environment comes from depends on the mode:

* browser and p2p episodes record their env factory (``"module:function"``) and kwargs in the episode's
  meta; ``--experiment`` (or the current directory) says where its module is;
* server-mode episodes record no factory: ``--experiment`` is required, and the episode's scene in it
  gives the factory, kwargs and step limit.

A p2p episode is stored once per peer (``source`` = that peer's participant id): each peer's trajectory is
replayed, and the peers' trajectories are compared with each other (``server/parity.py``).

A browser-mode episode is stored once per *attempt* (page load) of the participant's *visit* of the scene
(``scene_index``: its place in their sequence). By default the latest visit is replayed, and in it the
complete row of the latest attempt that has one (a reload replays only what was left, so that is normally the
one complete row); a visit with no complete row gives its latest attempt's partial row. ``--scene-index`` and
``--attempt`` choose another.

Exit code 0: everything reproduced (and the peers agree); 1: mismatches (listed); 2: a usage problem (no
such episode, experiment or factory not loadable). ``--json`` prints one JSON document instead of text.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from interactive_gym.cli import UserError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="re-run a recorded episode and check that it reproduces",
        description="Re-runs the recorded actions of one episode (any mode) through its environment from the "
                    "recorded seed and checks every recorded observation, reward, termination and truncation; "
                    "for p2p episodes also checks that the peers' trajectories agree.",
    )
    parser.add_argument("db", help="the experiment's database: its SQLite file or a "
                                   "postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL")
    parser.add_argument("--participant", required=True, help="participant id")
    parser.add_argument("--episode", required=True, type=int, help="episode number within the scene (0-based)")
    parser.add_argument("--scene", help="scene id (needed if the participant played several game scenes)")
    parser.add_argument("--scene-index", type=int, default=None,
                        help="browser mode: the visit (the scene's place in the participant's sequence, 0-based); "
                             "default: the latest")
    parser.add_argument("--attempt", type=int, default=None,
                        help="browser mode: the attempt (page load, from 1) of the visit; default: the latest "
                             "attempt with a complete row, else the latest")
    parser.add_argument("--experiment", help="the experiment's Python file (required for server-mode episodes; "
                                             "its folder is searched for the environment's modules); default: "
                                             "the current directory")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    parser.set_defaults(func=run)


def _participant_of(row: Any, participant: str) -> bool:
    agents = row.agents if isinstance(row.agents, dict) else {}
    return participant in (row.source, row.game_id) or participant in agents.values()


def find_episodes(storage: Any, participant: str, episode: int, scene: str | None, *,
                  scene_index: int | None = None, attempt: int | None = None) -> list[Any]:
    """The stored rows of ``participant``'s episode ``episode``: one row, or one per peer for p2p.

    Args:
        storage: An open ``Storage``.
        participant: The participant id.
        episode: Episode number within the scene.
        scene: Scene id (required when the participant has the episode in several scenes).
        scene_index: Browser mode: only this visit.
        attempt: Browser mode: only this attempt.

    Raises:
        UserError: no such episode, or it exists in several scenes and ``scene`` is not given.
    """
    matches = [
        row for row in storage.episodes()
        if row.episode == episode and _participant_of(row, participant) and (scene is None or row.scene_id == scene)
        and (scene_index is None or row.scene_index == scene_index) and (attempt is None or row.attempt == attempt)
    ]
    if not matches:
        where = "".join(f" {name} {value!r}" for name, value in (("in scene", scene), ("at scene index", scene_index),
                                                                  ("in attempt", attempt)) if value is not None)
        raise UserError(f"no episode {episode} of participant {participant!r}{where} in the database")
    scenes = sorted({row.scene_id for row in matches})
    if len(scenes) > 1:
        raise UserError(f"participant {participant!r} has episode {episode} in scenes {scenes}; pass --scene")
    return choose_rows(matches)


def choose_rows(matches: list[Any]) -> list[Any]:
    """The rows to replay among one scene's rows of one episode (in storage order, oldest first).

    Rows of browser-mode visits (with ``scene_index`` and ``attempt``): the latest visit, and in it the complete
    row of the latest attempt that has one, else the latest attempt's row. Other rows (server mode, p2p: one per
    peer): every row of the latest game.
    """
    visits = [row for row in matches if row.scene_index is not None and row.attempt is not None]
    if visits:
        latest_visit = max(row.scene_index for row in visits)
        rows = [row for row in visits if row.scene_index == latest_visit]
        complete = [row for row in rows if row.status == "complete"]
        return [max(complete or rows, key=lambda row: (row.attempt, row.id))]
    game_id = matches[-1].game_id  # the latest game, if the participant played the scene more than once
    return [row for row in matches if row.game_id == game_id]


def job_for(row: Any, steps: list[Any], experiment: str | None) -> Any:
    """The replay job of one stored episode row (any mode)."""
    from interactive_gym.replay import rows_of
    from interactive_gym.replay_worker import EnvSource, ReplayJob

    if row.seed is None:
        raise UserError(f"episode {row.episode} has no recorded seed, so it cannot be replayed")
    factory = row.meta.get("factory")
    if factory:
        source = EnvSource(factory=factory, env_kwargs=row.meta.get("env_kwargs") or {},
                           max_steps=row.meta.get("max_steps"), experiment=experiment)
    elif row.mode == "server":
        if not experiment:
            raise UserError(f"episode {row.episode} is a server-mode episode: pass --experiment path/to/experiment.py"
                            f" (its scene {row.scene_id!r} says which environment to replay)")
        source = EnvSource(experiment=experiment, scene_id=row.scene_id)
    else:
        raise UserError(f"episode {row.episode} ({row.mode} mode) has no recorded environment factory; "
                        "only episodes recorded with their factory reference can be replayed")
    return ReplayJob(source=source, seed=row.seed, steps=rows_of(steps), seed_global_random=row.mode == "p2p")


def _check_source(source: Any) -> None:
    from interactive_gym.replay_worker import EnvSourceError, resolve_env

    try:
        resolve_env(source)
    except EnvSourceError as exc:
        raise UserError(f"{exc} (pass --experiment path/to/experiment.py)") from None


def _prepare_imports(experiment: str | None) -> str | None:
    if experiment:
        if not Path(experiment).is_file():
            raise UserError(f"experiment file not found: {experiment}")
        return str(Path(experiment).resolve())
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # inherited by the replay process
    return None


def _peer_parity(rows: list[Any], steps: dict[int, list[Any]]) -> dict[str, Any] | None:
    if len(rows) < 2:
        return None
    from interactive_gym.replay import rows_of
    from interactive_gym.server.parity import compare_trajectories

    uploads = {row.source: rows_of(steps[row.id]) for row in rows}
    verdict = compare_trajectories(uploads, allow_prefix=any(row.status != "complete" for row in rows))
    return verdict.to_dict()


def run(args: argparse.Namespace) -> int:
    from interactive_gym.replay_worker import HashSeededPool, run_job
    from interactive_gym.server.storage import Storage, StorageError
    from interactive_gym.server.storage_connection import describe, location_of

    try:
        location = location_of(args.db)  # a postgresql:// URL as it is, anything else a file
    except StorageError as exc:
        raise UserError(str(exc)) from None
    if isinstance(location, Path) and not location.is_file():
        raise UserError(f"database not found: {args.db}")
    try:
        with Storage(location, readonly=True) as storage:
            rows = find_episodes(storage, args.participant, args.episode, args.scene,
                                 scene_index=args.scene_index, attempt=args.attempt)
            steps = {row.id: storage.steps(row.id) for row in rows}
    except StorageError as exc:
        raise UserError(f"cannot read {describe(location)}: {exc}") from None
    experiment = _prepare_imports(args.experiment)
    jobs = [job_for(row, steps[row.id], experiment) for row in rows]
    _check_source(jobs[0].source)  # a usage error (exit 2) here, not a crash in the replay process
    with HashSeededPool(workers=1) as pool:
        results = [pool.submit(run_job, job).result() for job in jobs]
    replays = []
    for row, result in zip(rows, results, strict=True):
        if result.verdict is None:
            raise UserError(f"{result.error} (pass --experiment path/to/experiment.py)")
        replays.append({"source": row.source, "status": row.status, "seed": row.seed,
                        "replay_s": round(result.replay_s, 4), **result.verdict.to_dict(),
                        "summary": result.verdict.summary()})
    parity = _peer_parity(rows, steps) if rows[0].mode == "p2p" else None
    match = all(r["match"] for r in replays) and (parity is None or parity["agree"])
    first = rows[0]
    report = {"scene_id": first.scene_id, "game_id": first.game_id, "episode": first.episode, "mode": first.mode,
              "scene_index": first.scene_index, "attempt": first.attempt, "participant": args.participant, "match": match, "hash_seed": results[0].hash_seed,
              "replays": replays, "peers": parity}
    print(json.dumps(report, indent=2) if args.json else _text(report))
    return 0 if match else 1


def _text(report: dict[str, Any]) -> str:
    lines = []
    for replay in report["replays"]:
        status = f" [{replay['status']}]" if replay["status"] != "complete" else ""
        visit = (f", visit {report['scene_index']} attempt {report['attempt']}"
                 if report.get("attempt") is not None else "")
        lines.append(f"{report['scene_id']} episode {report['episode']} of {replay['source']} ({report['mode']} "
                     f"mode{visit}, seed {replay['seed']}){status}")
        lines.append(replay["summary"])
    peers = report["peers"]
    if peers is not None:
        if peers["agree"]:
            lines.append(f"peers agree on all {peers['frames_compared']} frames {peers['lengths']}")
        else:
            lines.append(f"peers DISAGREE: {peers['first_mismatch']} (lengths {peers['lengths']})")
    return "\n".join(lines)
