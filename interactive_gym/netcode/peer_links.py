"""The links of a p2p session to its remote peers: packets in and out, silence, and disconnection.

:class:`PeerLinks` is the wire side of :class:`~interactive_gym.netcode.p2p_session.P2PSession` (which extends it
with the frame side: local inputs, advancing, input delays and rejoin). It owns one
:class:`~interactive_gym.netcode.protocol.PeerEndpoint` per remote peer and the input queues every packet feeds:

* received packets are validated and dispatched by kind (:meth:`PeerLinks.handle_packet`); an invalid one is
  dropped and counted by reason, never raised;
* :meth:`PeerLinks.poll` sends pings (with player 0's input-delay announcements), resends unacknowledged inputs
  when nothing else went out, and turns silence into ``NetworkInterrupted`` and then a disconnection;
* a disconnection cuts the player's inputs at the frame every survivor holds (:meth:`PeerLinks._disconnect_player`),
  so survivors agree on where the default input starts.

Sans-I/O like the session: packets to send are queued for :meth:`PeerLinks.drain_outgoing`, events for
:meth:`PeerLinks.drain_events`.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable

from . import codec
from .episode_delays import LEADER, DelayLedger
from .input_queue import InputQueueError
from .protocol import NetworkStats, PeerEndpoint
from .requests import Disconnected, Event, NetworkInterrupted, NetworkResumed, Synchronized
from .session_reports import PeerReports
from .settings import SessionSettings, SettingsError
from .sync_layer import SessionError, SyncLayer


class PeerLinks:
    """The remote peers of one session, the input queues their packets feed, and what goes out to them.

    Args:
        settings: Validated settings; must name at least one remote peer and one local player.
        now_ms: The caller's monotonic clock at creation (silence is measured from here).
    """

    def __init__(self, settings: SessionSettings, now_ms: float) -> None:
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
        self._delays = DelayLedger(settings.largest_input_delay)
        self._endpoints = {peer: PeerEndpoint(peer, players, now_ms) for peer, players in settings.remote_peers.items()}
        self._owner = {p: ep for ep in self._endpoints.values() for p in ep.players}
        self._outgoing: list[tuple[Hashable, bytes]] = []
        self._events: list[Event] = []
        self._reports = PeerReports(
            settings.checksum_interval, self._sender, self._local, self._endpoints, self._sync, self._events
        )
        self._slack = 2 * settings.max_inputs_per_packet
        self.dropped: dict[str, int] = {}

    @property
    def synchronized(self) -> bool:
        """Whether every remote peer has been heard from (or was disconnected)."""
        return all(ep.synchronized or ep.disconnected for ep in self._endpoints.values())

    def recent_rtt_by_peer(self) -> dict[Hashable, tuple[float, ...]]:
        """The latest raw round-trip samples (ms, oldest first, at most 16) of every connected peer."""
        return {ep.peer: tuple(ep.recent_rtt_ms) for ep in self._endpoints.values() if not ep.disconnected}

    def network_stats(self, peer: Hashable) -> NetworkStats:
        """Round-trip time, traffic and sync figures for the link to ``peer``."""
        return self._endpoints[peer].stats()

    def poll(self, now_ms: float) -> None:
        """Timers: pings, silence (interrupted/disconnected) and resending inputs when no packet went out."""
        settings = self.settings
        for ep in self._endpoints.values():
            if ep.disconnected:
                continue
            if now_ms >= ep.next_ping_ms:
                ep.next_ping_ms = now_ms + settings.ping_interval_ms
                self._send(ep, codec.encode_time(codec.PING, self._sender, self._sync.current_frame, now_ms))
                if LEADER in self._local and self._delays.latest(1):
                    # Announcements ride along with every ping: a lost one is repeated within one interval.
                    self._send(ep, codec.encode_delays(self._sender, self._sync.current_frame, self._delays.latest(2)))
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

    def close(self) -> None:
        """Tells every connected peer that this peer is leaving (best effort, one packet each)."""
        for ep in self._endpoints.values():
            if not ep.disconnected:
                self._send(ep, codec.encode_header(codec.DISCONNECT, self._sender, self._sync.current_frame))

    # --- internals -----------------------------------------------------------------------------------------

    def _drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    def _send(self, ep: PeerEndpoint, packet: bytes) -> None:
        self._outgoing.append((ep.peer, ep.note_sent(packet)))

    def _send_delays(self) -> None:
        packet = codec.encode_delays(self._sender, self._sync.current_frame, self._delays.latest(2))
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
            self._send(ep, codec.encode_time(codec.PONG, self._sender, self._sync.current_frame, sent))
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
