"""The frame counter, saved-state ring and rollback planning shared by the rollback sessions.

The sync layer turns "advance one frame" into the exact ordered requests: if an input arrived that differs from
what the simulation predicted, load the state of the earliest wrong frame and re-simulate to the present, then
save and advance the current frame. States are saved only when they could be needed: a frame whose inputs are
all confirmed is normally never rolled back to, so it is saved only when its checksum is wanted or it is an
anchor frame.

Anchors (every ``ANCHOR_INTERVAL`` frames, the last ``ANCHORS_KEPT`` kept) exist for one rare case: with three
or more players, survivors of a disconnection agree on the *earliest* last input any of them holds, so a peer
may have to drop inputs it had already confirmed and re-simulate from before them. It then loads the nearest
saved state at or before that frame; inputs before it are unchanged, so re-simulating from there is exact.
"""

from __future__ import annotations

from .input_queue import InputQueue
from .requests import AdvanceFrame, LoadState, Request, SaveState, StateCell

_NO_LIMIT = 2**31 - 1  # every player disconnected: nothing limits the confirmed frame
ANCHOR_INTERVAL = 30
ANCHORS_KEPT = 4
KEPT_LIMIT = 64  # anchors plus checksum cells awaiting their report; beyond this the oldest go


class SessionError(RuntimeError):
    """The caller used the session incorrectly (e.g. a missing local input, a state that was never saved)."""


class SyncLayer:
    """Frames, per-player input queues and the ring of saved states.

    Attributes:
        queues: One :class:`InputQueue` per player, in player order.
        current_frame: The next frame to simulate (= frames advanced so far).
        first_incorrect: Earliest already-simulated frame whose input turned out wrong, or ``None``.
        rollbacks: Number of rollbacks planned so far.
        rollback_frames: Total frames re-simulated by those rollbacks.
        max_rollback_depth: Deepest rollback so far.
        unrecoverable_rollbacks: Rollbacks that found no saved state old enough (only possible after a
            disconnection cut more than ``ANCHOR_INTERVAL * ANCHORS_KEPT`` frames back); the simulation then
            resumes from the oldest state held and the checksum exchange reports any divergence.
    """

    def __init__(self, num_players: int, default_input: bytes, max_prediction: int, checksum_interval: int) -> None:
        self.queues = [InputQueue(default_input) for _ in range(num_players)]
        self._ring = [StateCell() for _ in range(max_prediction + 2)]
        self._checksum_interval = checksum_interval
        self.current_frame = 0
        self.first_incorrect: int | None = None
        self.rollbacks = 0
        self.rollback_frames = 0
        self.max_rollback_depth = 0
        self.unrecoverable_rollbacks = 0
        self._kept: dict[int, StateCell] = {}
        self._released_before = 0

    @property
    def oldest_anchor(self) -> int | None:
        """Oldest anchor frame kept (inputs from there on must stay available for re-simulation)."""
        return min((f for f in self._kept if f % ANCHOR_INTERVAL == 0), default=None)

    def confirmed_frame(self) -> int:
        """Highest frame whose inputs are confirmed for every player (-1 when none)."""
        lowest = _NO_LIMIT
        for queue in self.queues:
            if queue.disconnected_after is None and queue.last_confirmed < lowest:
                lowest = queue.last_confirmed
        return lowest

    def note_misprediction(self, frame: int) -> None:
        """Records that ``frame`` was simulated with a wrong input (ignored if not simulated yet)."""
        if frame < self.current_frame and (self.first_incorrect is None or frame < self.first_incorrect):
            self.first_incorrect = frame

    def frame_inputs(self, frame: int) -> tuple:
        """The inputs (with status) to simulate ``frame`` with, recording predictions."""
        return tuple([q.get(frame) for q in self.queues])

    def cell(self, frame: int) -> StateCell:
        """The slot for ``frame``'s state: a kept cell for anchor and checksum frames, else the ring slot.

        Checksum frames get their own cell because their checksum is reported only once the frame is confirmed
        (and agreed), which may be after the ring has moved past it.
        """
        interval = self._checksum_interval
        if frame % ANCHOR_INTERVAL == 0 or (interval and frame % interval == 0):
            kept = self._kept.get(frame)
            if kept is None:
                kept = self._kept[frame] = StateCell()
                self._prune_kept()
            return kept
        return self._ring[frame % len(self._ring)]

    def _prune_kept(self) -> None:
        interval = self._checksum_interval
        anchors = set(sorted(f for f in self._kept if f % ANCHOR_INTERVAL == 0)[-ANCHORS_KEPT:])
        for frame in list(self._kept):
            awaiting_report = interval and frame % interval == 0 and frame >= self._released_before
            if not awaiting_report and frame not in anchors:
                del self._kept[frame]
        while len(self._kept) > KEPT_LIMIT:
            del self._kept[min(self._kept)]

    def release_checksums_before(self, frame: int) -> None:
        """Checksums of frames before ``frame`` were reported: their cells may go (recent anchors stay)."""
        self._released_before = frame
        self._prune_kept()

    def _saved_cells(self) -> list[StateCell]:
        return [*self._ring, *self._kept.values()]

    def _rollback_cell(self, target: int) -> StateCell:
        cell = self.cell(target)
        if cell.frame == target:
            return cell
        # Only after a disconnection cut an already confirmed input can a target lack its own save; re-simulating
        # from any earlier saved frame gives the same result because inputs before the target did not change.
        saved = [c for c in self._saved_cells() if c.frame >= 0]
        earlier = [c for c in saved if c.frame < target]
        if earlier:
            return max(earlier, key=lambda c: c.frame)
        if not saved:
            raise SessionError(
                f"cannot roll back to frame {target}: no state was ever saved (were all SaveState requests executed?)"
            )
        self.unrecoverable_rollbacks += 1
        return min(saved, key=lambda c: c.frame)

    def _maybe_save(self, frame: int, confirmed: int, requests: list[Request]) -> None:
        interval = self._checksum_interval
        wanted = interval > 0 and frame % interval == 0
        if wanted or frame > confirmed or frame % ANCHOR_INTERVAL == 0:
            requests.append(SaveState(frame, self.cell(frame), wanted))

    def plan_rollback(self, requests: list[Request], confirmed: int) -> None:
        """Appends the load and re-simulation requests of a pending rollback (if any) to ``requests``."""
        target = self.first_incorrect
        if target is None:
            return
        self.first_incorrect = None
        current = self.current_frame
        cell = self._rollback_cell(target)
        start = cell.frame
        # Later saves were made from wrong inputs; forget them so nothing can ever load them.
        for other in self._saved_cells():
            if other.frame > start:
                other.frame = -1
        requests.append(LoadState(start, cell))
        depth = current - start
        self.rollbacks += 1
        self.rollback_frames += depth
        if depth > self.max_rollback_depth:
            self.max_rollback_depth = depth
        for frame in range(start, current):
            if frame != start:
                self._maybe_save(frame, confirmed, requests)
            requests.append(AdvanceFrame(frame, self.frame_inputs(frame)))

    def plan_advance(self) -> list[Request]:
        """Requests for rolling back (if needed) and advancing the current frame; moves the frame counter."""
        requests: list[Request] = []
        confirmed = self.confirmed_frame()
        if self.first_incorrect is not None:
            self.plan_rollback(requests, confirmed)
        current = self.current_frame
        self._maybe_save(current, confirmed, requests)
        requests.append(AdvanceFrame(current, self.frame_inputs(current)))
        self.current_frame = current + 1
        return requests

    def checksum_of(self, frame: int) -> int | None:
        """The checksum saved for ``frame``'s state, if the ring still holds it."""
        cell = self.cell(frame)
        return cell.checksum if cell.frame == frame else None

    def discard_before(self, frame: int) -> None:
        """Lets every queue forget inputs of frames before ``frame``."""
        for queue in self.queues:
            queue.discard_before(frame)
