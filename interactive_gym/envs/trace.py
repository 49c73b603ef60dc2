"""A per-frame checksum trace of an environment, comparable across processes and interpreters.

``check-env`` runs the same trace in separate processes (CPython under different ``PYTHONHASHSEED`` values,
and Pyodide in Node) and compares them frame by frame: an env that is deterministic inside one process can
still depend on something per-process, above all the iteration order of sets and dicts of ``str`` (str
hashes are randomised per process, and are 32-bit in Pyodide, 64-bit in CPython).

Everything crosses the process boundary as JSON: a request (:class:`TraceRequest`) in, a
:class:`TraceResult` out, both plain dicts. Pure Python and standard library only: this module runs inside
Pyodide too.
"""

from __future__ import annotations

import os
import random
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from interactive_gym.netcode.checksum import flatten

from .factory import FactoryError, load_factory, parse_kwargs
from .state import EnvStateAdapter

MAX_FRAMES = 100_000
MAX_STATE_LINES = 20_000  # leaves of a described state (an RNG state alone is 625)
TRUNCATED = "~truncated after"  # key of a described state that was cut: the value is the last path kept
MAX_VALUE_CHARS = 120


class TraceRequest(TypedDict, total=False):
    """What to trace. ``reference``: stop at the first frame whose checksum differs from it (and describe
    that state); ``state_at``: describe the state of that frame (and stop there)."""

    target: str  # module:factory
    kwargs: str | None  # JSON object for the factory, as on the command line
    frames: int
    seed: int
    sys_path: list[str]  # folders to put on sys.path before importing the target
    reference: list[str] | None
    state_at: int | None


class TraceResult(TypedDict):
    """``checksums[f]`` (hex) is the state checksum at frame ``f``, before stepping it."""

    runtime: str
    hash_seed: str | None
    checksums: list[str]
    mismatch: int | None
    state: dict[str, str] | None
    error: str | None


class SeededInputs:
    """Seeded random inputs that change now and then, like held keys; equal seeds give equal streams."""

    def __init__(self, adapter: EnvStateAdapter, seed: int, change: float) -> None:
        self._adapter = adapter
        self._rng = random.Random(seed)
        self._change = change
        self._current = [adapter.random_input(self._rng, p) for p in range(len(adapter.agents))]

    def next(self) -> list[bytes]:
        """The inputs of the next frame, one ``bytes`` per player."""
        for player in range(len(self._current)):
            if self._rng.random() < self._change:
                self._current[player] = self._adapter.random_input(self._rng, player)
        return list(self._current)


def describe_state(state: Any) -> dict[str, str]:
    """``{path: short repr}`` of a snapshot, JSON-ready, for diffing states from two processes.

    At most :data:`MAX_STATE_LINES` leaves, in path order; a cut state says where (key :data:`TRUNCATED`).
    """
    flat = flatten(state)
    paths = sorted(flat)
    out: dict[str, str] = {}
    for path in paths[:MAX_STATE_LINES]:
        text = repr(flat[path])
        out[path] = text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."
    if len(paths) > MAX_STATE_LINES:
        out[TRUNCATED] = paths[MAX_STATE_LINES - 1]
    return out


def state_difference(a: dict[str, str], b: dict[str, str], limit: int = 12) -> list[str]:
    """Lines ``path: a != b`` for the leaves where two :func:`describe_state` results differ.

    Only paths up to where a cut state ends are compared, so a cut never shows as a difference.
    """
    ends = [d[TRUNCATED] for d in (a, b) if TRUNCATED in d]
    end = min(ends) if ends else None
    lines = []
    for path in sorted((set(a) | set(b)) - {TRUNCATED}):
        if end is not None and path > end:
            break
        left, right = a.get(path, "<missing>"), b.get(path, "<missing>")
        if left != right:
            lines.append(f"{path}: {left} != {right}")
            if len(lines) >= limit:
                lines.append("... (more differences not shown)")
                break
    return lines


def run_trace(
    build: Callable[[], Any],
    frames: int,
    seed: int = 0,
    reference: Sequence[str] | None = None,
    state_at: int | None = None,
) -> TraceResult:
    """Steps a fresh env with seeded inputs and records the state checksum of every frame ``0..frames``.

    The inputs are those of ``check_two_instances`` (``SeededInputs(adapter, seed + 1, 0.3)``), so all
    cross-process runs and the in-process check see the same game.
    """
    result = _result()
    adapter = EnvStateAdapter(build(), seed=seed)
    inputs = SeededInputs(adapter, seed + 1, 0.3)
    for frame in range(frames + 1):
        state = adapter.save_state()
        result["checksums"].append(format(adapter.checksum(state), "016x"))
        differs = reference is not None and (frame >= len(reference) or reference[frame] != result["checksums"][-1])
        if differs or frame == state_at:
            result["mismatch"] = frame if differs else None
            result["state"] = describe_state(state)
            break
        if frame < frames:
            adapter.advance(frame, inputs.next())
    return result


def run_request(request: TraceRequest) -> TraceResult:
    """Runs one :class:`TraceRequest`; a failing factory or env is reported in ``error``, never raised."""
    result = _result()
    try:
        frames = int(request["frames"])
        if not 0 <= frames <= MAX_FRAMES:
            raise ValueError(f"frames must be in 0..{MAX_FRAMES}, got {frames}")
        for folder in reversed(request.get("sys_path") or []):
            if folder not in sys.path:
                sys.path.insert(0, folder)
        factory = load_factory(request["target"])
        kwargs = parse_kwargs(request.get("kwargs"))
        return run_trace(lambda: factory(**kwargs), frames, int(request.get("seed", 0)),
                         request.get("reference"), request.get("state_at"))
    except FactoryError as exc:
        result["error"] = str(exc)
    except Exception as exc:  # the env itself failed: report where, like the in-process checks
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result["error"] = f"{type(exc).__name__}: {exc} (at {os.path.basename(where.filename)}:{where.lineno})"
    return result


def _result() -> TraceResult:
    return {"runtime": f"{sys.implementation.name} {sys.version.split()[0]} on {sys.platform}",
            "hash_seed": os.environ.get("PYTHONHASHSEED"), "checksums": [], "mismatch": None,
            "state": None, "error": None}
