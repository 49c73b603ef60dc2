"""What an event that names a scene means, given where the participant really is. Pure.

Every event a page sends about a scene names it (``scene_index`` and ``scene_id``). The move is computed from
that, never from "wherever the participant is now": a double click, a second delivery or a stale page then
answers without effect instead of skipping scenes.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass


class Claim(enum.StrEnum):
    """How an event's named scene relates to the participant's current scene."""

    CURRENT = "current"        # the event is about the scene the participant is on
    JUST_LEFT = "just_left"    # about the scene the participant has just left (a duplicate of the move)
    STALE = "stale"            # about some other scene (an old page): show the current scene again


def judge_claim(scene_ids: Sequence[str], index: int, claimed_index: int, claimed_id: str) -> Claim:
    """Relates ``(claimed_index, claimed_id)`` to the participant at ``index`` of ``scene_ids``."""
    if claimed_index == index and index < len(scene_ids) and scene_ids[index] == claimed_id:
        return Claim.CURRENT
    if claimed_index == index - 1 and 0 <= claimed_index < len(scene_ids) and scene_ids[claimed_index] == claimed_id:
        return Claim.JUST_LEFT
    return Claim.STALE


class Advance(enum.StrEnum):
    """The answer to a request to continue past a scene."""

    MOVE = "move"                  # store the answers and show the next scene
    DUPLICATE = "duplicate"        # already moved past it: acknowledge, change nothing
    STALE = "stale"                # resend the current scene, change nothing
    GAME_RUNNING = "game_running"  # a game scene whose game is not over yet
    AT_END = "at_end"              # the end page is the last scene


@dataclass(frozen=True)
class AdvanceInput:
    """What the decision needs to know about the participant.

    Attributes:
        scene_ids: The participant's scene sequence.
        index: Their current scene.
        is_game: Whether the current scene is a game scene.
        game_over: Whether that game is over.
        is_end: Whether the current scene is the end page.
    """

    scene_ids: Sequence[str]
    index: int
    is_game: bool
    game_over: bool
    is_end: bool


def judge_advance(state: AdvanceInput, claimed_index: int, claimed_id: str) -> Advance:
    """Decides what an ``advance`` event does. The index moves by one at most, never past the end."""
    claim = judge_claim(state.scene_ids, state.index, claimed_index, claimed_id)
    if claim is Claim.JUST_LEFT:
        return Advance.DUPLICATE
    if claim is Claim.STALE:
        return Advance.STALE
    if state.is_end or state.index >= len(state.scene_ids) - 1:
        return Advance.AT_END
    if state.is_game and not state.game_over:
        return Advance.GAME_RUNNING
    return Advance.MOVE
