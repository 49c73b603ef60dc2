"""The experiment file ``workers_capacity.py`` serves with the real CLI (``interactive-gym run`` this file).

The same game as the single-process capacity benchmark (:func:`server_capacity_server.capacity_stager`: two
humans, one server-mode scene of a benchmark env, then the end), its parameters read from the environment
because the CLI passes none to an experiment file:

- ``IG_BENCH_ENV``: ``demo`` (default) or ``grid`` (see ``server_capacity_envs.py``);
- ``IG_BENCH_FPS``: ticks per second (default 30);
- ``IG_BENCH_MAX_STEPS``: the game's length in ticks (default 150).

Port and database come from ``--port`` and ``--db``.
"""

from __future__ import annotations

import os

# The experiment loader puts this file's folder first on sys.path, so its neighbours import by name.
from server_capacity_server import capacity_stager

from interactive_gym import RemoteConfig

config = RemoteConfig().experiment(
    "workers_capacity",
    stager=capacity_stager(int(os.environ.get("IG_BENCH_FPS", "30")),
                           int(os.environ.get("IG_BENCH_MAX_STEPS", "150")),
                           os.environ.get("IG_BENCH_ENV", "demo")),
)
