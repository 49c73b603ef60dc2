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

import struct
from collections.abc import Hashable

from . import codec
from .episode_delays import LEADER, DelayLedger
from .input_queue import InputQueueError
from .protocol import NetworkStats, PeerEndpoint
from .requests import (
    AdvanceResult,
    AdvanceStatus,
    Disconnected,
    Event,
    InputStatus,
    NetworkInterrupted,
    NetworkResumed,
    Request,
    Synchronized,
)
from .session_reports import PeerReports
from .settings import SessionSettings, SettingsError
from .sync_layer import SessionError, SyncLayer
from .time_sync import local_advantage

HISTORY_KEEP = 128  # confirmed inputs kept for confirmed_inputs() after they are no longer needed for rollback
DISCARD_EVERY = 32


class P2PSession:
    """A rollback session between this peer and one or more remote peers.

    Args:
        settings: Validated settings; must name at least one remote peer.
        now_ms: The caller's monotonic clock at creation (silence is measured from here).
    """

    def __init__(self, settings: SessionSettings, now_ms: float = 0.0) -> None:
        if not settings.remote_peers:
            raise SettingsError("a peer-to-peer session needs at least one remote peer (remote_peers is empty)")
        if not settings.local_players:
            raise SettingsError("a peer-to-peer session needs at least one local player (local_players is empty)")
        self.settings = settings
        self._n = settings.num_players
        self._sync = SyncLayer(self._n, settings.default_bytes, settings.max_prediction, settings.checksum_interval)
        self._local = tuple(sorted(settings.local_players))
        self._sender = self._local[0]
        self._local_queues = [self._sync.queues[p] for p in self._local]
        for queue in self._local_queues:
            for frame in range(settings.input_delay):
                queue.add(frame, settings.default_bytes)
        self._input_delay = settings.input_delay
        self._delays = DelayLedger(settings.largest_input_delay)
        self._endpoints = {peer: PeerEndpoint(peer, players, now_ms) for peer, players in settings.remote_peers.items()}
        self._owner = {p: ep for ep in self._endpoints.values() for p in ep.players}
        self._pending: dict[int, bytes] = {}
        self._outgoing: list[tuple[Hashable, bytes]] = []
        self._events: list[Event] = []
        self._reports = PeerReports(
            settings.checksum_interval, self._sender, self._local, self._endpoints, self._sync, self._events
        )
        self._slack = 2 * settings.max_inputs_per_packet
        self.dropped: dict[str, int] = {}
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

    @property
    def synchronized(self) -> bool:
        """Whether every remote peer has been heard from (or was disconnected)."""
        return all(ep.synchronized or ep.disconnected for ep in self._endpoints.values())

    def confirmed_inputs(self, frame: int) -> tuple[tuple[bytes, InputStatus], ...]:
        """Final inputs of ``frame`` (at most ``confirmed_frame``, and not older than about 128 frames before it)."""
        return tuple([q.confirmed(frame) for q in self._sync.queues])

    @property
    def input_delay(self) -> int:
        """Frames between a local input being added and the frame it applies to (now)."""
        return self._input_delay

    def recent_rtt_by_peer(self) -> dict[Hashable, tuple[float, ...]]:
        """The latest raw round-trip samples (ms, oldest first, at most 16) of every connected peer."""
        return {ep.peer: tuple(ep.recent_rtt_ms) for ep in self._endpoints.values() if not ep.disconnected}

    def announced_input_delay(self, episode: int) -> int | None:
        """The input delay player 0 announced for ``episode`` (see ``episode_delays.py``), or ``None``."""
        return self._delays.get(episode)

    def announced_input_delays(self) -> list[tuple[int, int]]:
        """Every ``(episode, delay)`` player 0 announced that this peer knows of (for a rejoin snapshot)."""
        return self._delays.all()

    def network_stats(self, peer: Hashable) -> NetworkStats:
        """Round-trip time, traffic and sync figures for the link to ``peer``."""
        return self._endpoints[peer].stats()

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

    def poll(self, now_ms: float) -> None:
        """Timers: pings, silence (interrupted/disconnected) and resending inputs when no packet went out."""
        settings = self.settings
        for ep in self._endpoints.values():
            if ep.disconnected:
                continue
            if now_ms >= ep.next_ping_ms:
                ep.next_ping_ms = now_ms + settings.ping_interval_ms
                self._send(ep, codec.encode_time(codec.PING, self._sender, self.current_frame, now_ms))
                if LEADER in self._local and self._delays.latest(1):
                    # Announcements ride along with every ping: a lost one is repeated within one interval.
                    self._send(ep, codec.encode_delays(self._sender, self.current_frame, self._delays.latest(2)))
            silent = ep.silent_ms(now_ms)
            if silent > settings.disconnect_timeout_ms:
                self._disconnect_endpoint(ep)
                continue
            if silent > settings.disconnect_notify_ms and not ep.interrupted:
                ep.interrupted = True
                self._events.append(NetworkInterrupted(ep.peer, silent))
            if not ep.sent_since_poll:
                self._send_inputs(ep)
            ep.sent_since_poll = False

    def handle_packet(self, peer: Hashable, data: bytes, now_ms: float) -> None:
        """Takes one received packet. Invalid packets are dropped and counted in ``dropped``; nothing raises."""
        try:
            self._handle(peer, data, now_ms)
        except codec.PacketError as exc:
            self._drop(exc.reason)
        except (InputQueueError, struct.error):
            self._drop("malformed")

    def drain_outgoing(self) -> list[tuple[Hashable, bytes]]:
        """Packets to send since the last call, as ``(peer, bytes)``."""
        out, self._outgoing = self._outgoing, []
        return out

    def drain_events(self) -> list[Event]:
        """Events since the last call, oldest first."""
        out = list(self._events)
        self._events.clear()  # cleared in place: the reports helper shares this list
        return out

    def report_episode_end(self, episode: int, frame: int) -> None:
        """Reports that ``episode`` ended on confirmed ``frame``; peers compare their reports."""
        self._reports.report_episode_end(episode, frame)

    def disconnect_player(self, player: int) -> None:
        """Declares a remote ``player``'s peer gone now (e.g. the server said it left)."""
        ep = self._owner.get(player)
        if ep is None:
            raise SessionError(f"player {player} is not a remote player of this session")
        if not ep.disconnected:
            self._disconnect_endpoint(ep)

    def player_disconnected(self, player: int) -> bool:
        """Whether remote ``player``'s peer is disconnected (its inputs are final from the cut on)."""
        ep = self._owner.get(player)
        if ep is None:
            raise SessionError(f"player {player} is not a remote player of this session")
        return ep.disconnected

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

    def close(self) -> None:
        """Tells every connected peer that this peer is leaving (best effort, one packet each)."""
        for ep in self._endpoints.values():
            if not ep.disconnected:
                self._send(ep, codec.encode_header(codec.DISCONNECT, self._sender, self.current_frame))

    # --- internals -----------------------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _send(self, ep: PeerEndpoint, packet: bytes) -> None:
        self._outgoing.append((ep.peer, ep.note_sent(packet)))

    def _send_delays(self) -> None:
        packet = codec.encode_delays(self._sender, self.current_frame, self._delays.latest(2))
        for ep in self._endpoints.values():
            if not ep.disconnected:
                self._send(ep, packet)

    def _on_delays(self, sender: int, announcements: list[tuple[int, int]]) -> None:
        if sender != LEADER:
            raise codec.PacketError("not_leader", f"player {sender} announced input delays")
        for episode, delay in announcements:
            if not self._delays.record(episode, delay):
                self._drop("conflicting_delay" if self._delays.get(episode) is not None else "bad_delay")

    def _peer_status(self) -> tuple[int, list[int]]:
        mask = 0
        last_frames = []
        for player, queue in enumerate(self._sync.queues):
            if queue.disconnected_after is not None:
                mask |= 1 << player
                last_frames.append(queue.disconnected_after)
            else:
                last_frames.append(queue.last_confirmed)
        return mask, last_frames

    def _send_inputs(self, ep: PeerEndpoint, status: tuple[int, list[int]] | None = None) -> None:
        mask, last_frames = status or self._peer_status()
        received = min(self._sync.queues[p].last_confirmed for p in ep.players)
        packet = ep.input_packet(
            self._sender,
            self._sync.current_frame,
            self._local_queues,
            received,
            ep.last_local_advantage,
            mask,
            last_frames,
            self.settings.max_inputs_per_packet,
        )
        self._outgoing.append((ep.peer, packet))

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

    def _disconnect_endpoint(self, ep: PeerEndpoint) -> None:
        ep.disconnected = True
        for player in ep.players:
            self._disconnect_player(player, self._sync.queues[player].last_confirmed)

    def _disconnect_player(self, player: int, reported_last: int) -> None:
        queue = self._sync.queues[player]
        cut = min(queue.last_confirmed, reported_last)
        for ep in self._endpoints.values():
            if not ep.disconnected and len(ep.last_frames) == self._n and player not in ep.players:
                cut = min(cut, ep.last_frames[player])
        if queue.disconnected_after is not None and queue.disconnected_after <= cut:
            return
        queue.disconnect(cut)
        first_default = (queue.disconnected_after if queue.disconnected_after is not None else cut) + 1
        self._sync.note_misprediction(first_default)
        self._events.append(Disconnected(player, first_default))

    def _handle(self, peer: Hashable, data: bytes, now_ms: float) -> None:
        ep = self._endpoints.get(peer)
        if ep is None:
            raise codec.PacketError("unknown_peer")
        header = codec.decode_header(data, self._n)
        if header.sender not in ep.players:
            raise codec.PacketError("bad_sender", f"player {header.sender} does not belong to peer {peer!r}")
        if ep.disconnected:
            raise codec.PacketError("from_disconnected_peer")
        if header.frame > self._sync.current_frame + self._slack:
            raise codec.PacketError("absurd_frame", f"sender frame {header.frame}")
        kind = header.kind
        if kind == codec.INPUT:
            self._handle_input(ep, data)
        elif kind == codec.PING:
            sent = codec.decode_time(data)
            self._send(ep, codec.encode_time(codec.PONG, self._sender, self.current_frame, sent))
        elif kind == codec.PONG:
            ep.on_pong(codec.decode_time(data), now_ms)
        elif kind == codec.CHECKSUM:
            self._reports.on_checksums(peer, codec.decode_checksums(data))
        elif kind == codec.EPISODE:
            self._reports.on_episodes(peer, codec.decode_episodes(data))
        elif kind == codec.DELAY:
            self._on_delays(header.sender, codec.decode_delays(data))
        else:  # DISCONNECT
            codec.decode_disconnect(data)
            self._note_received(ep, len(data), header.frame, now_ms)
            self._disconnect_endpoint(ep)
            return
        self._note_received(ep, len(data), header.frame, now_ms)

    def _note_received(self, ep: PeerEndpoint, size: int, frame: int, now_ms: float) -> None:
        first, resumed = ep.note_received(size, frame, now_ms)
        if first:
            self._events.append(Synchronized(ep.peer))
        if resumed:
            self._events.append(NetworkResumed(ep.peer))

    def _handle_input(self, ep: PeerEndpoint, data: bytes) -> None:
        settings = self.settings
        body = codec.decode_input(
            data, self._n, len(ep.players), settings.input_size, settings.max_inputs_per_packet
        )
        if body.ack_frame > self._local_queues[0].last_confirmed:
            raise codec.PacketError("absurd_frame", f"ack of frame {body.ack_frame} not yet sent")
        wrong = ep.receive_inputs(body, self._sync.queues, settings.input_size)
        if wrong is not None:
            self._sync.note_misprediction(wrong)
        if body.ack_frame > ep.acked_frame:
            ep.acked_frame = body.ack_frame
        ep.latest_ack = body.ack_frame
        ep.remote_advantage = body.advantage
        mask = body.disconnected_mask
        if len(self._endpoints) < 2:
            pass  # with a single remote peer its connection reports are never needed (no third party)
        elif len(ep.last_frames) != self._n:
            ep.last_frames = body.last_frames
        else:
            # Reports arrive out of order: keep the newest knowledge per player (a connected player's last frame
            # only grows; a disconnection cut only shrinks).
            ep.last_frames = tuple(
                min(old, new) if mask >> p & 1 else max(old, new)
                for p, (old, new) in enumerate(zip(ep.last_frames, body.last_frames, strict=True))
            )
        if mask:
            for player in range(self._n):
                if mask >> player & 1 and player not in self._local and player not in ep.players:
                    self._disconnect_player(player, body.last_frames[player])
