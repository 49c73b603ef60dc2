"""The advance rule: every (claimed scene, real position) pair, exhaustively for a small sequence."""

from __future__ import annotations

import itertools

import pytest

from interactive_gym.server.flow.scene_moves import Advance, AdvanceInput, Claim, judge_advance, judge_claim

IDS = ["consent", "game", "survey", "game", "end"]  # a repeated scene id, as a Repeat makes


@pytest.mark.parametrize(("index", "claimed_index"), list(itertools.product(range(len(IDS)), range(-1, len(IDS) + 1))))
def test_claims_relate_only_to_the_current_and_the_just_left_scene(index: int, claimed_index: int) -> None:
    for claimed_id in set(IDS) | {"nope"}:
        claim = judge_claim(IDS, index, claimed_index, claimed_id)
        named = 0 <= claimed_index < len(IDS) and IDS[claimed_index] == claimed_id
        if named and claimed_index == index:
            assert claim is Claim.CURRENT
        elif named and claimed_index == index - 1:
            assert claim is Claim.JUST_LEFT
        else:
            assert claim is Claim.STALE


def state(index: int, game_over: bool = True) -> AdvanceInput:
    return AdvanceInput(IDS, index, is_game=IDS[index] == "game", game_over=game_over, is_end=IDS[index] == "end")


@pytest.mark.parametrize("index", range(len(IDS)))
def test_only_the_current_scene_moves_and_only_by_one(index: int) -> None:
    for claimed_index, claimed_id in itertools.product(range(len(IDS)), set(IDS)):
        verdict = judge_advance(state(index), claimed_index, claimed_id)
        if verdict is Advance.MOVE:
            # The one way forward: the event names exactly where the participant is, and it is not the end.
            assert (claimed_index, claimed_id) == (index, IDS[index]) and index < len(IDS) - 1


def test_a_double_click_moves_once_then_is_a_duplicate() -> None:
    assert judge_advance(state(0), 0, "consent") is Advance.MOVE
    # After the move the participant is at 1; the second click still names scene 0.
    assert judge_advance(state(1), 0, "consent") is Advance.DUPLICATE
    assert judge_advance(state(2), 0, "consent") is Advance.STALE


def test_a_running_game_cannot_be_skipped_and_the_end_is_final() -> None:
    assert judge_advance(state(1, game_over=False), 1, "game") is Advance.GAME_RUNNING
    assert judge_advance(state(1, game_over=True), 1, "game") is Advance.MOVE
    assert judge_advance(state(4), 4, "end") is Advance.AT_END
    assert judge_advance(state(4), 5, "end") is Advance.STALE


def test_a_repeated_scene_id_is_told_apart_by_its_index() -> None:
    # At the second "game" (index 3), an event for the first one (index 1) is stale, not a move.
    assert judge_advance(state(3), 1, "game") is Advance.STALE
    assert judge_advance(state(3), 3, "game") is Advance.MOVE
