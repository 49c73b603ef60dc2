"""Groups across scenes: the remembered-group matchmaker (every arrival order), the shared memory, the start-up
checks of keep_group_from, and the start countdown setting."""

from __future__ import annotations

import itertools

import pytest
from still_env import still_game

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StaticScene
from interactive_gym.configurations.remote_config import ConfigError
from interactive_gym.scenes.keep_group import check_keep_groups, kept_scene_ids
from interactive_gym.scenes.scene import SceneConfigError
from interactive_gym.scenes.stager import RandomizeOrder
from interactive_gym.server.modes.groups import GroupMemory
from interactive_gym.server.waiting_room import WaitingRoom, remembered_group_matchmaker


# -- the matchmaker ----------------------------------------------------------------------------------------------
def _room(groups: dict[str, tuple[str, ...]], size: int = 2) -> WaitingRoom:
    return WaitingRoom(size, 60, remembered_group_matchmaker(groups.get))


PAIRS = {"a1": ("a1", "a2"), "a2": ("a1", "a2"), "b1": ("b1", "b2"), "b2": ("b1", "b2")}


@pytest.mark.parametrize("order", list(itertools.permutations(["a1", "a2", "b1", "b2"])))
def test_every_arrival_order_re_forms_exactly_the_remembered_pairs(order: tuple[str, ...]) -> None:
    room = _room(PAIRS)
    formed = [group for t, pid in enumerate(order) if (group := room.join(pid, t)) is not None]
    assert sorted(formed) == [["a1", "a2"], ["b1", "b2"]]  # role order kept, never mixed
    assert room.waiting() == []


def test_a_group_waits_for_an_absent_member_and_never_takes_someone_else() -> None:
    room = _room(PAIRS)
    assert room.join("a1", 0) is None
    assert room.join("a2", 1, present=False) is None  # tab hidden
    assert room.join("b1", 2) is None  # a1 and b1 are both present and waiting: still no mixed pair
    assert room.set_presence("a2", True) == ["a1", "a2"]
    assert room.waiting() == ["b1"]


def test_waiters_without_a_remembered_group_pair_up_among_themselves() -> None:
    room = _room(PAIRS)
    assert room.join("a1", 0) is None
    assert room.join("new1", 1) is None
    assert room.join("new2", 2) == ["new1", "new2"]
    assert room.waiting() == ["a1"]


def test_a_remembered_group_of_another_size_never_forms() -> None:
    room = _room({"x": ("x", "y", "z"), "y": ("x", "y", "z"), "z": ("x", "y", "z")}, size=2)
    for t, pid in enumerate(("x", "y", "z")):
        assert room.join(pid, t) is None


def test_group_memory_keeps_only_named_scenes_and_the_last_game() -> None:
    memory = GroupMemory(["first"])
    assert memory.remember("other", ["p", "q"]) is False and memory.group_of("other", "p") is None
    assert memory.remember("first", ["p", "q"]) is True
    assert memory.group_of("first", "q") == ("p", "q")
    memory.remember("first", ["q", "r"])  # a repeat of the scene: q's last group counts
    assert memory.group_of("first", "q") == ("q", "r") and memory.group_of("first", "p") == ("p", "q")


# -- start-up checks ---------------------------------------------------------------------------------------------
game = still_game


def _problems(*items: object) -> list[str]:
    stager = Stager([*items, EndScene()])  # type: ignore[list-item]
    for scene in stager.all_scenes():
        if isinstance(scene, GymScene):
            scene.check()
    return check_keep_groups(stager)


def test_a_valid_keep_group_has_no_problems_across_modes() -> None:
    first = game("first")
    assert _problems(first, StaticScene("break"), game("second", keep_group_from="first", mode="p2p")) == []
    assert kept_scene_ids(Stager([first, game("again", keep_group_from="first"), EndScene()])) == {"first"}


@pytest.mark.parametrize("items, fix", [
    (lambda: [game("second", keep_group_from="missing")], "is not a game scene of this experiment"),
    (lambda: [StaticScene("page"), game("second", keep_group_from="page")], "is not a game scene"),
    (lambda: [game("solo", humans=1), game("second", keep_group_from="solo")], "same number of humans"),
    (lambda: [game("pair"), game("trio", humans=3, keep_group_from="pair")], "same number of humans"),
    (lambda: [game("second", keep_group_from="later"), game("later")], "must come before this scene"),
    (lambda: [RandomizeOrder([game("x"), game("y", keep_group_from="x")])], "not in the same block"),
])
def test_keep_group_mistakes_say_what_to_change(items: object, fix: str) -> None:
    problems = _problems(*items())  # type: ignore[operator]
    assert len(problems) == 1 and fix in problems[0], problems


def test_remote_config_validate_reports_keep_group_problems() -> None:
    config = RemoteConfig().experiment("kg", stager=Stager([game("b", keep_group_from="a"), game("a"), EndScene()]))
    with pytest.raises(ConfigError, match="must come before this scene"):
        config.validate(environ={})


def test_keep_group_from_itself_or_with_a_matchmaker_is_refused_at_once() -> None:
    with pytest.raises(SceneConfigError, match="another, earlier game scene"):
        game("same", keep_group_from="same")
    with pytest.raises(SceneConfigError, match="cannot have a matchmaker too"):
        game("mm", keep_group_from="x", matchmaker=lambda waiters, size: None)


# -- countdown ---------------------------------------------------------------------------------------------------
def test_countdown_defaults_to_three_seconds_for_multi_human_scenes_only() -> None:
    assert game("pair").countdown_s == 3.0
    assert game("solo", humans=1).countdown_s == 0.0
    assert game("none", start_countdown_s=0).countdown_s == 0.0
    assert game("solo5", humans=1, start_countdown_s=5).countdown_s == 5.0


@pytest.mark.parametrize("bad", [-1, 31, float("nan"), True, "3"])
def test_bad_countdowns_are_refused(bad: object) -> None:
    with pytest.raises(SceneConfigError, match="start_countdown_s must be a number of seconds from 0 to 30"):
        game("bad", start_countdown_s=bad)
