"""P2P session behaviour: settings validation, bad packets, disconnection, desync and episode reports, RTT."""

from __future__ import annotations

import struct

import pytest
from session_helpers import deliver, execute, pair

from interactive_gym.netcode import codec
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.requests import (
    AdvanceStatus,
    DesyncDetected,
    Disconnected,
    EpisodeAgreed,
    EpisodeMismatch,
    InputStatus,
    NetworkInterrupted,
    NetworkResumed,
    Synchronized,
)
from interactive_gym.netcode.settings import SessionSettings, SettingsError, p2p_settings
from interactive_gym.netcode.sync_layer import SessionError


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_prediction": -1}, "max_prediction"),
        ({"input_size": 0}, "input_size"),
        ({"input_delay": 99}, "input_delay"),
        ({"checksum_interval": -5}, "checksum_interval"),
        ({"default_input": b"\x00\x00"}, "default_input"),
        ({"fps": 0}, "fps"),
        ({"disconnect_notify_ms": 9000.0}, "disconnect_notify_ms"),
        ({"max_inputs_per_packet": 4}, "max_inputs_per_packet"),
    ],
)
def test_invalid_settings_fail_with_a_clear_message(options: dict, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        p2p_settings(2, 0, {"b": 1}, **options)


def test_invalid_player_layouts() -> None:
    with pytest.raises(SettingsError, match="num_players"):
        SessionSettings(num_players=9, local_players=(0,))
    with pytest.raises(SettingsError, match="claimed twice"):
        SessionSettings(num_players=2, local_players=(0,), remote_peers={"b": (0,)})
    with pytest.raises(SettingsError, match="neither local nor"):
        SessionSettings(num_players=3, local_players=(0,), remote_peers={"b": (1,)})
    with pytest.raises(SettingsError, match="must be in 0..1"):
        SessionSettings(num_players=2, local_players=(0,), remote_peers={"b": (2,)})
    with pytest.raises(SettingsError, match="at least one remote peer"):
        P2PSession(SessionSettings(num_players=1, local_players=(0,)))


def test_local_input_misuse_raises() -> None:
    a, _ = pair()
    with pytest.raises(SessionError, match="not local"):
        a.add_local_input(1, b"\x00")
    with pytest.raises(SessionError, match="1 bytes"):
        a.add_local_input(0, b"\x00\x00")


def _synced_pair(**options: object) -> tuple[P2PSession, P2PSession]:
    a, b = pair(**options)
    a.poll(0.0)
    b.poll(0.0)
    deliver(a, b, "a")
    deliver(b, a, "b")
    return a, b


def _valid_input_packet(sender: int = 1, frame: int = 0, start: int = 0, count: int = 1, ack: int = -1) -> bytes:
    return codec.encode_input(sender, frame, ack, start, count, 0, 0, [-1, -1], bytes(count))


BAD_PACKETS = {
    "truncated": b"IG\x01",
    "bad_magic": b"XX" + _valid_input_packet()[2:],
    "bad_version": b"IG\x09" + _valid_input_packet()[3:],
    "unknown_type": codec.encode_header(77, 1, 0),
    "bad_sender": codec.encode_header(codec.DISCONNECT, 5, 0),
    "absurd_frame": codec.encode_header(codec.PING, 1, 2**31 + 5) + struct.pack("<d", 1.0),
    "oversized": _valid_input_packet(count=200),
    "bad_length": _valid_input_packet() + b"\x00",
    "not_bytes": None,
}


@pytest.mark.parametrize("reason", sorted(BAD_PACKETS))
def test_malformed_packets_are_dropped_and_counted(reason: str) -> None:
    a, b = _synced_pair()
    a.handle_packet("b", BAD_PACKETS[reason], 1.0)  # type: ignore[arg-type]
    assert a.dropped.get(reason) == 1
    # The session still works and agrees with its peer afterwards.
    _play(a, b, frames=20)
    assert [a.confirmed_inputs(f) for f in range(15)] == [b.confirmed_inputs(f) for f in range(15)]


def test_more_bad_packets() -> None:
    a, _ = _synced_pair()
    a.handle_packet("nobody", _valid_input_packet(), 1.0)
    a.handle_packet("b", codec.encode_header(codec.DISCONNECT, 0, 0), 1.0)  # player 0 is not peer b's
    a.handle_packet("b", codec.encode_header(codec.PING, 1, 10_000), 1.0)  # far beyond any possible frame
    a.handle_packet("b", _valid_input_packet(start=5), 1.0)  # a gap: frames 1..4 missing
    a.handle_packet("b", _valid_input_packet(ack=40), 1.0)  # acknowledges inputs never sent
    a.handle_packet("b", b"\x00" * 70_000, 1.0)
    a.handle_packet("b", codec.encode_time(codec.PONG, 1, 0, float("nan")), 1.0)
    assert a.dropped == {"unknown_peer": 1, "bad_sender": 1, "absurd_frame": 3, "oversized": 1, "bad_value": 1}


def _play(a: P2PSession, b: P2PSession, frames: int, now: float = 0.0, step_ms: float = 16.0) -> float:
    state_a: list[int] = []
    state_b: list[int] = []
    for frame in range(frames):
        now += step_ms
        for session, player, state, peer_name, other in ((a, 0, state_a, "a", b), (b, 1, state_b, "b", a)):
            session.poll(now)
            session.add_local_input(player, bytes([frame % 3]))
            execute(session.advance_frame().requests, state)
            deliver(session, other, peer_name, now)
    for session in (a, b):
        session.poll(now + step_ms)
    deliver(a, b, "a", now + step_ms)
    deliver(b, a, "b", now + step_ms)
    return now


def test_synchronized_events_and_rtt() -> None:
    a, b = pair()
    assert a.advance_frame().status == AdvanceStatus.NOT_SYNCHRONIZED
    a.poll(0.0)
    b.poll(0.0)
    deliver(a, b, "a", 10.0)
    assert b.drain_events() == [Synchronized("a")]
    deliver(b, a, "b", 20.0)  # B's pong to A's ping (sent at 0) arrives at 20
    assert a.drain_events() == [Synchronized("b")]
    assert a.network_stats("b").rtt_ms == pytest.approx(20.0)


def test_silent_peer_is_interrupted_then_disconnected() -> None:
    a, b = _synced_pair(disconnect_notify_ms=500.0, disconnect_timeout_ms=2000.0)
    now = _play(a, b, frames=10)
    a.drain_events()
    last_b = a.confirmed_frame
    a.poll(now + 600.0)
    assert a.drain_events() == [NetworkInterrupted("b", 600.0)]
    a.poll(now + 2500.0)
    events = a.drain_events()
    assert len(events) == 1 and isinstance(events[0], Disconnected) and events[0].player == 1
    cut = events[0].frame
    assert cut >= last_b + 1
    # A keeps playing alone; B's inputs from the cut on are the default, flagged DISCONNECTED.
    state: list[int] = []
    for _ in range(30):
        a.add_local_input(0, b"\x01")
        result = a.advance_frame()
        assert result.status == AdvanceStatus.ADVANCED
        execute(result.requests, state)
    assert a.confirmed_inputs(cut + 3)[1] == (b"\x00", InputStatus.DISCONNECTED)
    assert a.network_stats("b").disconnected
    # Packets from the disconnected peer are ignored.
    b.poll(now + 2600.0)
    assert deliver(b, a, "b", now + 2600.0) > 0
    assert a.dropped.get("from_disconnected_peer", 0) >= 1


def test_interrupted_peer_resumes() -> None:
    a, b = _synced_pair(disconnect_notify_ms=100.0, disconnect_timeout_ms=5000.0)
    a.drain_events()
    a.poll(300.0)
    assert isinstance(a.drain_events()[0], NetworkInterrupted)
    b.poll(300.0)
    deliver(b, a, "b", 310.0)
    assert a.drain_events() == [NetworkResumed("b")]


def test_disconnect_notice_and_explicit_disconnect() -> None:
    a, b = _synced_pair()
    _play(a, b, frames=5)
    a.drain_events()
    b.close()
    deliver(b, a, "b", 200.0)
    assert [type(e) for e in a.drain_events()] == [Disconnected]
    c, d = _synced_pair()
    c.disconnect_player(1)
    assert [type(e) for e in c.drain_events()][-1] is Disconnected
    with pytest.raises(SessionError):
        c.disconnect_player(0)


def test_desync_is_detected_with_the_frame_number() -> None:
    a, b = _synced_pair(checksum_interval=10, input_delay=1)
    a.drain_events()
    b.drain_events()
    state_a: list[int] = []
    state_b: list[int] = []
    now = 0.0
    for frame in range(40):
        now += 16.0
        for session, player, state, name, other in ((a, 0, state_a, "a", b), (b, 1, state_b, "b", a)):
            session.poll(now)
            session.add_local_input(player, b"\x01")
            execute(session.advance_frame().requests, state)
            if session is b and frame == 14:
                state_b.append(999)  # B's simulation silently diverges after frame 14
            deliver(session, other, name, now)
    events = [e for e in a.drain_events() + b.drain_events() if isinstance(e, DesyncDetected)]
    assert events, "the divergence must be reported"
    assert min(e.frame for e in events) == 20  # first checksum frame after the divergence
    assert all(e.local_checksum != e.remote_checksum for e in events)
    assert a.stats()["desyncs"] >= 1


def test_matching_checksums_raise_no_event() -> None:
    a, b = _synced_pair(checksum_interval=5)
    _play(a, b, frames=60)
    assert not [e for e in a.drain_events() + b.drain_events() if isinstance(e, DesyncDetected)]
    assert a._reports.checksums.latest_local(1)[0][0] >= 40  # comparisons really happened up to recent frames


def test_episode_reports_agree_or_mismatch() -> None:
    a, b = _synced_pair()
    _play(a, b, frames=8)
    a.drain_events()
    b.drain_events()
    a.report_episode_end(0, 100)
    b.report_episode_end(0, 100)
    a.report_episode_end(1, 250)
    b.report_episode_end(1, 251)
    _play(a, b, frames=8, now=500.0)
    events_a = a.drain_events()
    assert EpisodeAgreed(0, 100) in events_a
    assert EpisodeMismatch(1, 250, 251, "b") in events_a
