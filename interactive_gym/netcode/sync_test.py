"""Sync-test session: checks that an environment re-simulates bit-identically (the GGPO/GGRS determinism test).

Every frame it saves the present state, loads the state from ``check_distance`` frames ago, re-simulates to the
present with the same inputs while saving each state again, and then advances. On the next call it compares every
re-simulated state's checksum with the first one recorded for that frame. Wall clocks, unseeded randomness,
hidden globals and state the snapshot misses all show up as a mismatch naming the first bad frame.
"""

from __future__ import annotations

from typing import Any

from .requests import AdvanceFrame, InputStatus, LoadState, Request, SaveState, StateCell
from .settings import MAX_PLAYERS, SettingsError

_CONFIRMED = InputStatus.CONFIRMED


class SyncTestMismatchError(Exception):
    """A re-simulated state differs from the first simulation of the same frame.

    Attributes:
        frame: The first frame whose state differs (the state *before* frame ``frame``, i.e. after stepping
            frame ``frame - 1`` again).
        original_checksum: Checksum recorded by the first simulation.
        resimulated_checksum: Checksum after rollback and re-simulation.
        original_state: The first simulation's snapshot.
        resimulated_state: The re-simulated snapshot.
    """

    def __init__(self, frame: int, original: StateCell, resimulated: StateCell) -> None:
        super().__init__(
            f"state of frame {frame} differs after re-simulation "
            f"(checksum {original.checksum:#018x} first, {resimulated.checksum:#018x} after rollback)"
        )
        self.frame = frame
        self.original_checksum = original.checksum
        self.resimulated_checksum = resimulated.checksum
        self.original_state: Any = original.state
        self.resimulated_state: Any = resimulated.state


class SyncTestSession:
    """All players local; rolls back ``check_distance`` frames every frame and compares checksums.

    Args:
        num_players: 1..8.
        input_size: Bytes per player input.
        check_distance: Frames to roll back every frame (1..60). Larger values catch state that drifts slowly.
    """

    def __init__(self, num_players: int, input_size: int, check_distance: int = 7) -> None:
        if not isinstance(num_players, int) or not 1 <= num_players <= MAX_PLAYERS:
            raise SettingsError(f"num_players must be 1..{MAX_PLAYERS}, got {num_players!r}")
        if not isinstance(input_size, int) or input_size < 1:
            raise SettingsError(f"input_size must be a positive number of bytes, got {input_size!r}")
        if not isinstance(check_distance, int) or not 1 <= check_distance <= 60:
            raise SettingsError(f"check_distance must be 1..60 frames, got {check_distance!r}")
        self.num_players = num_players
        self.input_size = input_size
        self.check_distance = check_distance
        self.current_frame = 0
        self.frames_checked = 0
        self._pending: dict[int, bytes] = {}
        self._inputs: dict[int, tuple[tuple[bytes, InputStatus], ...]] = {}
        self._originals: dict[int, StateCell] = {}
        self._resaved: list[StateCell] = []

    def add_input(self, player: int, data: bytes) -> None:
        """Sets ``player``'s input for the next frame."""
        if not 0 <= player < self.num_players:
            raise SettingsError(f"player {player} does not exist (0..{self.num_players - 1})")
        if len(data) != self.input_size:
            raise SettingsError(f"input must be {self.input_size} bytes, got {len(data)}")
        self._pending[player] = bytes(data)

    def advance_frame(self) -> list[Request]:
        """Checks the previous frame's re-simulation, then plans save, rollback, re-simulation and advance.

        Raises:
            SyncTestMismatchError: The previous re-simulation produced a different state.
        """
        self.verify()
        if len(self._pending) != self.num_players:
            missing = [p for p in range(self.num_players) if p not in self._pending]
            raise SettingsError(f"add_input() was not called for players {missing} this frame")
        current = self.current_frame
        self._inputs[current] = tuple((self._pending[p], _CONFIRMED) for p in range(self.num_players))
        self._pending.clear()
        requests: list[Request] = []
        if current not in self._originals:
            cell = StateCell()
            self._originals[current] = cell
            requests.append(SaveState(current, cell, True))
        start = current - self.check_distance
        if start >= 0:
            requests.append(LoadState(start, self._originals[start]))
            for frame in range(start, current):
                requests.append(AdvanceFrame(frame, self._inputs[frame]))
                cell = StateCell()
                self._resaved.append(cell)
                requests.append(SaveState(frame + 1, cell, True))
        requests.append(AdvanceFrame(current, self._inputs[current]))
        self.current_frame = current + 1
        for old in [f for f in self._originals if f < start]:
            del self._originals[old]
            self._inputs.pop(old, None)
        return requests

    def verify(self) -> None:
        """Compares the re-simulated checksums saved since the last call (call once more after the last frame).

        Raises:
            SyncTestMismatchError: For the earliest differing frame.
        """
        resaved, self._resaved = self._resaved, []
        for cell in resaved:
            original = self._originals.get(cell.frame)
            if original is None or original.frame != cell.frame:
                raise SettingsError(f"state of frame {cell.frame} was not saved: execute every SaveState request")
            if cell.checksum is None or original.checksum is None:
                raise SettingsError("SaveState requests in a sync test must store a checksum")
            if cell.checksum != original.checksum:
                raise SyncTestMismatchError(cell.frame, original, cell)
            self.frames_checked += 1
