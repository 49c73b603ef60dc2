"""Versioned binary packet codec for peer-to-peer rollback sessions.

Every packet starts with a 10-byte header, little-endian::

    magic "IG" (2s) | version (B) | type (B) | sender player (B) | reserved 0 (B) | sender's current frame (I)

Bodies by type:

* INPUT: ack frame (i) | first input frame (I) | count (H) | sender's frame advantage (b) | disconnected mask (B) |
  last received frame per player (i * num_players) | count * sender's players * input_size bytes of inputs.
  The inputs are every one the receiver has not acknowledged (bounded), oldest first; for each frame, the sender's
  players in ascending order.
* PING / PONG: the ping sender's clock in ms (d); PONG echoes it.
* CHECKSUM: count (B) | count * (frame (I), checksum (Q)).
* EPISODE: count (B) | count * (episode (I), terminal frame (I)).
* DISCONNECT: empty (the sender is leaving).
* DELAY: count (B) | count * (episode (I), input delay (B)): the input delays player 0 announced (adaptive input
  delay, ``episode_delays.py``).

Decoding validates everything against the session's shape and raises :class:`PacketError` with a short reason key
(the session counts drops by that key). Nothing else escapes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"IG"
VERSION = 1
MAX_PACKET_BYTES = 65536
MAX_FRAME = 2**31 - 1
MAX_REPORTS = 16

INPUT = 1
PING = 2
PONG = 3
CHECKSUM = 4
EPISODE = 5
DISCONNECT = 6
DELAY = 7
PACKET_TYPES = (INPUT, PING, PONG, CHECKSUM, EPISODE, DISCONNECT, DELAY)

_HEADER = struct.Struct("<2sBBBBI")
_INPUT = struct.Struct("<iIHbB")
_TIME = struct.Struct("<d")
_COUNT = struct.Struct("<B")
_CHECKSUM_ITEM = struct.Struct("<IQ")
_EPISODE_ITEM = struct.Struct("<II")
_DELAY_ITEM = struct.Struct("<IB")
HEADER_SIZE = _HEADER.size


class PacketError(ValueError):
    """A packet was rejected; ``reason`` is a short key such as ``truncated`` or ``bad_version``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(slots=True)
class Header:
    """Fields common to every packet."""

    kind: int
    sender: int
    frame: int


@dataclass(slots=True)
class InputBody:
    """Decoded INPUT body; ``inputs`` holds ``count`` frames of the sender's players' inputs back to back."""

    ack_frame: int
    start_frame: int
    count: int
    advantage: int
    disconnected_mask: int
    last_frames: tuple[int, ...]
    inputs: bytes


def encode_header(kind: int, sender: int, frame: int) -> bytes:
    """Packs a header (the whole packet for DISCONNECT)."""
    return _HEADER.pack(MAGIC, VERSION, kind, sender, 0, frame)


def encode_input(
    sender: int,
    frame: int,
    ack_frame: int,
    start_frame: int,
    count: int,
    advantage: int,
    disconnected_mask: int,
    last_frames: tuple[int, ...] | list[int],
    inputs: bytes,
) -> bytes:
    """Packs an INPUT packet; ``advantage`` is clamped to a signed byte."""
    advantage = -128 if advantage < -128 else 127 if advantage > 127 else advantage
    return b"".join(
        (
            _HEADER.pack(MAGIC, VERSION, INPUT, sender, 0, frame),
            _INPUT.pack(ack_frame, start_frame, count, advantage, disconnected_mask),
            struct.pack(f"<{len(last_frames)}i", *last_frames),
            inputs,
        )
    )


def encode_time(kind: int, sender: int, frame: int, time_ms: float) -> bytes:
    """Packs a PING or PONG packet."""
    return _HEADER.pack(MAGIC, VERSION, kind, sender, 0, frame) + _TIME.pack(time_ms)


def encode_checksums(sender: int, frame: int, reports: list[tuple[int, int]]) -> bytes:
    """Packs a CHECKSUM packet of ``(frame, checksum)`` reports."""
    parts = [_HEADER.pack(MAGIC, VERSION, CHECKSUM, sender, 0, frame), _COUNT.pack(len(reports))]
    parts.extend(_CHECKSUM_ITEM.pack(f, c & 0xFFFFFFFFFFFFFFFF) for f, c in reports)
    return b"".join(parts)


def encode_episodes(sender: int, frame: int, reports: list[tuple[int, int]]) -> bytes:
    """Packs an EPISODE packet of ``(episode, terminal frame)`` reports."""
    parts = [_HEADER.pack(MAGIC, VERSION, EPISODE, sender, 0, frame), _COUNT.pack(len(reports))]
    parts.extend(_EPISODE_ITEM.pack(e, f) for e, f in reports)
    return b"".join(parts)


def encode_delays(sender: int, frame: int, announcements: list[tuple[int, int]]) -> bytes:
    """Packs a DELAY packet of ``(episode, input delay)`` announcements."""
    parts = [_HEADER.pack(MAGIC, VERSION, DELAY, sender, 0, frame), _COUNT.pack(len(announcements))]
    parts.extend(_DELAY_ITEM.pack(e, d) for e, d in announcements)
    return b"".join(parts)


def decode_header(data: bytes, num_players: int) -> Header:
    """Validates and unpacks the header of ``data``.

    Raises:
        PacketError: oversized, truncated, bad_magic, bad_version, unknown_type, bad_sender or absurd_frame.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PacketError("not_bytes", type(data).__name__)
    if len(data) > MAX_PACKET_BYTES:
        raise PacketError("oversized", f"{len(data)} bytes")
    if len(data) < HEADER_SIZE:
        raise PacketError("truncated", f"{len(data)} bytes is shorter than the header")
    magic, version, kind, sender, _reserved, frame = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise PacketError("bad_magic")
    if version != VERSION:
        raise PacketError("bad_version", f"version {version}, expected {VERSION}")
    if kind not in PACKET_TYPES:
        raise PacketError("unknown_type", f"type {kind}")
    if sender >= num_players:
        raise PacketError("bad_sender", f"player {sender} does not exist")
    if frame > MAX_FRAME:
        raise PacketError("absurd_frame", f"frame {frame}")
    return Header(kind, sender, frame)


def decode_input(data: bytes, num_players: int, sender_players: int, input_size: int, max_count: int) -> InputBody:
    """Unpacks an INPUT body, checking its length against the session's shape."""
    offset = HEADER_SIZE
    fixed_end = offset + _INPUT.size + 4 * num_players
    if len(data) < fixed_end:
        raise PacketError("truncated", "input packet shorter than its fixed part")
    ack_frame, start_frame, count, advantage, mask = _INPUT.unpack_from(data, offset)
    if count > max_count:
        raise PacketError("oversized", f"{count} inputs in one packet (limit {max_count})")
    if ack_frame < -1 or start_frame + count > MAX_FRAME:
        raise PacketError("absurd_frame", f"ack {ack_frame}, inputs {start_frame}+{count}")
    if mask >> num_players:
        raise PacketError("bad_sender", f"disconnected mask {mask:#x} names players that do not exist")
    last_frames = struct.unpack_from(f"<{num_players}i", data, offset + _INPUT.size)
    expected = fixed_end + count * sender_players * input_size
    if len(data) != expected:
        reason = "truncated" if len(data) < expected else "bad_length"
        raise PacketError(reason, f"input packet is {len(data)} bytes, expected {expected}")
    return InputBody(ack_frame, start_frame, count, advantage, mask, last_frames, bytes(data[fixed_end:]))


def decode_time(data: bytes) -> float:
    """Unpacks the time of a PING or PONG packet."""
    if len(data) != HEADER_SIZE + _TIME.size:
        raise PacketError("bad_length", "ping/pong packet")
    (value,) = _TIME.unpack_from(data, HEADER_SIZE)
    if value != value or value in (float("inf"), float("-inf")):
        raise PacketError("bad_value", "ping time is not finite")
    return value


def _decode_reports(data: bytes, item: struct.Struct) -> list[tuple[int, int]]:
    if len(data) < HEADER_SIZE + 1:
        raise PacketError("truncated", "report packet without a count")
    (count,) = _COUNT.unpack_from(data, HEADER_SIZE)
    if count > MAX_REPORTS:
        raise PacketError("oversized", f"{count} reports (limit {MAX_REPORTS})")
    if len(data) != HEADER_SIZE + 1 + count * item.size:
        raise PacketError("bad_length", "report packet")
    return [item.unpack_from(data, HEADER_SIZE + 1 + i * item.size) for i in range(count)]


def decode_checksums(data: bytes) -> list[tuple[int, int]]:
    """Unpacks the ``(frame, checksum)`` reports of a CHECKSUM packet."""
    return _decode_reports(data, _CHECKSUM_ITEM)


def decode_episodes(data: bytes) -> list[tuple[int, int]]:
    """Unpacks the ``(episode, terminal frame)`` reports of an EPISODE packet."""
    return _decode_reports(data, _EPISODE_ITEM)


def decode_delays(data: bytes) -> list[tuple[int, int]]:
    """Unpacks the ``(episode, input delay)`` announcements of a DELAY packet."""
    return _decode_reports(data, _DELAY_ITEM)


def decode_disconnect(data: bytes) -> None:
    """Checks that a DISCONNECT packet has no body."""
    if len(data) != HEADER_SIZE:
        raise PacketError("bad_length", "disconnect packet has a body")
