"""EpisodeDelays across a rejoin: the delay a snapshot carries, and a resumed page not switching mid-episode."""

from __future__ import annotations

from interactive_gym.netcode.episode_delays import EpisodeDelays
from interactive_gym.netcode.input_delay import AutoInputDelay


class ScriptedSession:
    """The DelaySession protocol with no RTT samples and announcements set by the test."""

    def __init__(self, input_delay: int = 0) -> None:
        self.input_delay = input_delay
        self.announced: dict[int, int] = {}
        self.switches: list[int] = []

    def set_input_delay(self, delay: int) -> None:
        self.switches.append(delay)
        self.input_delay = delay

    def announce_input_delay(self, episode: int, delay: int) -> None:
        raise AssertionError("a non-leader never announces")

    def announced_input_delay(self, episode: int) -> int | None:
        return self.announced.get(episode)

    def recent_rtt_by_peer(self) -> dict[int, tuple[float, ...]]:
        return {}

    def player_disconnected(self, player: int) -> bool:
        return False


def follower(auto: AutoInputDelay | None) -> EpisodeDelays:
    return EpisodeDelays(auto, leader=False, episodes=3, max_steps=100, fps=30, prediction_window=8)


def test_an_auto_snapshot_carries_the_delay_the_episode_switched_to_and_none_before() -> None:
    delays = follower(AutoInputDelay(0, 6, 2))
    session = ScriptedSession()
    assert delays.for_snapshot(0) is None
    session.announced[0] = 4
    assert delays.ready(session, 0.0, 0, 0, False)
    assert delays.for_snapshot(0) == 4 and delays.for_snapshot(1) is None


def test_a_fixed_delay_snapshot_carries_no_delay_even_once_the_episode_started() -> None:
    delays = follower(None)
    session = ScriptedSession(input_delay=2)
    assert delays.ready(session, 0.0, 0, 0, False) and delays.delays()[0] == 2
    assert delays.for_snapshot(0) is None


def test_a_page_resumed_mid_episode_plays_on_without_waiting_or_switching_again() -> None:
    delays = follower(AutoInputDelay(0, 6, 2))
    session = ScriptedSession(input_delay=3)  # the resumed session already plays episode 1 with delay 3
    delays.resumed_in(1, 3)
    assert delays.ready(session, 0.0, 1, 40, False)  # no announcement known here, yet no wait
    assert session.switches == [] and delays.delays() == [None, 3, None]
    assert not delays.ready(session, 0.0, 2, 0, False)  # the next episode waits for its announcement as usual
