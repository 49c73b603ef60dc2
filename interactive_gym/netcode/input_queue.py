"""One player's inputs by frame: confirmed ones, predictions handed to the simulation, and disconnection.

Prediction repeats the last confirmed input (the GGPO default). The queue remembers exactly which input it handed out
for every predicted frame, so when the real input arrives it can tell whether the simulation used the right one; the
earliest wrong frame is where the session must roll back to.
"""

from __future__ import annotations

from .requests import InputStatus

_CONFIRMED = InputStatus.CONFIRMED
_PREDICTED = InputStatus.PREDICTED
_DISCONNECTED = InputStatus.DISCONNECTED


class InputQueueError(ValueError):
    """An input was added out of order (a programming error in the caller, not a network condition)."""


class InputQueue:
    """Inputs of one player, contiguous from ``first_frame`` to ``last_confirmed``.

    Attributes:
        last_confirmed: Highest frame whose input is known (-1 when none). Frames are confirmed strictly in order.
        disconnected_after: ``None`` while connected; else the last frame with a real input. Every later frame
            uses the default input with status DISCONNECTED, and counts as confirmed.
    """

    __slots__ = ("_inputs", "_base", "_default", "_predictions", "last_confirmed", "disconnected_after")

    def __init__(self, default_input: bytes) -> None:
        self._inputs: list[bytes] = []
        self._base = 0
        self._default = default_input
        self._predictions: dict[int, bytes] = {}
        self.last_confirmed = -1
        self.disconnected_after: int | None = None

    @property
    def first_frame(self) -> int:
        """Oldest frame still held (older ones were discarded)."""
        return self._base

    @property
    def confirmed_through(self) -> float:
        """Highest frame whose input is final: infinite once disconnected."""
        return float("inf") if self.disconnected_after is not None else self.last_confirmed

    def add(self, frame: int, data: bytes) -> int | None:
        """Confirms ``data`` as the input of ``frame``.

        Args:
            frame: Must be ``last_confirmed + 1``; older frames are ignored (duplicates).
            data: The input bytes (size checked by the caller).

        Returns:
            ``frame`` if the simulation already ran it with a different, predicted input (a rollback is needed),
            else ``None``.

        Raises:
            InputQueueError: ``frame`` would leave a gap.
        """
        last = self.last_confirmed
        if frame <= last:
            return None
        if frame != last + 1:
            raise InputQueueError(f"input for frame {frame} would leave a gap after frame {last}")
        if self.disconnected_after is not None:
            return None
        self._inputs.append(data)
        self.last_confirmed = frame
        if self._predictions:
            predicted = self._predictions.pop(frame, None)
            if predicted is not None and predicted != data:
                return frame
        return None

    def get(self, frame: int) -> tuple[bytes, InputStatus]:
        """The input the simulation should use for ``frame``, recording it when it is a prediction."""
        if frame <= self.last_confirmed:
            if frame < self._base:
                raise InputQueueError(f"frame {frame} was already discarded (oldest held is {self._base})")
            return self._inputs[frame - self._base], _CONFIRMED
        disconnected = self.disconnected_after
        if disconnected is not None and frame > disconnected:
            return self._default, _DISCONNECTED
        predicted = self._inputs[-1] if self._inputs else self._default
        self._predictions[frame] = predicted
        return predicted, _PREDICTED

    def confirmed(self, frame: int) -> tuple[bytes, InputStatus]:
        """The final input of ``frame`` (which must be confirmed), without recording any prediction."""
        if frame <= self.last_confirmed:
            if frame < self._base:
                raise InputQueueError(f"frame {frame} was already discarded (oldest held is {self._base})")
            return self._inputs[frame - self._base], _CONFIRMED
        if self.disconnected_after is not None:
            return self._default, _DISCONNECTED
        raise InputQueueError(f"frame {frame} is not confirmed yet (last confirmed is {self.last_confirmed})")

    def run(self, start: int, count: int) -> list[bytes]:
        """Confirmed inputs of frames ``start .. start+count-1`` (all held)."""
        offset = start - self._base
        if offset < 0 or start + count - 1 > self.last_confirmed:
            raise InputQueueError(f"frames {start}..{start + count - 1} are not all held")
        return self._inputs[offset : offset + count]

    def disconnect(self, last_real_frame: int) -> None:
        """Uses the default input (DISCONNECTED) for every frame after ``last_real_frame``.

        Called again with a smaller frame when peers agree on an earlier cut; confirmed inputs after the cut are
        dropped so every peer ends with the same history.
        """
        current = self.disconnected_after
        if current is not None and current <= last_real_frame:
            return
        cut = min(last_real_frame, self.last_confirmed)
        if cut < self.last_confirmed:
            keep = max(cut - self._base + 1, 0)
            del self._inputs[keep:]
            self.last_confirmed = cut
        # Never past what this peer holds: peers agree on the minimum, which is at most our own last frame.
        self.disconnected_after = cut
        self._predictions.clear()

    def reconnect(self, from_frame: int) -> None:
        """A disconnected player returns: its real inputs start again at ``from_frame``.

        Frames after the disconnection cut and before ``from_frame`` keep the default input (now confirmed, as
        every peer simulated them with it); later frames are predicted until the player's inputs arrive.
        """
        if self.disconnected_after is None:
            raise InputQueueError("reconnect() of a player that is not disconnected")
        if from_frame <= self.last_confirmed:
            raise InputQueueError(f"reconnect at frame {from_frame}, not after the cut {self.last_confirmed}")
        self._inputs.extend([self._default] * (from_frame - 1 - self.last_confirmed))
        self.last_confirmed = from_frame - 1
        self.disconnected_after = None
        self._predictions.clear()

    def restart_at(self, frame: int) -> None:
        """Empties the queue so that its first frame is ``frame`` (a session resumed from a snapshot)."""
        self._inputs = []
        self._base = frame
        self.last_confirmed = frame - 1
        self.disconnected_after = None
        self._predictions.clear()

    def discard_before(self, frame: int) -> None:
        """Forgets inputs and predictions of frames before ``frame`` (never past the last confirmed one)."""
        frame = min(frame, self.last_confirmed)
        drop = frame - self._base
        if drop > 0:
            del self._inputs[:drop]
            self._base = frame
        if self._predictions:
            for old in [f for f in self._predictions if f < frame]:
                del self._predictions[old]
