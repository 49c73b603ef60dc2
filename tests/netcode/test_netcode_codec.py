"""Packet codec: round trips, and every kind of malformed packet rejected with a reason."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interactive_gym.netcode import codec


def test_input_round_trip() -> None:
    packet = codec.encode_input(1, 77, 40, 41, 3, -300, 0b10, [40, 79], b"abcdef")
    header = codec.decode_header(packet, 2)
    assert (header.kind, header.sender, header.frame) == (codec.INPUT, 1, 77)
    body = codec.decode_input(packet, 2, 2, 1, 128)
    assert (body.ack_frame, body.start_frame, body.count) == (40, 41, 3)
    assert body.advantage == -128  # clamped to a signed byte
    assert body.disconnected_mask == 0b10 and body.last_frames == (40, 79)
    assert body.inputs == b"abcdef"


def test_report_and_time_round_trips() -> None:
    packet = codec.encode_checksums(0, 5, [(60, 2**64 - 1), (120, 7)])
    assert codec.decode_checksums(packet) == [(60, 2**64 - 1), (120, 7)]
    assert codec.decode_episodes(codec.encode_episodes(0, 5, [(3, 900)])) == [(3, 900)]
    assert codec.decode_time(codec.encode_time(codec.PING, 0, 1, 1234.5)) == 1234.5
    codec.decode_disconnect(codec.encode_header(codec.DISCONNECT, 0, 0))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "truncated"),
        (b"IG\x01\x01", "truncated"),
        (b"AB" + bytes(8), "bad_magic"),
        (b"IG\x02\x01" + bytes(6), "bad_version"),
        (b"IG\x01\x63" + bytes(6), "unknown_type"),
        (codec.encode_header(codec.PING, 7, 0), "bad_sender"),
        (bytes(codec.MAX_PACKET_BYTES + 1), "oversized"),
        ("text", "not_bytes"),
    ],
)
def test_bad_headers(data: bytes, reason: str) -> None:
    with pytest.raises(codec.PacketError) as info:
        codec.decode_header(data, 2)
    assert info.value.reason == reason


def test_bad_bodies() -> None:
    good = codec.encode_input(1, 0, -1, 0, 2, 0, 0, [0, 0], b"ab")
    with pytest.raises(codec.PacketError, match="truncated"):
        codec.decode_input(good[:-1], 2, 1, 1, 128)
    with pytest.raises(codec.PacketError, match="bad_length"):
        codec.decode_input(good + b"x", 2, 1, 1, 128)
    with pytest.raises(codec.PacketError, match="oversized"):
        codec.decode_input(good, 2, 1, 1, 1)
    with pytest.raises(codec.PacketError, match="bad_sender"):
        codec.decode_input(codec.encode_input(1, 0, -1, 0, 0, 0, 0b100, [0, 0], b""), 2, 1, 1, 128)
    with pytest.raises(codec.PacketError, match="absurd_frame"):
        codec.decode_input(codec.encode_input(1, 0, -7, 0, 0, 0, 0, [0, 0], b""), 2, 1, 1, 128)
    with pytest.raises(codec.PacketError, match="oversized"):
        codec.decode_checksums(codec.encode_checksums(0, 0, [(i, i) for i in range(17)]))
    with pytest.raises(codec.PacketError, match="bad_length"):
        codec.decode_checksums(codec.encode_checksums(0, 0, [(1, 1)])[:-2])
    with pytest.raises(codec.PacketError, match="bad_length"):
        codec.decode_disconnect(codec.encode_header(codec.DISCONNECT, 0, 0) + b"x")
    with pytest.raises(codec.PacketError, match="bad_value"):
        codec.decode_time(codec.encode_time(codec.PONG, 0, 0, float("inf")))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_only_ever_raise_packet_error(data: bytes) -> None:
    try:
        header = codec.decode_header(data, 3)
    except codec.PacketError:
        return
    decoders = {
        codec.INPUT: lambda: codec.decode_input(data, 3, 1, 2, 128),
        codec.PING: lambda: codec.decode_time(data),
        codec.PONG: lambda: codec.decode_time(data),
        codec.CHECKSUM: lambda: codec.decode_checksums(data),
        codec.EPISODE: lambda: codec.decode_episodes(data),
        codec.DISCONNECT: lambda: codec.decode_disconnect(data),
    }
    with contextlib.suppress(codec.PacketError):
        decoders[header.kind]()
