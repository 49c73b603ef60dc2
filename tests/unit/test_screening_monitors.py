"""In-game monitors as state machines: exact signal sequences for hidden tabs, idle players and sustained RTT."""

from __future__ import annotations

import pytest

from interactive_gym.screening import GameMonitors, HiddenTab, Idle, SustainedRtt
from interactive_gym.screening.monitors import CLEAR, EXCLUDE, WARN


def kinds(signals: list) -> list[tuple[str, str]]:
    return [(s.kind, s.rule) for s in signals]


# -- hidden tab -------------------------------------------------------------------------------------------------
def test_a_hidden_tab_is_warned_then_excluded_once() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=5, exclude_after_s=20)], now=0.0)
    assert m.poll(100.0) == []  # visible: nothing, however long
    assert m.visibility(100.0, False) == []
    assert m.poll(104.9) == []
    (warn,) = m.poll(105.0)
    assert (warn.kind, warn.rule, warn.figures["seconds_left"]) == (WARN, "hidden_tab", 15.0)
    assert warn.message == "Please come back to this tab within 15 seconds or the study will end for you."
    assert m.poll(110.0) == []  # warned once
    (out,) = m.poll(120.0)
    assert (out.kind, out.figures) == (EXCLUDE, {"lasted_s": 20.0, "exclude_after_s": 20.0, "warned": True})
    assert m.poll(130.0) == [] and m.visibility(131.0, True) == []  # nothing after an exclusion


def test_coming_back_clears_the_warning_and_restarts_the_clock() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=5, exclude_after_s=20)], now=0.0)
    m.visibility(0.0, False)
    assert kinds(m.poll(6.0)) == [(WARN, "hidden_tab")]
    (clear,) = m.visibility(7.0, True)
    assert (clear.kind, clear.figures) == (CLEAR, {"lasted_s": 7.0})
    assert m.poll(30.0) == []
    m.visibility(30.0, False)
    (again,) = m.poll(49.0)  # a new stretch is warned again, once
    assert again.message == "Please come back to this tab within 1 second or the study will end for you."
    assert m.poll(49.5) == []
    assert kinds(m.poll(50.0)) == [(EXCLUDE, "hidden_tab")]


def test_coming_back_before_the_warning_clears_nothing() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=5, exclude_after_s=20)], now=0.0)
    m.visibility(0.0, False)
    assert m.visibility(4.0, True) == []
    m.visibility(4.5, False)  # a second hide keeps counting from its own start
    assert m.poll(9.0) == []
    assert kinds(m.poll(9.5)) == [(WARN, "hidden_tab")]


def test_a_duplicate_hidden_report_keeps_the_first_start() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=5, exclude_after_s=20)], now=0.0)
    m.visibility(0.0, False)
    m.visibility(15.0, False)  # the same event twice (a retry): the tab has been hidden since 0
    assert kinds(m.poll(20.0)) == [(EXCLUDE, "hidden_tab")]


def test_a_tab_hidden_when_watching_starts_counts_from_then() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=1, exclude_after_s=3)], now=10.0, visible=False)
    assert kinds(m.poll(11.0)) == [(WARN, "hidden_tab")]
    assert kinds(m.poll(13.0)) == [(EXCLUDE, "hidden_tab")]


def test_a_long_gap_between_polls_excludes_without_a_late_warning() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=5, exclude_after_s=20)], now=0.0)
    m.visibility(0.0, False)
    (out,) = m.poll(25.0)
    assert out.kind == EXCLUDE and out.figures["warned"] is False


# -- idle -------------------------------------------------------------------------------------------------------
def test_an_idle_player_is_warned_then_excluded() -> None:
    m = GameMonitors([Idle(warn_after_s=30, exclude_after_s=60)], now=0.0)
    assert m.poll(29.0) == []
    (warn,) = m.poll(30.0)
    assert warn.kind == WARN and warn.message.startswith("Are you still there? Press a game key within 30 seconds")
    assert kinds(m.poll(60.0)) == [(EXCLUDE, "idle")]


def test_inputs_keep_the_player_in_and_clear_a_warning() -> None:
    m = GameMonitors([Idle(warn_after_s=30, exclude_after_s=60)], now=0.0)
    for t in range(0, 300, 20):
        assert m.input(float(t)) == []
        assert m.poll(t + 19.0) == []
    assert kinds(m.poll(310.0)) == [(WARN, "idle")]
    assert kinds(m.input(311.0)) == [(CLEAR, "idle")]
    assert m.poll(340.0) == []
    assert kinds(m.poll(371.0)) == [(EXCLUDE, "idle")]


# -- sustained RTT ----------------------------------------------------------------------------------------------
RTT = SustainedRtt(max_ms=200, bad_windows=3, of_windows=5, window_s=5)


def feed(m: GameMonitors, window: int, values: list[float]) -> list:
    """Samples spread over window ``window`` (starting at 0), then a poll at its end."""
    out = []
    for i, v in enumerate(values):
        out += m.rtt_sample(window * 5 + i + 0.5, v)
    return out


def test_three_slow_windows_of_five_exclude() -> None:
    m = GameMonitors([RTT], now=0.0)
    assert feed(m, 0, [300, 300, 300]) == []
    assert feed(m, 1, [50, 50, 50]) == []
    assert feed(m, 2, [250, 260, 50]) == []   # median 250: slow
    assert feed(m, 3, [50, 60, 70]) == []
    assert m.poll(20.0) == []                 # windows 0-3 closed: two slow
    assert feed(m, 4, [400, 400, 10]) == []
    (out,) = m.poll(25.0)                     # window 4 closes: three slow of the last five
    assert out.kind == EXCLUDE and out.rule == "sustained_rtt"
    assert out.figures["window_medians_ms"] == [300.0, 50.0, 250.0, 60.0, 400.0]
    assert out.figures["bad_windows"] == 3
    assert m.poll(60.0) == [] and m.rtt_sample(61.0, 900) == []


def test_single_spikes_never_exclude() -> None:
    m = GameMonitors([RTT], now=0.0)
    for w in range(40):
        assert feed(m, w, [30, 2000, 40]) == []  # one awful probe per window: the median is fine
    assert m.poll(1000.0) == []


def test_old_slow_windows_age_out() -> None:
    m = GameMonitors([RTT], now=0.0)
    feed(m, 0, [500])
    feed(m, 1, [500])
    for w in range(2, 7):
        feed(m, w, [20])
    assert feed(m, 7, [500]) == [] and m.poll(40.0) == []  # two slow windows in the last five


def test_windows_without_samples_are_skipped_not_counted() -> None:
    m = GameMonitors([RTT], now=0.0)
    feed(m, 0, [500])
    feed(m, 10, [500])   # a socket away for 45 s: no windows in between
    feed(m, 20, [500])
    (out,) = m.poll(105.0)
    assert out.figures["window_medians_ms"] == [500.0, 500.0, 500.0]


@pytest.mark.parametrize("at_bound", [200.0])
def test_a_window_at_the_bound_is_not_slow(at_bound: float) -> None:
    m = GameMonitors([SustainedRtt(max_ms=200, bad_windows=1, of_windows=1, window_s=5)], now=0.0)
    feed(m, 0, [at_bound])
    assert m.poll(5.0) == []
    feed(m, 1, [at_bound + 0.1])
    assert kinds(m.poll(10.0)) == [(EXCLUDE, "sustained_rtt")]


# -- together ---------------------------------------------------------------------------------------------------
def test_only_the_first_exclusion_is_given() -> None:
    m = GameMonitors([HiddenTab(warn_after_s=1, exclude_after_s=5), Idle(warn_after_s=1, exclude_after_s=5)],
                     now=0.0)
    m.visibility(0.0, False)
    assert sorted(kinds(m.poll(1.0))) == [(WARN, "hidden_tab"), (WARN, "idle")]
    (out,) = m.poll(5.0)
    assert (out.kind, out.rule) == (EXCLUDE, "hidden_tab")
    assert m.poll(10.0) == [] and m.input(10.0) == [] and m.visibility(10.0, True) == []


def test_monitors_without_their_rule_ignore_their_events() -> None:
    m = GameMonitors([], now=0.0)
    assert m.visibility(1.0, False) == [] and m.input(2.0) == [] and m.rtt_sample(3.0, 9999.0) == []
    assert m.poll(1e6) == []
