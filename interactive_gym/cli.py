"""Command-line entry point: ``interactive-gym <command> ...``.

Each command lives in its own module under :mod:`interactive_gym.tools` and exposes
``add_parser(subparsers)``, which registers an ``argparse`` sub-parser whose ``func`` default is the
callable that runs the command and returns an exit code. Keeping commands in separate modules keeps
this file a dispatcher only.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Order here is the order ``--help`` lists the commands in.
COMMAND_MODULES: tuple[str, ...] = ("run", "check", "export", "backup", "check_env", "netsim", "replay")


class UserError(Exception):
    """A mistake the user can fix (bad path, bad option): printed as one line, never as a traceback."""


def build_parser() -> argparse.ArgumentParser:
    """Builds the top-level parser with one sub-parser per available command module."""
    parser = argparse.ArgumentParser(
        prog="interactive-gym",
        description=(
            "Run Gymnasium environments as browser experiments with human participants, "
            "export the recorded data, and check environments for rollback netcode."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        importlib.import_module(f"interactive_gym.tools.{name}").add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parses ``argv`` and runs the chosen command; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"interactive-gym {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
