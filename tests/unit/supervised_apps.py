"""Runs the workers' supervisor over ``handoff_app.py`` workers: ``python supervised_apps.py PORT FOLDER``.

For test_workers_supervisor.py: the supervisor of ``interactive-gym run --workers 2`` with tiny workers in place of
the experiment's, so restarts and shutdown are tested without loading an experiment.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from interactive_gym.tools.workers import Supervisor, Worker

APP = Path(__file__).with_name("handoff_app.py")


def main(port: int, folder: Path) -> None:
    workers = [Worker(name, folder / f"{name}.sock", [sys.executable, str(APP), name, str(folder / f"{name}.sock")])
               for name in ("w0", "w1")]
    asyncio.run(Supervisor(workers, "127.0.0.1", port, "redis://127.0.0.1:1").run())


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]))
