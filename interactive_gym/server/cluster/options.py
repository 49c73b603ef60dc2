"""How one server process takes part in a cluster of workers (``interactive-gym run --workers N``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# A worker's route key travels in every page's socket handshake (``?ig_route=w1``) and in Redis key names.
WORKER_NAME = re.compile(r"^w[0-9]{1,3}$")


@dataclass(frozen=True)
class ClusterOptions:
    """One worker of a cluster.

    Attributes:
        redis_url: The Redis every worker of the experiment shares (waiting rooms, emits, who serves whom).
        worker: This worker's route key (``w0``, ``w1``, ...): the front sends a page whose handshake names it
            here, and pages moved to this worker are told it.
    """

    redis_url: str
    worker: str

    def __post_init__(self) -> None:
        if not WORKER_NAME.match(self.worker):
            raise ValueError(f"worker name {self.worker!r}: expected w0, w1, ... (w and up to 3 digits)")
        if not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"--redis {self.redis_url!r}: expected redis://HOST:PORT[/DB], rediss://... or unix://PATH")
