"""Rejoin snapshots: what a connected peer sends a reloaded (or crashed) peer so it can resume a running game.

A peer whose page reloads loses its whole simulation. A connected peer (the *sender*) captures, at a frame ``S``
whose inputs are all final on its side:

* the simulation's full snapshot of the state of frame ``S`` (environment with its RNGs, agent runtimes, episode
  index and step: whatever :meth:`RollbackEnv.save_state` returns) and its 64-bit checksum,
* every player's inputs it holds from ``S`` on (the returning player has none: its inputs start at ``S``),
* the players that are disconnected for good (their inputs are the default from ``S`` on).

The returning page builds its session at frame ``S`` from this (:meth:`P2PSession.resumed`), loads the state,
checks the checksum and plays on; the sender reconnects that player at ``S`` (:meth:`P2PSession.reconnect_player`).

The snapshot travels as JSON text over the reliable, ordered control channel, cut into chunks. It comes from another
participant's page, so decoding never runs code (no pickle): only plain values with explicit type tags are accepted
(``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``, ``set``,
``frozenset``). A state holding any other object cannot be sent (:class:`SnapshotError`); that game then ends as
it does without rejoin. Pure standard library.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .episode_delays import MAX_ANNOUNCED
from .settings import MAX_INPUT_DELAY

SNAPSHOT_VERSION = 1
MAX_SNAPSHOT_CHARS = 8 * 1024 * 1024
CHUNK_CHARS = 12_000  # under every browser's DataChannel message limit (16 kB is the portable bound)
MAX_CHUNKS = MAX_SNAPSHOT_CHARS // CHUNK_CHARS + 1
MAX_DEPTH = 64
MAX_INPUTS_PER_PLAYER = 1024
MAX_DELAY = MAX_INPUT_DELAY
MAX_DELAYS = MAX_ANNOUNCED


class SnapshotError(ValueError):
    """A snapshot cannot be made, or a received one is malformed; the message says which part."""


@dataclass(frozen=True)
class RejoinSnapshot:
    """The state of frame ``frame`` and the inputs from there on, for ``player``'s new page.

    Attributes:
        player: The returning player.
        frame: ``S``: the first frame the returning page simulates (its own inputs start here).
        state: The simulation snapshot of the state of frame ``S`` (plain values).
        checksum: ``checksum(state)`` on the sender (64-bit); the receiver recomputes it after loading.
        inputs: Per player, the inputs of frames ``S, S+1, ...`` the sender holds (empty for ``player``).
        disconnected: Players disconnected for good (their inputs are the default from ``S`` on).
        place: Where ``S`` falls in the game, for the data: ``{"episode": e, "t": t}``.
        input_delay: The delay the episode at ``S`` is played with (``None``: the settings' fixed delay).
        delays: ``input_delay="auto"``: the ``(episode, delay)`` announcements the sender knows.
    """

    player: int
    frame: int
    state: Any
    checksum: int
    inputs: tuple[tuple[bytes, ...], ...]
    disconnected: tuple[int, ...] = ()
    place: Mapping[str, int] = field(default_factory=dict)
    input_delay: int | None = None
    delays: tuple[tuple[int, int], ...] = ()


# --- plain values with type tags -----------------------------------------------------------------------------


def to_plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON-ready data with tags that keep tuples, bytes, sets and non-string keys apart.

    Raises:
        SnapshotError: a value of another type (e.g. an object of the environment's own class).
    """
    if depth > MAX_DEPTH:
        raise SnapshotError("the state is nested too deeply to send")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"i": str(value)}
    if isinstance(value, float):
        return value if math.isfinite(value) else {"f": repr(value)}
    if isinstance(value, list):
        return [to_plain(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return {"t": [to_plain(v, depth + 1) for v in value]}
    if isinstance(value, bytes | bytearray):
        return {"b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"d": [[to_plain(k, depth + 1), to_plain(v, depth + 1)] for k, v in value.items()]}
    if isinstance(value, set | frozenset):
        tag = "s" if isinstance(value, set) else "fs"
        return {tag: [to_plain(v, depth + 1) for v in value]}
    raise SnapshotError(
        f"the state holds a {type(value).__name__} object, which cannot be sent to a returning peer "
        "(give the environment get_state()/set_state() returning plain values)"
    )


def from_plain(data: Any, depth: int = 0) -> Any:
    """The inverse of :func:`to_plain`; anything not produced by it raises :class:`SnapshotError`."""
    if depth > MAX_DEPTH:
        raise SnapshotError("snapshot nested too deeply")
    if data is None or isinstance(data, bool | str | int):
        return data
    if isinstance(data, float):
        return data
    if isinstance(data, list):
        return [from_plain(v, depth + 1) for v in data]
    if not isinstance(data, dict) or len(data) != 1:
        raise SnapshotError("snapshot value of an unknown shape")
    ((tag, inner),) = data.items()
    try:
        if tag == "i" and isinstance(inner, str):
            return int(inner)
        if tag == "f" and inner in ("inf", "-inf", "nan"):
            return float(inner)
        if tag == "b" and isinstance(inner, str):
            return base64.b64decode(inner, validate=True)
        if isinstance(inner, list):
            items = [from_plain(v, depth + 1) for v in inner]
            if tag == "t":
                return tuple(items)
            if tag == "s":
                return set(items)
            if tag == "fs":
                return frozenset(items)
            if tag == "d":
                if not all(isinstance(pair, tuple | list) and len(pair) == 2 for pair in items):
                    raise SnapshotError("snapshot dict entry is not a pair")
                return {k: v for k, v in items}
    except (ValueError, TypeError) as exc:  # bad base64, unhashable key
        raise SnapshotError(f"snapshot value tagged {tag!r} is malformed: {exc}") from None
    raise SnapshotError(f"snapshot value tag {str(tag)[:8]!r} is unknown")


# --- the snapshot as text ------------------------------------------------------------------------------------


def encode_snapshot(snapshot: RejoinSnapshot) -> str:
    """The snapshot as compact JSON text.

    Raises:
        SnapshotError: the state holds a value that cannot be sent, or the text exceeds the size limit.
    """
    text = json.dumps({
        "v": SNAPSHOT_VERSION,
        "player": snapshot.player,
        "frame": snapshot.frame,
        "checksum": f"{snapshot.checksum & 0xFFFFFFFFFFFFFFFF:016x}",
        "state": to_plain(snapshot.state),
        "inputs": [[base64.b64encode(i).decode("ascii") for i in run] for run in snapshot.inputs],
        "disconnected": list(snapshot.disconnected),
        "place": dict(snapshot.place),
        "input_delay": snapshot.input_delay,
        "delays": [list(pair) for pair in snapshot.delays],
    }, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_SNAPSHOT_CHARS:
        raise SnapshotError(f"the snapshot is {len(text)} characters; the limit is {MAX_SNAPSHOT_CHARS}")
    return text


def decode_snapshot(text: str, num_players: int, input_size: int) -> RejoinSnapshot:
    """Parses and checks a snapshot for a session of ``num_players`` players and ``input_size``-byte inputs.

    Raises:
        SnapshotError: anything malformed, oversized or not fitting the session's shape.
    """
    if not isinstance(text, str) or len(text) > MAX_SNAPSHOT_CHARS:
        raise SnapshotError("snapshot is not text or is too large")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise SnapshotError("snapshot is not JSON") from None
    if not isinstance(data, dict) or data.get("v") != SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version must be {SNAPSHOT_VERSION}")
    player, frame = data.get("player"), data.get("frame")
    if not isinstance(player, int) or not isinstance(frame, int) or not _whole(player) or not _whole(frame):
        raise SnapshotError("snapshot player and frame must be whole numbers")
    if not 0 <= player < num_players or not 0 <= frame < 2**31:
        raise SnapshotError("snapshot player or frame out of range")
    try:
        checksum = int(str(data.get("checksum")), 16)
    except ValueError:
        raise SnapshotError("snapshot checksum is not hex") from None
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != num_players:
        raise SnapshotError(f"snapshot must carry inputs for {num_players} players")
    runs = []
    for p, run in enumerate(inputs):
        if not isinstance(run, list) or len(run) > MAX_INPUTS_PER_PLAYER or (p == player and run):
            raise SnapshotError(f"snapshot inputs of player {p} are malformed")
        try:
            decoded = tuple(base64.b64decode(i, validate=True) for i in run)
        except (ValueError, TypeError):
            raise SnapshotError(f"snapshot inputs of player {p} are not base64") from None
        if any(len(i) != input_size for i in decoded):
            raise SnapshotError(f"snapshot inputs of player {p} must be {input_size} bytes each")
        runs.append(decoded)
    gone = data.get("disconnected")
    if not isinstance(gone, list) or not all(_whole(p) and 0 <= p < num_players and p != player for p in gone):
        raise SnapshotError("snapshot disconnected players are malformed")
    place = data.get("place")
    if not isinstance(place, dict) or not all(isinstance(k, str) and _whole(v) for k, v in place.items()):
        raise SnapshotError("snapshot place is malformed")
    delay = data.get("input_delay")
    if delay is not None and not (_whole(delay) and 0 <= delay <= MAX_DELAY):
        raise SnapshotError("snapshot input delay is malformed")
    delays = data.get("delays", [])
    if not isinstance(delays, list) or len(delays) > MAX_DELAYS or not all(
            isinstance(pair, list) and len(pair) == 2 and all(_whole(v) for v in pair)
            and 0 <= pair[0] < 2**31 and 0 <= pair[1] <= MAX_DELAY for pair in delays):
        raise SnapshotError("snapshot delays are malformed")
    return RejoinSnapshot(player, frame, from_plain(data.get("state")), checksum, tuple(runs),
                          tuple(sorted(set(gone))), place, delay, tuple((int(e), int(d)) for e, d in delays))


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- chunks --------------------------------------------------------------------------------------------------


def split_chunks(text: str, size: int = CHUNK_CHARS) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters (at least one piece)."""
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


class ChunkAssembler:
    """Puts a snapshot's chunks back together; duplicates and reordering are harmless, limits are enforced.

    Chunks are ``(snapshot id, index, count, text)``; a chunk of a newer snapshot id starts over (the sender
    made a fresh snapshot), an older id is ignored.
    """

    def __init__(self) -> None:
        self._id: int | None = None
        self._count = 0
        self._parts: dict[int, str] = {}
        self._chars = 0

    def add(self, snapshot_id: Any, index: Any, count: Any, text: Any) -> str | None:
        """Takes one chunk; returns the whole text once every chunk of the snapshot is in, else ``None``.

        Raises:
            SnapshotError: a chunk that does not fit (bad numbers, too many chunks, too large).
        """
        if not (_whole(snapshot_id) and _whole(index) and _whole(count) and isinstance(text, str)):
            raise SnapshotError("snapshot chunk is malformed")
        if not 0 < count <= MAX_CHUNKS or not 0 <= index < count or len(text) > CHUNK_CHARS:
            raise SnapshotError("snapshot chunk numbers are out of range")
        if self._id is not None and snapshot_id < self._id:
            return None
        if snapshot_id != self._id:
            self._id, self._count, self._parts, self._chars = snapshot_id, count, {}, 0
        if count != self._count:
            raise SnapshotError("snapshot chunks disagree on their count")
        if index not in self._parts:
            self._chars += len(text)
            if self._chars > MAX_SNAPSHOT_CHARS:
                raise SnapshotError("snapshot is too large")
            self._parts[index] = text
        if len(self._parts) < self._count:
            return None
        return "".join(self._parts[i] for i in range(self._count))


def held_inputs(runs: Sequence[Sequence[bytes]]) -> tuple[tuple[bytes, ...], ...]:
    """Normalises per-player input runs to tuples of bytes (for building a snapshot)."""
    return tuple(tuple(bytes(i) for i in run) for run in runs)
