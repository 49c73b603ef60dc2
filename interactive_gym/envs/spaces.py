"""A dependency-free ``Discrete`` action space for environments that must also run in the browser.

Gymnasium needs numpy, which the self-hosted Pyodide does not ship; environments meant for browser or
peer-to-peer mode can declare their action spaces with this class instead. It follows the subset of the
Gymnasium ``Discrete`` interface that Interactive Gym uses (``n``, ``start``, ``contains``, ``sample``), so
the server validates key mappings the same way for both kinds of space.
"""

from __future__ import annotations

import random
from typing import Any


class Discrete:
    """The integers ``start, start + 1, ..., start + n - 1``.

    Args:
        n: Number of actions; must be positive.
        start: The smallest action.
    """

    def __init__(self, n: int, start: int = 0) -> None:
        if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
            raise ValueError(f"Discrete(n) needs a positive integer n, got {n!r}")
        if not isinstance(start, int) or isinstance(start, bool):
            raise ValueError(f"Discrete(start) must be an integer, got {start!r}")
        self.n = n
        self.start = start

    def contains(self, value: Any) -> bool:
        """True if ``value`` is an integer action of this space (bools are not actions)."""
        if isinstance(value, bool):
            return False
        try:
            as_int = int(value)
        except (TypeError, ValueError, OverflowError):
            return False
        if as_int != value:
            return False
        return self.start <= as_int < self.start + self.n

    def sample(self, rng: random.Random) -> int:
        """Draws a uniformly random action with the caller's seeded ``rng`` (never the global one)."""
        return self.start + rng.randrange(self.n)

    def __repr__(self) -> str:
        return f"Discrete({self.n})" if self.start == 0 else f"Discrete({self.n}, start={self.start})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Discrete) and (self.n, self.start) == (other.n, other.start)

    def __hash__(self) -> int:
        return hash((self.n, self.start))


def space_contains(space: Any, action: Any) -> bool:
    """Asks any space-like object (this module's or Gymnasium's) whether it contains ``action``.

    Gymnasium's ``Discrete.contains`` wants numpy integers or Python ints; a Python int is always accepted
    here, so configurations written with plain integers validate as researchers expect.
    """
    contains = getattr(space, "contains", None)
    if contains is None:
        raise TypeError(f"{space!r} is not an action space (no contains method)")
    try:
        return bool(contains(action))
    except Exception:  # noqa: BLE001 - a space that cannot judge a value does not contain it
        return False
