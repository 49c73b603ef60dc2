"""A thin facade that runs a rollback session against an environment, one call per frame.

The browser calls :meth:`P2PRunner.tick` once per animation frame with the local input bytes and the packets
received since the last frame; it gets back the packets to send and what happened. The runner executes the
session's save/load/advance requests against a :class:`RollbackEnv` (see ``interactive_gym.envs.state`` for the
adapter that makes any Gymnasium-style environment one), applies time-sync waits, reports confirmed episode ends to
peers, and optionally records the confirmed input history.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .p2p_session import P2PSession
from .requests import (
    AdvanceFrame,
    AdvanceStatus,
    Disconnected,
    Event,
    InputStatus,
    LoadState,
    Request,
    SaveState,
)

TIME_SYNC_EVERY = 30  # frames between looking at the time-sync recommendation (avoids oscillating)


class RollbackEnv(Protocol):
    """What the runner needs from an environment."""

    def save_state(self) -> Any:
        """Returns a snapshot of the full simulation state (never mutated afterwards)."""

    def load_state(self, state: Any) -> None:
        """Restores a snapshot returned by :meth:`save_state` (without keeping references into it)."""

    def checksum(self, state: Any) -> int:
        """A 64-bit checksum of a snapshot, identical on every peer for identical states."""

    def advance(self, frame: int, inputs: tuple[tuple[bytes, InputStatus], ...]) -> int | None:
        """Steps once; returns the number of the episode that ended on this frame, else ``None``."""


@dataclass(slots=True)
class TickResult:
    """What one :meth:`P2PRunner.tick` did.

    Attributes:
        status: ADVANCED, PREDICTION_THRESHOLD or NOT_SYNCHRONIZED (the session's answer), WAITING (skipped on
            purpose for time sync) or IDLE (``advance=False``). Late inputs are applied in every case.
        waited: True when this tick was a time-sync wait.
        frames_simulated: Env steps executed, re-simulation included.
        rollback_depth: Frames re-simulated by a rollback this tick (0 if none).
        outgoing: ``(peer, bytes)`` packets to send now.
        events: Session events since the last tick.
    """

    status: AdvanceStatus
    waited: bool = False
    frames_simulated: int = 0
    rollback_depth: int = 0
    outgoing: list[tuple[Hashable, bytes]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class P2PRunner:
    """Drives a :class:`P2PSession` and a :class:`RollbackEnv` together.

    Args:
        session: The session (its settings define players and input size).
        env: The environment adapter.
        record_history: Keep every confirmed frame's inputs in :attr:`history` (for data logging and tests).
        time_sync: Follow the session's recommendation to wait frames when running ahead.
    """

    def __init__(
        self, session: P2PSession, env: RollbackEnv, record_history: bool = True, time_sync: bool = True
    ) -> None:
        self.session = session
        self.env = env
        self.record_history = record_history
        self.time_sync = time_sync
        self.history: list[tuple[tuple[bytes, InputStatus], ...]] = []
        self.confirmed_through = -1
        self.waited_frames = 0
        self.frames_simulated = 0
        self._wait_left = 0
        self._terminals: dict[int, int] = {}

    def tick(
        self,
        now_ms: float,
        local_inputs: Mapping[int, bytes],
        packets: Iterable[tuple[Hashable, bytes]] = (),
        advance: bool = True,
    ) -> TickResult:
        """Handles received packets, timers, and (unless waiting or ``advance`` is False) one frame.

        Args:
            now_ms: The caller's monotonic clock.
            local_inputs: Input bytes for each local player.
            packets: ``(peer, bytes)`` received since the last tick.
            advance: False to only keep the connection alive and apply late inputs (e.g. after the game ended).
        """
        session = self.session
        for peer, data in packets:
            session.handle_packet(peer, data, now_ms)
        session.poll(now_ms)
        if not advance:
            result = TickResult(AdvanceStatus.IDLE)
            self._execute(session.settle(), result)
        elif self._wait_left > 0:
            self._wait_left -= 1
            self.waited_frames += 1
            result = TickResult(AdvanceStatus.WAITING, waited=True)
            self._execute(session.settle(), result)
        else:
            for player, data in local_inputs.items():
                session.add_local_input(player, data)
            outcome = session.advance_frame()
            result = TickResult(outcome.status)
            # A stalled frame still applies late inputs, so the present state never lags behind what is known.
            requests = outcome.requests if outcome.status == AdvanceStatus.ADVANCED else session.settle()
            self._execute(requests, result)
            frame = session.current_frame
            if self.time_sync and outcome.status == AdvanceStatus.ADVANCED and frame % TIME_SYNC_EVERY == 0:
                self._wait_left = session.recommended_wait_frames()
        result.events = session.drain_events()
        for event in result.events:
            if isinstance(event, Disconnected) and event.frame <= self.confirmed_through:
                # Survivors agreed on an earlier cut than this peer had confirmed (3+ players): those frames'
                # inputs changed, so collect them again.
                del self.history[event.frame :]
                self.confirmed_through = event.frame - 1
        self._collect_confirmed()
        result.outgoing = session.drain_outgoing()
        result.events.extend(session.drain_events())
        return result

    def _execute(self, requests: list[Request], result: TickResult) -> None:
        env = self.env
        terminals = self._terminals
        for request in requests:
            if isinstance(request, AdvanceFrame):
                ended = env.advance(request.frame, request.inputs)
                if ended is not None:
                    terminals[request.frame] = ended
                result.frames_simulated += 1
            elif isinstance(request, SaveState):
                state = env.save_state()
                checksum = env.checksum(state) if request.checksum_wanted else None
                request.cell.save(request.frame, state, checksum)
            elif isinstance(request, LoadState):
                env.load_state(request.cell.state)
                frame = request.frame
                result.rollback_depth = self.session.current_frame - frame
                for stale in [f for f in terminals if f >= frame]:
                    del terminals[stale]
        self.frames_simulated += result.frames_simulated

    def _collect_confirmed(self) -> None:
        session = self.session
        confirmed = session.confirmed_frame
        first = self.confirmed_through + 1
        if confirmed < first:
            return
        for frame in range(first, confirmed + 1):
            if self.record_history:
                self.history.append(session.confirmed_inputs(frame))
            episode = self._terminals.pop(frame, None)
            if episode is not None:
                session.report_episode_end(episode, frame)
        self.confirmed_through = confirmed
