"""What a session asks its caller to do (requests) and tells it (events).

Frame numbering: frame ``F`` is the ``F``-th step of the simulation (the first is 0). "The state of frame F" is the
state *before* frame F is simulated. ``SaveState(F)`` therefore saves the state about to be advanced with frame F's
inputs, ``LoadState(F)`` restores it, and ``AdvanceFrame(F, inputs)`` steps from frame F to F+1.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class InputStatus(IntEnum):
    """How certain an input handed to the simulation is."""

    CONFIRMED = 0
    PREDICTED = 1
    DISCONNECTED = 2


class AdvanceStatus(IntEnum):
    """Whether a frame advanced, and if not, why (the caller simply tries again next frame)."""

    ADVANCED = 0
    PREDICTION_THRESHOLD = 1
    NOT_SYNCHRONIZED = 2
    WAITING = 3  # the runner skipped this frame on purpose (time sync: this peer runs ahead)
    IDLE = 4  # the caller asked the runner not to advance (e.g. the game is over)


class StateCell:
    """A slot the caller fills when executing :class:`SaveState`, and reads back for :class:`LoadState`."""

    __slots__ = ("frame", "state", "checksum")

    def __init__(self) -> None:
        self.frame = -1
        self.state: Any = None
        self.checksum: int | None = None

    def save(self, frame: int, state: Any, checksum: int | None = None) -> None:
        """Stores ``state`` (and its checksum when one was asked for) as the state of ``frame``."""
        self.frame = frame
        self.state = state
        self.checksum = checksum


@dataclass(slots=True)
class SaveState:
    """Save the current state as the state of ``frame`` into ``cell`` (with a checksum if ``checksum_wanted``)."""

    frame: int
    cell: StateCell
    checksum_wanted: bool = False


@dataclass(slots=True)
class LoadState:
    """Restore the state of ``frame`` from ``cell.state``."""

    frame: int
    cell: StateCell


@dataclass(slots=True)
class AdvanceFrame:
    """Step the simulation once with ``inputs[player] = (input bytes, status)`` for frame ``frame``."""

    frame: int
    inputs: tuple[tuple[bytes, InputStatus], ...]


Request = SaveState | LoadState | AdvanceFrame


@dataclass(slots=True)
class AdvanceResult:
    """The outcome of one :meth:`advance_frame` call: a status and the requests to execute in order."""

    status: AdvanceStatus
    requests: list[Request]


# --- events -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Synchronized:
    """The first valid packet from ``peer`` arrived."""

    peer: Hashable


@dataclass(frozen=True, slots=True)
class NetworkInterrupted:
    """Nothing has arrived from ``peer`` for ``silent_ms``; it will be disconnected if this continues."""

    peer: Hashable
    silent_ms: float


@dataclass(frozen=True, slots=True)
class NetworkResumed:
    """Packets from an interrupted ``peer`` arrive again."""

    peer: Hashable


@dataclass(frozen=True, slots=True)
class Disconnected:
    """``player`` is disconnected: from ``frame`` on its input is the default input, flagged DISCONNECTED."""

    player: int
    frame: int


@dataclass(frozen=True, slots=True)
class DesyncDetected:
    """The state checksum of confirmed ``frame`` differs between this peer and ``peer``."""

    frame: int
    local_checksum: int
    remote_checksum: int
    peer: Hashable


@dataclass(frozen=True, slots=True)
class EpisodeAgreed:
    """Every connected peer reported that ``episode`` ended on ``frame`` (the frame whose step ended it)."""

    episode: int
    frame: int


@dataclass(frozen=True, slots=True)
class EpisodeMismatch:
    """``peer`` reported a different terminal frame for ``episode``: the simulations diverged."""

    episode: int
    local_frame: int
    remote_frame: int
    peer: Hashable


Event = (
    Synchronized | NetworkInterrupted | NetworkResumed | Disconnected | DesyncDetected | EpisodeAgreed | EpisodeMismatch
)
