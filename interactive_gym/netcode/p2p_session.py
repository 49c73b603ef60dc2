"""The peer-to-peer rollback session: sans-I/O, symmetric (no host), GGPO-style.

Per frame the caller:

1. hands in packets received since last frame with :meth:`P2PSession.handle_packet` (bytes, any order),
2. calls :meth:`P2PSession.poll` with its monotonic clock in ms (pings, resends, silence detection),
3. adds each local player's input with :meth:`P2PSession.add_local_input`,
4. calls :meth:`P2PSession.advance_frame` and executes the returned requests in order,
5. sends what :meth:`P2PSession.drain_outgoing` returns and reacts to :meth:`P2PSession.drain_events`.

The session never reads a clock, opens a socket or interprets an input.
"""

from __future__ import annotations

from .episode_delays import LEADER
from .peer_links import PeerLinks
from .protocol import PeerEndpoint
from .requests import AdvanceResult, AdvanceStatus, InputStatus, Request
from .settings import SessionSettings
from .sync_layer import SessionError
from .time_sync import local_advantage

HISTORY_KEEP = 128  # confirmed inputs kept for confirmed_inputs() after they are no longer needed for rollback
DISCARD_EVERY = 32


class P2PSession(PeerLinks):
    """A rollback session between this peer and one or more remote peers.

    The links to the peers (packets, pings, silence, disconnection) are :class:`PeerLinks`; this class adds the
    frame side: local inputs, advancing with rollback, input delays and rejoin.

    Args:
        settings: Validated settings; must name at least one remote peer.
        now_ms: The caller's monotonic clock at creation (silence is measured from here).
    """

    def __init__(self, settings: SessionSettings, now_ms: float = 0.0) -> None:
        super().__init__(settings, now_ms)
        for queue in self._local_queues:
            for frame in range(settings.input_delay):
                queue.add(frame, settings.default_bytes)
        self._input_delay = settings.input_delay
        self._pending: dict[int, bytes] = {}
        self.stalls = 0
        self.not_synchronized = 0

    # --- state ----------------------------------------------------------------------------------------------

    @property
    def current_frame(self) -> int:
        """The next frame to simulate."""
        return self._sync.current_frame

    @property
    def confirmed_frame(self) -> int:
        """Highest simulated frame whose inputs are final for every player (-1 when none)."""
        return min(self._sync.confirmed_frame(), self._sync.current_frame - 1)

    def confirmed_inputs(self, frame: int) -> tuple[tuple[bytes, InputStatus], ...]:
        """Final inputs of ``frame`` (at most ``confirmed_frame``, and not older than about 128 frames before it)."""
        return tuple([q.confirmed(frame) for q in self._sync.queues])

    @property
    def input_delay(self) -> int:
        """Frames between a local input being added and the frame it applies to (now)."""
        return self._input_delay

    def announced_input_delay(self, episode: int) -> int | None:
        """The input delay player 0 announced for ``episode`` (see ``episode_delays.py``), or ``None``."""
        return self._delays.get(episode)

    def announced_input_delays(self) -> list[tuple[int, int]]:
        """Every ``(episode, delay)`` player 0 announced that this peer knows of (for a rejoin snapshot)."""
        return self._delays.all()

    def frames_ahead(self) -> float:
        """How many frames this peer runs ahead of the furthest-behind connected peer (smoothed)."""
        values = [ep.time_sync.frames_ahead() for ep in self._endpoints.values() if not ep.disconnected]
        return max(values, default=0.0)

    def recommended_wait_frames(self) -> int:
        """Frames to skip now (not advance) so that this peer stops running ahead; usually 0."""
        values = [ep.time_sync.recommend_wait() for ep in self._endpoints.values() if not ep.disconnected]
        return max(values, default=0)

    def stats(self) -> dict[str, object]:
        """Counters: frames, rollbacks and their depth, stalls, desyncs and dropped packets by reason."""
        sync = self._sync
        return {
            "frames": sync.current_frame,
            "confirmed_frame": self.confirmed_frame,
            "rollbacks": sync.rollbacks,
            "rollback_frames": sync.rollback_frames,
            "max_rollback_depth": sync.max_rollback_depth,
            "unrecoverable_rollbacks": sync.unrecoverable_rollbacks,
            "stalls": self.stalls,
            "not_synchronized": self.not_synchronized,
            "desyncs": self._reports.desyncs,
            "missing_local_checksums": self._reports.missing_checksums,
            "dropped": dict(self.dropped),
        }

    # --- per-frame API --------------------------------------------------------------------------------------

    def add_local_input(self, player: int, data: bytes) -> None:
        """Sets ``player``'s input for the next advanced frame (replaces one given earlier this frame)."""
        if player not in self._local:
            raise SessionError(f"player {player} is not local to this session (local: {list(self._local)})")
        if len(data) != self.settings.input_size:
            raise SessionError(f"input must be {self.settings.input_size} bytes, got {len(data)}")
        self._pending[player] = bytes(data)

    def set_input_delay(self, delay: int) -> None:
        """Local inputs given from now on apply ``delay`` frames after the next frame to simulate.

        Raising the delay leaves frames no local input was given for: they get the default input, like the first
        ``input_delay`` frames of a session. Lowering it makes the next few inputs fall on frames that already have
        one; those are not committed (as on a stalled frame), so nothing already sent changes. Either way every
        frame keeps exactly one input per player, so a peer's delay never affects what the peers simulate: call it
        at an episode's start (``episode_delays.py``) so that an episode is played with one delay.

        Raises:
            SessionError: for a delay outside ``0..max_input_delay``.
        """
        largest = self.settings.largest_input_delay
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= largest:
            raise SessionError(f"input delay must be 0..{largest} frames (max_input_delay), got {delay!r}")
        first_target = self._sync.current_frame + delay
        default = self.settings.default_bytes
        for queue in self._local_queues:
            for frame in range(queue.last_confirmed + 1, first_target):
                queue.add(frame, default)
        self._input_delay = delay

    def announce_input_delay(self, episode: int, delay: int) -> None:
        """Player 0 only: announces the input delay of ``episode`` to every peer (final once announced).

        Raises:
            SessionError: on a peer without player 0, for a delay outside ``0..max_input_delay``, or a different
                delay for an episode already announced.
        """
        if LEADER not in self._local:
            raise SessionError(f"only the peer of player {LEADER} announces input delays")
        if not isinstance(episode, int) or not isinstance(delay, int) or not self._delays.record(episode, delay):
            raise SessionError(f"cannot announce delay {delay!r} for episode {episode!r} (already "
                               f"{self._delays.get(episode)!r}; allowed 0..{self.settings.largest_input_delay})")
        self._send_delays()

    def advance_frame(self) -> AdvanceResult:
        """Plans the next frame: rollback and re-simulation if needed, then save and advance.

        Returns:
            ``ADVANCED`` with the requests to execute in order, or ``PREDICTION_THRESHOLD`` /
            ``NOT_SYNCHRONIZED`` with no requests (try again next frame). On PREDICTION_THRESHOLD the local input
            was already committed to frame ``current_frame + input_delay`` and sent.
        """
        if not self.synchronized:
            self.not_synchronized += 1
            return AdvanceResult(AdvanceStatus.NOT_SYNCHRONIZED, [])
        pending = self._pending
        if len(pending) != len(self._local):
            missing = [p for p in self._local if p not in pending]
            raise SessionError(f"add_local_input() was not called for local players {missing} this frame")
        sync = self._sync
        self._reports.report_checksums()
        current = sync.current_frame
        target = current + self._input_delay
        committed = self._local_queues[0].last_confirmed < target
        if committed:
            # Commit (and send) the local input even if this frame stalls: in lockstep the remote peer may be
            # waiting for exactly this input. A stalled frame keeps the first input given for it.
            for player, queue in zip(self._local, self._local_queues, strict=True):
                queue.add(target, pending[player])
        pending.clear()
        if current - sync.confirmed_frame() > self.settings.max_prediction:
            self.stalls += 1
            if committed:
                status = self._peer_status()
                for ep in self._endpoints.values():
                    if not ep.disconnected:
                        self._send_inputs(ep, status)
            return AdvanceResult(AdvanceStatus.PREDICTION_THRESHOLD, [])
        requests = sync.plan_advance()
        self._after_advance(current)
        return AdvanceResult(AdvanceStatus.ADVANCED, requests)

    def settle(self) -> list[Request]:
        """Rolls back and re-simulates now if a late input requires it, without advancing a new frame.

        Useful when the caller stops advancing (end of a game) but still wants the present state to reflect every
        input received. Returns the requests to execute (empty when nothing changed).
        """
        requests: list[Request] = []
        self._reports.report_checksums()
        self._sync.plan_rollback(requests, self._sync.confirmed_frame())
        return requests

    def report_episode_end(self, episode: int, frame: int) -> None:
        """Reports that ``episode`` ended on confirmed ``frame``; peers compare their reports."""
        self._reports.report_episode_end(episode, frame)

    # --- rejoin (a reloaded peer resumes from a snapshot; see rejoin.py) -------------------------------------

    def inputs_from(self, frame: int) -> tuple[tuple[bytes, ...], ...]:
        """Per player, the confirmed inputs this peer holds for frames ``frame, frame+1, ...`` (for a snapshot)."""
        runs = []
        for queue in self._sync.queues:
            count = queue.last_confirmed - frame + 1
            runs.append(tuple(queue.run(frame, count)) if count > 0 and queue.disconnected_after is None else ())
        return tuple(runs)

    def reconnect_player(self, player: int, now_ms: float) -> int:
        """A disconnected remote ``player`` returns on a new page resumed at :attr:`current_frame`.

        Its inputs are the default up to the frame before and its own from :attr:`current_frame` on; the link to
        its peer starts afresh (the new page knows nothing of the old one's packets) and counts as synchronized,
        so this peer keeps playing (predicting the player) until the new page's inputs arrive.

        Returns:
            The frame the player's own inputs start at.

        Raises:
            SessionError: ``player`` is not remote, not disconnected, or the state is not final to that frame.
        """
        old = self._owner.get(player)
        if old is None:
            raise SessionError(f"player {player} is not a remote player of this session")
        if not old.disconnected:
            raise SessionError(f"player {player} is still connected; disconnect it before it rejoins")
        frame = self._sync.current_frame
        if self.confirmed_frame < frame - 1 or self._sync.first_incorrect is not None:
            raise SessionError(f"frame {frame} is not final yet: a rejoin needs a confirmed state")
        for p in old.players:
            self._sync.queues[p].reconnect(frame)
        ep = PeerEndpoint(old.peer, old.players, now_ms)
        ep.synchronized = True
        ep.acked_frame = ep.latest_ack = frame - 1  # the snapshot carries our inputs from `frame` on
        self._endpoints[old.peer] = ep  # the same dict the reports helper reads
        for p in ep.players:
            self._owner[p] = ep
        return frame

    @classmethod
    def resumed(cls, settings: SessionSettings, frame: int, inputs: tuple[tuple[bytes, ...], ...],
                disconnected: tuple[int, ...] = (), now_ms: float = 0.0, *,
                input_delay: int | None = None, delays: tuple[tuple[int, int], ...] = ()) -> P2PSession:
        """A session that starts at ``frame`` (a reloaded page resuming from a rejoin snapshot).

        Args:
            settings: The game's settings for this peer.
            frame: The snapshot frame; the caller loads the state of that frame before the first advance.
            inputs: Per player, the sender's inputs from ``frame`` on (the local players' are ignored).
            disconnected: Players whose inputs are the default from ``frame`` on.
            now_ms: The caller's clock.
            input_delay: The delay the episode at ``frame`` is played with (``input_delay="auto"``: the one
                announced for it); ``None``: the settings' delay. The local inputs of ``frame`` up to that delay
                are the default, as the peers expect after :meth:`reconnect_player`.
            delays: The ``(episode, delay)`` announcements known to the sender (final, like any announcement).

        Raises:
            SessionError: a delay outside ``0..max_input_delay``, or conflicting announcements.
        """
        delay = settings.input_delay if input_delay is None else input_delay
        if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= settings.largest_input_delay:
            raise SessionError(f"input delay must be 0..{settings.largest_input_delay} frames, got {delay!r}")
        session = cls(settings, now_ms)
        for episode, announced in delays:
            if not session._delays.record(episode, announced):
                raise SessionError(f"announced delay {announced!r} for episode {episode!r} does not fit")
        session._input_delay = delay
        sync = session._sync
        for player, queue in enumerate(sync.queues):
            queue.restart_at(frame)
            if player in session._local:
                for f in range(frame, frame + delay):
                    queue.add(f, settings.default_bytes)
            elif player in disconnected:
                queue.disconnect(frame - 1)
            else:
                for offset, data in enumerate(inputs[player]):
                    queue.add(frame + offset, data)
        sync.current_frame = frame
        session._reports.start_at(frame)
        for ep in session._endpoints.values():
            ep.synchronized = True  # the sender is alive (it just sent the snapshot)
            if all(p in disconnected for p in ep.players):
                ep.disconnected = True
        return session

    # --- internals -----------------------------------------------------------------------------------------

    def _after_advance(self, frame: int) -> None:
        settings = self.settings
        status = self._peer_status()
        reports = self._reports.packets(frame) if frame % self._reports.every == 0 else []
        for ep in self._endpoints.values():
            if ep.disconnected:
                continue
            advantage = local_advantage(frame, ep.remote_frame, ep.rtt_ms, settings.fps)
            ep.last_local_advantage = advantage
            ep.time_sync.record(advantage, ep.remote_advantage)
            self._send_inputs(ep, status)
            for packet in reports:
                self._send(ep, packet)
        if frame % DISCARD_EVERY == 0:
            needed = min((ep.resend_floor() for ep in self._endpoints.values() if not ep.disconnected), default=frame)
            floor = min(self.confirmed_frame, needed) - HISTORY_KEEP
            anchor = self._sync.oldest_anchor
            self._sync.discard_before(floor if anchor is None else min(floor, anchor))
