"""Per-remote-peer protocol state: acknowledgements, resend runs, round-trip time, silence and frame advantage.

The channel is unordered and never retransmits, so every input packet carries *all* of the local inputs the remote
peer has not acknowledged yet (oldest first, bounded), and acknowledges by frame the remote inputs received so far.
Losing, duplicating or reordering packets therefore only delays inputs; it never loses or corrupts them.

The bound is safe: a peer can run at most ``input_delay + max_prediction`` frames past the inputs it has from the
other, and vice versa, so unacknowledged inputs never exceed about twice that (settings enforce the margin).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from . import codec
from .input_queue import InputQueue
from .time_sync import TimeSync

RTT_SMOOTHING = 0.125
RECENT_RTT_SAMPLES = 16  # raw samples kept for the adaptive input delay (about 4 s at one ping per 250 ms)


@dataclass(frozen=True, slots=True)
class NetworkStats:
    """What this peer knows about the link to one remote peer."""

    peer: Hashable
    rtt_ms: float | None
    rtt_min_ms: float | None
    last_received_ms: float | None
    packets_sent: int
    packets_received: int
    bytes_sent: int
    bytes_received: int
    remote_frame: int
    acked_frame: int
    frames_ahead: float
    synchronized: bool
    interrupted: bool
    disconnected: bool


class PeerEndpoint:
    """Protocol state for one remote peer (which may supply several players)."""

    def __init__(self, peer: Hashable, players: tuple[int, ...], now_ms: float) -> None:
        self.peer = peer
        self.players = tuple(sorted(players))
        self.acked_frame = -1
        self.latest_ack = -1
        self.synchronized = False
        self.interrupted = False
        self.disconnected = False
        self.created_ms = now_ms
        self.last_received_ms: float | None = None
        self.rtt_ms: float | None = None
        self.rtt_min_ms: float | None = None
        self.recent_rtt_ms: deque[float] = deque(maxlen=RECENT_RTT_SAMPLES)
        self.next_ping_ms = now_ms
        self.remote_frame = -1
        self.remote_advantage = 0
        self.last_local_advantage = 0.0
        self.last_frames: tuple[int, ...] = ()
        self.disconnected_mask = 0
        self.time_sync = TimeSync()
        self.sent_since_poll = False
        self.packets_sent = 0
        self.packets_received = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # --- bookkeeping --------------------------------------------------------------------------------------

    def note_sent(self, packet: bytes) -> bytes:
        """Counts an outgoing packet and returns it."""
        self.packets_sent += 1
        self.bytes_sent += len(packet)
        return packet

    def note_received(self, size: int, sender_frame: int, now_ms: float) -> tuple[bool, bool]:
        """Counts a valid incoming packet.

        Returns:
            ``(first_packet, resumed)``: whether this synchronised the peer, and whether it ends an interruption.
        """
        self.packets_received += 1
        self.bytes_received += size
        if self.last_received_ms is None or now_ms > self.last_received_ms:
            self.last_received_ms = now_ms
        if sender_frame > self.remote_frame:
            self.remote_frame = sender_frame
        first = not self.synchronized
        self.synchronized = True
        resumed = self.interrupted
        self.interrupted = False
        return first, resumed

    def silent_ms(self, now_ms: float) -> float:
        """Time since the last valid packet (or since the session started, if none yet)."""
        since = self.last_received_ms if self.last_received_ms is not None else self.created_ms
        return now_ms - since

    def on_pong(self, sent_ms: float, now_ms: float) -> None:
        """Updates the round-trip estimate from an echoed ping time."""
        sample = now_ms - sent_ms
        if sample < 0 or sample > 60_000:
            return  # a clock-reset or forged echo; ignore rather than poison the estimate
        self.recent_rtt_ms.append(sample)
        if self.rtt_ms is None:
            self.rtt_ms = sample
        else:
            self.rtt_ms += RTT_SMOOTHING * (sample - self.rtt_ms)
        if self.rtt_min_ms is None or sample < self.rtt_min_ms:
            self.rtt_min_ms = sample

    def stats(self) -> NetworkStats:
        """A snapshot of this link's figures."""
        return NetworkStats(
            peer=self.peer,
            rtt_ms=self.rtt_ms,
            rtt_min_ms=self.rtt_min_ms,
            last_received_ms=self.last_received_ms,
            packets_sent=self.packets_sent,
            packets_received=self.packets_received,
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
            remote_frame=self.remote_frame,
            acked_frame=self.acked_frame,
            frames_ahead=self.time_sync.frames_ahead(),
            synchronized=self.synchronized,
            interrupted=self.interrupted,
            disconnected=self.disconnected,
        )

    # --- inputs --------------------------------------------------------------------------------------------

    def resend_floor(self) -> int:
        """The oldest local frame this peer may still need resent."""
        return min(self.acked_frame, self.latest_ack) + 1

    def input_packet(
        self,
        sender: int,
        frame: int,
        local_queues: list[InputQueue],
        received_frame: int,
        advantage: float,
        disconnected_mask: int,
        last_frames: list[int],
        max_count: int,
    ) -> bytes:
        """Builds an INPUT packet with every local input this peer has not acknowledged (oldest first, bounded).

        Args:
            sender: Lowest local player index (identifies the sender).
            frame: This peer's current frame.
            local_queues: Queues of the local players in ascending player order (all confirmed to the same frame).
            received_frame: Highest frame of this peer's inputs we hold contiguously (our acknowledgement).
            advantage: This peer's frame advantage over the remote one.
            disconnected_mask: Bit per player this peer considers disconnected.
            last_frames: Per player, the last frame this peer holds a real input for.
            max_count: Packet bound on inputs.
        """
        # Resend from the lower of the best and the latest acknowledgement: normally the same; if they differ
        # (reordering, or an acknowledgement the peer never meant), resending a little more is harmless, while
        # trusting a wrong one could leave the peer waiting forever for inputs nobody resends.
        start = max(min(self.acked_frame, self.latest_ack) + 1, local_queues[0].first_frame)
        last = local_queues[0].last_confirmed
        count = min(last - start + 1, max_count) if last >= start else 0
        if count == 0:
            data = b""
        elif len(local_queues) == 1:
            data = b"".join(local_queues[0].run(start, count))
        else:
            runs = [q.run(start, count) for q in local_queues]
            data = b"".join(b"".join(frame_inputs) for frame_inputs in zip(*runs, strict=True))
        packet = codec.encode_input(
            sender, frame, received_frame, start, count, round(advantage), disconnected_mask, last_frames, data
        )
        self.sent_since_poll = True
        return self.note_sent(packet)

    def receive_inputs(self, body: codec.InputBody, queues: list[InputQueue], input_size: int) -> int | None:
        """Adds the inputs of an INPUT body to this peer's players' queues.

        Returns:
            The earliest frame the simulation predicted wrongly, or ``None``.

        Raises:
            codec.PacketError: ``absurd_frame`` if the run starts after a gap (an honest peer never does that).
        """
        own = [queues[p] for p in self.players]
        held = min(q.last_confirmed for q in own)
        start = body.start_frame
        if start > held + 1 and body.count:
            raise codec.PacketError("absurd_frame", f"inputs start at {start} but frame {held + 1} is missing")
        wrong: int | None = None
        if start + body.count - 1 > held:
            stride = len(own) * input_size
            data = body.inputs
            first = max(start, held + 1)
            for frame in range(first, start + body.count):
                offset = (frame - start) * stride
                for i, queue in enumerate(own):
                    begin = offset + i * input_size
                    bad = queue.add(frame, data[begin : begin + input_size])
                    if bad is not None and (wrong is None or bad < wrong):
                        wrong = bad
        return wrong
