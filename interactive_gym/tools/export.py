"""``interactive-gym export <db file, experiment dir or postgresql:// URL> --format csv [--out DIR]``: tidy CSV.

A thin shell over :mod:`interactive_gym.export`: resolves the input, writes the files, prints one line per
file written, and turns every problem the user can fix into a one-line :class:`~interactive_gym.cli.UserError`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interactive_gym.cli import UserError

FORMATS = ("csv",)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Registers the ``export`` sub-command."""
    parser = subparsers.add_parser(
        "export",
        help="write an experiment's data as CSV files (participants, scenes, episodes, steps, agent_steps, "
        "events)",
        description=(
            "Exports an experiment database to tidy CSV files, one row per participant, scene, episode, step, "
            "step and agent (agent_steps.csv, with participant_id), and event. Nested values become dotted "
            "columns (action.agent_0, info.score); arrays become JSON text in one cell. Safe to run while the "
            "experiment server is still writing."
        ),
    )
    parser.add_argument(
        "source",
        type=str,  # not Path: a Path folds postgresql://host/db into postgresql:/host/db
        help="the experiment database (.sqlite/.db), a folder holding exactly one (directly or in data/), or a "
             "postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL",
    )
    parser.add_argument("--format", default="csv", help="output format (only 'csv' for now; default: csv)")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for the CSV files (created if missing; default: <database name>_csv next to the database)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Runs the export; returns 0. Raises :class:`UserError` for a missing, ambiguous or foreign input."""
    from interactive_gym.export import ExportError, default_out_dir, export_csv, find_database

    if args.format not in FORMATS:
        raise UserError(f"unknown format {args.format!r}; choose one of: {', '.join(FORMATS)}")
    try:
        db_path = find_database(args.source)
        out_dir = args.out if args.out is not None else default_out_dir(db_path)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"--out {out_dir} exists and is not a folder")
        written = export_csv(db_path, out_dir)
    except ExportError as exc:
        raise UserError(str(exc)) from None
    except OSError as exc:
        raise UserError(f"{exc.filename or args.source}: {exc.strerror}") from None
    for path, rows in written:
        print(f"wrote {path} ({rows} rows)")
    return 0
