"""``interactive-gym check experiment.py``: validate an experiment and play each game scene's first frames."""

from __future__ import annotations

import argparse

from interactive_gym.tools.run import checked_config


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check an experiment without serving it",
        description="Check the experiment in EXPERIMENT as `interactive-gym run` does before it serves: the "
                    "configuration, then every game scene plays a reset and a few steps where it will run "
                    "(server mode in CPython, browser and p2p modes in Pyodide with the exact files the page "
                    "gets). Exit code 0: ready; 2: something to change (printed).",
    )
    parser.add_argument("experiment", help="path to the experiment's Python file")
    parser.set_defaults(func=check)


def check(args: argparse.Namespace) -> int:
    _config, report = checked_config(args.experiment)
    print(report.summary())
    print(f"{args.experiment}: ready to run")
    return 0
