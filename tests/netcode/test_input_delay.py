"""Adaptive input delay: the rule (a table), the session's delay switch and announcements, and the per-episode
controller driving two sessions over the seeded network (agreement, no desync)."""

from __future__ import annotations

import pytest

from interactive_gym.netcode import codec
from interactive_gym.netcode.episode_delays import (
    MEASURE_GIVE_UP_MS,
    MEASURE_TIMEOUT_MS,
    DelayLedger,
    EpisodeDelays,
    worst_link,
)
from interactive_gym.netcode.input_delay import AutoInputDelay, choose_input_delay, one_way_frames
from interactive_gym.netcode.p2p_session import P2PSession
from interactive_gym.netcode.requests import AdvanceStatus
from interactive_gym.netcode.settings import SettingsError, p2p_settings
from interactive_gym.netcode.sync_layer import SessionError

# (RTT samples ms, fps, min, max, budget, prediction window) -> delay
RULE_CASES = [
    ([0.0], 30, 0, 6, 2, 8, 0),
    ([20.0, 25.0, 30.0], 30, 0, 6, 2, 8, 0),
    ([133.0], 30, 0, 6, 2, 8, 0),  # one-way 66.5 ms = 1.995 frames -> 2 frames, all within the budget
    ([134.0], 30, 0, 6, 2, 8, 1),  # 2.01 frames -> 3
    ([200.0], 30, 0, 6, 2, 8, 1),  # exactly 3 frames: no rounding up past it
    ([230.0, 190.0, 240.0], 30, 0, 6, 2, 8, 2),  # median 230 -> 3.45 -> 4 frames
    ([200.0, 200.0, 5000.0], 30, 0, 6, 2, 8, 1),  # one late pong does not move the median
    ([1000.0], 30, 0, 6, 2, 8, 6),  # 15 frames: clamped to max
    ([0.0], 30, 2, 6, 2, 8, 2),  # clamped to min
    ([200.0], 60, 0, 6, 2, 8, 4),  # 6 frames at 60 fps
    ([200.0], 30, 0, 6, 0, 8, 3),  # no rollback budget: the delay covers the whole one-way latency
    ([200.0], 30, 0, 6, 5, 1, 2),  # budget capped by the prediction window
    ([200.0], 30, 0, 6, 2, 0, 3),  # lockstep: every frame of latency becomes delay
    ([], 30, 0, 6, 2, 8, 6),  # no measurement: the largest delay
    ([float("nan"), -5.0], 30, 1, 4, 2, 8, 4),  # nothing usable counts as no measurement
]


@pytest.mark.parametrize(("samples", "fps", "low", "high", "budget", "window", "expected"), RULE_CASES)
def test_rule_table(samples, fps, low, high, budget, window, expected) -> None:
    assert choose_input_delay(samples, fps, low, high, budget, window) == expected


def test_rule_is_monotonic_in_rtt_and_within_bounds() -> None:
    delays = [choose_input_delay([float(rtt)], 30, 1, 5, 2, 8) for rtt in range(0, 1200, 7)]
    assert delays == sorted(delays) and min(delays) == 1 and max(delays) == 5


def test_one_way_frames_rounds_up_but_keeps_exact_multiples() -> None:
    assert [one_way_frames(r, 30) for r in (0, 1, 66.6, 66.7, 200, 200.1)] == [0, 1, 1, 2, 3, 4]


@pytest.mark.parametrize(("low", "high", "budget"), [(-1, 6, 2), (4, 3, 2), (0, 31, 2), (0, 6, -1), (0, 6, 1.5),
                                                     (True, 6, 2)])
def test_bad_bounds_say_what_is_allowed(low, high, budget) -> None:
    with pytest.raises(SettingsError):
        AutoInputDelay(low, high, budget)


def test_auto_settings_round_trip_through_the_config_and_refuse_a_broken_one() -> None:
    auto = AutoInputDelay(1, 5, 3)
    assert AutoInputDelay.from_config(auto.to_config()) == auto
    with pytest.raises(SettingsError, match="auto_input_delay"):
        AutoInputDelay.from_config({"min": 0})


def test_worst_link_is_the_one_with_the_highest_median() -> None:
    assert worst_link([(10.0, 300.0, 12.0), (50.0, 60.0, 55.0), ()]) == (50.0, 60.0, 55.0)
    assert worst_link([(), ()]) == ()


def test_ledger_first_value_is_final_and_bounded() -> None:
    ledger = DelayLedger(max_delay=4)
    assert ledger.record(0, 2) and ledger.record(0, 2)  # a repeat is harmless
    assert not ledger.record(0, 3) and ledger.get(0) == 2
    assert not ledger.record(1, 5) and ledger.get(1) is None
    assert not ledger.record(-1, 1)
    assert ledger.record(1, 4) and ledger.latest(2) == [(0, 2), (1, 4)]


# --- the session -------------------------------------------------------------------------------------------------

def pair(delay: int = 0, largest: int = 6) -> tuple[P2PSession, P2PSession]:
    return tuple(P2PSession(p2p_settings(2, me, {1 - me: 1 - me}, input_delay=delay, max_input_delay=largest,
                                         fps=30.0)) for me in (0, 1))  # type: ignore[return-value]


def exchange(a: P2PSession, b: P2PSession, now: float) -> None:
    for sender, receiver in ((a, b), (b, a)):
        for _peer, packet in sender.drain_outgoing():
            receiver.handle_packet(1 if receiver is a else 0, packet, now)


def test_raising_the_delay_fills_the_gap_with_the_default_input_and_lowering_it_keeps_what_was_sent() -> None:
    a, b = pair(delay=1)
    queue = a._local_queues[0]
    assert queue.last_confirmed == 0
    a.set_input_delay(4)
    assert queue.last_confirmed == 3 and [queue.confirmed(f)[0] for f in range(4)] == [b"\0"] * 4
    a.poll(0.0)
    b.poll(0.0)
    exchange(a, b, 0.0)
    a.add_local_input(0, b"\x07")
    assert a.advance_frame().status == AdvanceStatus.ADVANCED
    assert queue.last_confirmed == 4 and queue.confirmed(4)[0] == b"\x07"
    a.set_input_delay(2)  # frame 1 + 2 = 3 already has an input: nothing is committed until frame 5 is due
    a.add_local_input(0, b"\x09")
    a.advance_frame()
    assert queue.last_confirmed == 4
    for _ in range(2):
        a.add_local_input(0, b"\x09")
        a.advance_frame()
    assert queue.last_confirmed == 5 and queue.confirmed(5)[0] == b"\x09"


def test_delay_outside_the_sessions_range_is_refused() -> None:
    a, _ = pair(delay=2, largest=3)
    with pytest.raises(SessionError, match="0..3"):
        a.set_input_delay(4)


def test_only_player_0_announces_and_its_announcement_reaches_the_other_peer_once_final() -> None:
    a, b = pair()
    with pytest.raises(SessionError, match="player 0"):
        b.announce_input_delay(0, 1)
    a.announce_input_delay(0, 3)
    with pytest.raises(SessionError):
        a.announce_input_delay(0, 2)
    exchange(a, b, 0.0)
    assert b.announced_input_delay(0) == 3
    forged = codec.encode_delays(0, 0, [(0, 1), (1, 99)])
    b.handle_packet(0, forged, 0.0)
    assert b.announced_input_delay(0) == 3 and b.announced_input_delay(1) is None
    assert b.dropped == {"conflicting_delay": 1, "bad_delay": 1}
    a.handle_packet(1, codec.encode_delays(1, 0, [(5, 1)]), 0.0)  # player 1 may not announce
    assert a.announced_input_delay(5) is None and a.dropped == {"not_leader": 1}


def test_announcements_are_repeated_with_pings_so_a_lost_one_arrives() -> None:
    a, b = pair()
    a.announce_input_delay(0, 2)
    a.drain_outgoing()  # lost
    a.poll(1000.0)  # next ping
    exchange(a, b, 1000.0)
    assert b.announced_input_delay(0) == 2


class FakeSession:
    """The DelaySession protocol with scripted RTT samples (the controller's own tests)."""

    def __init__(self, samples: dict[int, tuple[float, ...]], leader_gone: bool = False) -> None:
        self.samples = samples
        self.input_delay = 0
        self.announced: dict[int, int] = {}
        self.leader_gone = leader_gone

    def set_input_delay(self, delay: int) -> None:
        self.input_delay = delay

    def announce_input_delay(self, episode: int, delay: int) -> None:
        assert episode not in self.announced
        self.announced[episode] = delay

    def announced_input_delay(self, episode: int) -> int | None:
        return self.announced.get(episode)

    def recent_rtt_by_peer(self) -> dict[int, tuple[float, ...]]:
        return self.samples

    def player_disconnected(self, player: int) -> bool:
        return self.leader_gone


def controller(leader: bool = True, episodes: int = 3) -> EpisodeDelays:
    return EpisodeDelays(AutoInputDelay(0, 6, 2), leader=leader, episodes=episodes, max_steps=100, fps=30,
                         prediction_window=8)


def test_leader_waits_for_three_samples_before_episode_0_then_announces_and_switches() -> None:
    session = FakeSession({1: (230.0, 240.0)})
    delays = controller()
    assert not delays.ready(session, 0.0, 0, 0, False)
    session.samples = {1: (230.0, 240.0, 235.0)}
    assert delays.ready(session, 100.0, 0, 0, False)
    assert session.announced == {0: 2} and session.input_delay == 2 and delays.delays() == [2, None, None]
    assert delays.rtt_used_ms == {0: 235.0}


def test_leader_decides_after_the_timeout_with_what_it_has() -> None:
    session = FakeSession({1: (20.0,)})
    delays = controller()
    assert not delays.ready(session, 0.0, 0, 0, False)
    assert not delays.ready(session, MEASURE_TIMEOUT_MS - 1, 0, 0, False)
    assert delays.ready(session, MEASURE_TIMEOUT_MS, 0, 0, False)
    assert session.announced == {0: 0}  # one sample of every peer is enough after the timeout


def test_leader_waits_longer_for_a_peer_with_no_sample_then_takes_the_largest_delay() -> None:
    """Found by the Chromium test under load: no pong within 2 s made episode 0 play with delay 6."""
    session = FakeSession({1: (), 2: (20.0, 20.0, 20.0)})
    delays = controller()
    assert not delays.ready(session, 0.0, 0, 0, False)
    assert not delays.ready(session, MEASURE_TIMEOUT_MS, 0, 0, False)
    assert not delays.ready(session, MEASURE_GIVE_UP_MS - 1, 0, 0, False)
    session.samples = {1: (), 2: (20.0, 20.0, 20.0)}
    assert delays.ready(session, MEASURE_GIVE_UP_MS, 0, 0, False)
    assert session.announced == {0: 0}  # the worst link with samples decides; none at all would give 6
    alone = FakeSession({1: ()})
    other = controller()
    assert not other.ready(alone, 0.0, 0, 0, False)
    assert other.ready(alone, MEASURE_GIVE_UP_MS, 0, 0, False) and alone.announced == {0: 6}
    late = FakeSession({1: ()})
    third = controller()
    assert not third.ready(late, 0.0, 0, 0, False)
    late.samples = {1: (20.0,)}
    assert third.ready(late, MEASURE_TIMEOUT_MS + 500, 0, 0, False) and late.announced == {0: 0}


def test_leader_announces_the_next_episode_a_second_before_the_last_step() -> None:
    session = FakeSession({1: (20.0, 20.0, 20.0)})
    delays = controller()
    assert delays.ready(session, 0.0, 0, 0, False)
    assert delays.ready(session, 0.0, 0, 69, False) and 1 not in session.announced
    session.samples = {1: (400.0, 400.0, 400.0)}
    assert delays.ready(session, 0.0, 0, 70, False) and session.announced[1] == 4
    assert session.input_delay == 0  # applied only when episode 1 starts
    assert delays.ready(session, 0.0, 1, 0, False) and session.input_delay == 4


def test_an_early_episode_end_makes_the_leader_decide_at_the_next_start() -> None:
    session = FakeSession({1: (20.0, 20.0, 20.0)})
    delays = controller()
    delays.ready(session, 0.0, 0, 0, False)
    assert delays.ready(session, 0.0, 1, 0, False) and session.announced == {0: 0, 1: 0}


def test_non_leader_waits_for_the_announcement_and_never_uses_its_own_estimate() -> None:
    session = FakeSession({0: (900.0, 900.0, 900.0)})
    delays = controller(leader=False)
    assert not delays.ready(session, 0.0, 0, 0, False)
    assert not delays.ready(session, 10 * MEASURE_TIMEOUT_MS, 0, 0, False)
    session.announced[0] = 1
    assert delays.ready(session, 0.0, 0, 0, False) and session.input_delay == 1
    assert not delays.ready(session, 0.0, 1, 0, False)  # the next episode waits again


def test_without_the_leader_the_others_keep_their_delay() -> None:
    session = FakeSession({}, leader_gone=True)
    session.input_delay = 3
    delays = controller(leader=False)
    assert delays.ready(session, 0.0, 0, 0, False) and delays.delays()[0] == 3


def test_fixed_delay_never_waits_and_records_the_delay() -> None:
    session = FakeSession({})
    session.input_delay = 2
    delays = EpisodeDelays(None, leader=False, episodes=2, max_steps=10, fps=30, prediction_window=8)
    assert delays.ready(session, 0.0, 0, 0, False) and delays.ready(session, 0.0, 1, 0, False)
    assert delays.delays() == [2, 2] and session.announced == {}


def test_finished_game_needs_no_delay() -> None:
    delays = controller(leader=False)
    assert delays.ready(FakeSession({}), 0.0, 3, 0, True)
