"""A seeded in-memory network with latency, jitter, loss, duplication and reordering.

Like the browser's unordered, no-retransmit DataChannel, but deterministic for a given seed, so a bad network can
be replayed exactly. Time is simulated milliseconds supplied by the caller.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Hashable
from dataclasses import dataclass

from .settings import SettingsError


@dataclass(frozen=True)
class NetworkConditions:
    """How the simulated network misbehaves (the same in both directions).

    Attributes:
        latency_ms: Mean one-way delay; the round trip is about twice this.
        jitter_ms: Each packet's delay varies uniformly by up to this much either way (which also reorders).
        loss: Probability a packet is dropped, 0..1.
        duplicate: Probability a packet is delivered twice (the copy with its own delay).
        reorder: Probability a packet is held back an extra random delay (up to a round trip), overtaken by later
            ones.
    """

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.latency_ms <= 10_000:
            raise SettingsError(f"latency_ms must be 0..10000, got {self.latency_ms!r}")
        if not 0 <= self.jitter_ms <= 10_000:
            raise SettingsError(f"jitter_ms must be 0..10000, got {self.jitter_ms!r}")
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise SettingsError(f"{name} must be a probability in [0, 1), got {value!r}")


@dataclass
class NetworkCounters:
    """What the simulated network did."""

    sent: int = 0
    lost: int = 0
    duplicated: int = 0
    reordered: int = 0
    delivered: int = 0
    bytes_sent: int = 0


class SimulatedNetwork:
    """Carries packets between named endpoints with seeded misbehaviour.

    Args:
        conditions: Latency, jitter, loss, duplication and reordering.
        seed: Seed for every random decision the network makes.
    """

    def __init__(self, conditions: NetworkConditions, seed: int = 0) -> None:
        self.conditions = conditions
        self._rng = random.Random(seed)
        self._queues: dict[Hashable, list[tuple[float, int, Hashable, bytes]]] = {}
        self._sequence = 0
        self.counters = NetworkCounters()

    def _delay(self) -> float:
        c = self.conditions
        delay = c.latency_ms
        if c.jitter_ms:
            delay += self._rng.uniform(-c.jitter_ms, c.jitter_ms)
        if c.reorder and self._rng.random() < c.reorder:
            delay += self._rng.uniform(0.0, 2.0 * c.latency_ms + c.jitter_ms + 16.0)
            self.counters.reordered += 1
        return max(delay, 0.0)

    def send(self, now_ms: float, source: Hashable, destination: Hashable, data: bytes) -> None:
        """Puts a packet on the wire at ``now_ms`` (it may be lost, delayed or duplicated)."""
        counters = self.counters
        counters.sent += 1
        counters.bytes_sent += len(data)
        rng = self._rng
        c = self.conditions
        if c.loss and rng.random() < c.loss:
            counters.lost += 1
            return
        copies = 2 if c.duplicate and rng.random() < c.duplicate else 1
        if copies == 2:
            counters.duplicated += 1
        queue = self._queues.setdefault(destination, [])
        for _ in range(copies):
            self._sequence += 1
            heapq.heappush(queue, (now_ms + self._delay(), self._sequence, source, data))

    def receive(self, destination: Hashable, now_ms: float) -> list[tuple[Hashable, bytes]]:
        """Packets for ``destination`` that have arrived by ``now_ms``, as ``(source, bytes)`` in arrival order."""
        queue = self._queues.get(destination)
        out: list[tuple[Hashable, bytes]] = []
        while queue and queue[0][0] <= now_ms:
            _, _, source, data = heapq.heappop(queue)
            out.append((source, data))
        self.counters.delivered += len(out)
        return out

    def in_flight(self) -> int:
        """Packets sent but not yet received."""
        return sum(len(q) for q in self._queues.values())
