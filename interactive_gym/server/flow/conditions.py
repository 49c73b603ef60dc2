"""Which arm of an ``AssignCondition`` block a new participant plays: arms filled evenly, never by hashing the id.

The rule (:func:`balanced_arm`) is pure. An arm's *load* is its participants who completed the study plus those
still taking part (status ``active``); the dropped, timed out and errored no longer count, so their places are
filled again. A new participant goes to the arm with the lightest load; equal loads go to the arm with fewer
completed participants; a tie after that is a draw seeded by the block's seed and the participant id.

Counting the in-progress participants is what keeps many simultaneous arrivals even: with completed counts alone,
every arrival before the first completion would go to the same arm. Preferring fewer completed among equal loads
makes the arms' completed counts catch up with each other as participants finish.

:class:`ConditionAssigner` holds who plays which arm (restored from the ``condition_assigned`` events after a
restart) and counts loads from the participant registry at each arrival, so the counts are always those of
the participants the server knows (restored from the database at start-up, kept current by the flow). An
arrival is assigned and entered in the registry in one synchronous step of the event loop, so simultaneous
arrivals are counted one after another.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Mapping, Sequence

from interactive_gym.scenes.scene import Scene
from interactive_gym.scenes.stager import AssignCondition, Stager
from interactive_gym.server.flow.participants import Status


def balanced_arm(arms: Sequence[str], completed: Mapping[str, int], in_progress: Mapping[str, int],
                 tie_seed: str) -> str:
    """The arm a new participant joins.

    Args:
        arms: The block's arms, in declaration order.
        completed: Participants per arm who completed the study (missing arms count 0).
        in_progress: Participants per arm still taking part.
        tie_seed: Seeds the draw among arms still tied (e.g. ``f"{block seed}:{block}:{participant id}"``).
    """
    if not arms:
        raise ValueError("an AssignCondition block needs arms")

    def rank(arm: str) -> tuple[int, int]:
        done = completed.get(arm, 0)
        return done + in_progress.get(arm, 0), done

    best = min(rank(a) for a in arms)
    tied = [a for a in arms if rank(a) == best]
    if len(tied) == 1:
        return tied[0]
    seed = int.from_bytes(hashlib.sha256(tie_seed.encode()).digest()[:8], "big")
    return random.Random(seed).choice(tied)


class ConditionAssigner:
    """The arms of every participant of one experiment.

    Args:
        stager: The experiment's stager (its ``AssignCondition`` blocks).
        population: ``(participant_id, status)`` of every participant the server knows (the registry's).
    """

    def __init__(self, stager: Stager, population: Callable[[], Iterable[tuple[str, Status]]]) -> None:
        self.stager = stager
        self.blocks = {block.name: block for block in stager.conditions()}
        self._population = population
        self._arms: dict[str, dict[str, str]] = {}  # participant id -> {block name: arm}
        self._unrecorded: set[str] = set()  # assigned here but not yet in the database

    def restore(self, participant_id: str, conditions: Mapping[str, str]) -> None:
        """Puts back arms recorded before a restart (arms of blocks or arms the experiment no longer has are
        ignored: such a participant is assigned again when their sequence is built)."""
        kept = {name: arm for name, arm in conditions.items()
                if name in self.blocks and arm in self.blocks[name].arms}
        self._arms.setdefault(participant_id, {}).update(kept)

    def sequence_for(self, participant_id: str) -> list[Scene]:
        """The participant's scene order, assigning arms for the blocks they meet that have none yet."""
        return self.stager.sequence_for(participant_id, lambda block: self._arm(participant_id, block))

    def conditions_of(self, participant_id: str) -> dict[str, str]:
        """``{block name: arm}`` of the participant (empty if the experiment has no AssignCondition)."""
        return dict(self._arms.get(participant_id, {}))

    def unrecorded(self, participant_id: str) -> dict[str, str] | None:
        """The participant's arms if some were assigned since the database last recorded them, else None."""
        return self.conditions_of(participant_id) if participant_id in self._unrecorded else None

    def recorded(self, participant_id: str) -> None:
        """The participant's arms are in the database now (the ``condition_assigned`` event is committed)."""
        self._unrecorded.discard(participant_id)

    def loads(self, block_name: str) -> tuple[dict[str, int], dict[str, int]]:
        """``(completed, in_progress)`` per arm of the block, from the known participants."""
        arms = self.blocks[block_name].arms
        completed = dict.fromkeys(arms, 0)
        in_progress = dict.fromkeys(arms, 0)
        for participant_id, status in self._population():
            arm = self._arms.get(participant_id, {}).get(block_name)
            if arm is None or arm not in arms:
                continue
            if status is Status.COMPLETED:
                completed[arm] += 1
            elif status is Status.ACTIVE:
                in_progress[arm] += 1
        return completed, in_progress

    def _arm(self, participant_id: str, block: AssignCondition) -> str:
        arms = self._arms.setdefault(participant_id, {})
        arm = arms.get(block.name)
        if arm is None:
            completed, in_progress = self.loads(block.name)
            arm = arms[block.name] = balanced_arm(list(block.arms), completed, in_progress,
                                                  f"{block.seed}:{block.name}:{participant_id}")
            self._unrecorded.add(participant_id)
        return arm
