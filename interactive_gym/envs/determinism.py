"""The one hash seed every peer, replay and determinism check runs Python with.

CPython and Pyodide randomise ``hash()`` of ``str`` and ``bytes`` per process (PEP 456). An environment
that iterates a ``set`` of strings, or a ``dict`` keyed by ``hash(name)``, is then deterministic inside
one process but walks its items in a different order in each peer's browser, and a p2p game desyncs.
Fixing the seed makes such iteration orders equal everywhere: every peer's Pyodide is started with
``env={"PYTHONHASHSEED": PYTHON_HASH_SEED}``, and a replay must run its interpreter the same way
(``PYTHONHASHSEED`` only takes effect at interpreter start, so a replay run in-process needs a
subprocess started with :func:`hash_seed_env`).

Environments should still not depend on hash order: ``interactive-gym check-env`` runs a second copy of
the env under a different seed and reports where they part.

This module has no imports beyond the standard library: it is shipped to the browser too.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# A string because that is what PYTHONHASHSEED takes. "0" turns hash randomisation off (a fixed all-zero
# key); any fixed value would give equal orders across peers, 0 is simply the documented "off".
PYTHON_HASH_SEED = "0"

# The other seeds check-env runs the env under, compared with PYTHON_HASH_SEED. Several, because two seeds
# can order a small set alike by chance (a set of two strings: one time in two).
CHECK_HASH_SEEDS: tuple[str, ...] = ("1", "2", "3")


def hash_seed_env(base: Mapping[str, str] | None = None, seed: str = PYTHON_HASH_SEED) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) with ``PYTHONHASHSEED`` set, for ``subprocess``'s ``env``.

    Args:
        base: The environment to copy; ``os.environ`` when None.
        seed: The hash seed, a decimal string in ``[0, 4294967295]``.

    Returns:
        A new dict; ``base`` is not changed.
    """
    env = dict(os.environ if base is None else base)
    env["PYTHONHASHSEED"] = seed
    return env

