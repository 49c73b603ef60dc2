"""Data of a p2p rejoin: the gap steps a page reports, and where the rejoined page's own steps are stored. Pure.

While a player is away (their page reloading or crashed), the other pages play on with the default input for
them. Each page's upload lists those steps per agent (``gaps: [{"agent", "from_t", "to_t"}]``, validated in
``upload_validation.py``); the stored steps name the controller ``gap:default-input`` for that agent (so
``agent_steps.csv`` has no participant for them) and the episode's ``meta.gaps`` keeps the runs with the
participant they belonged to.

A page that rejoined mid-episode uploads the steps from the one it resumed at (``first_t``). Its old page may have
uploaded the steps before (a partial upload when it closed), under the same participant: the new page's steps are
stored as their own episode row, with source ``<participant>:rejoined@<first_t>``, so nothing the old page sent is
replaced. Both rows carry the participant in ``agents``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from interactive_gym.scenes.partner_drop import GAP_CONTROLLER

__all__ = ["GAP_CONTROLLER", "flag_gap_steps", "rejoin_source"]



def rejoin_source(participant_id: str, first_t: int) -> str:
    """The ``source`` of an upload of a page that rejoined at step ``first_t`` (> 0) of the episode."""
    return f"{participant_id}:rejoined@{first_t}"


def flag_gap_steps(steps: list[Any], gaps: Sequence[Mapping[str, Any]],
                   participants: Mapping[str, str]) -> tuple[list[Any], list[dict[str, Any]]]:
    """The steps with ``controllers[agent] = GAP_CONTROLLER`` on every gap step, and the episode meta's list.

    Args:
        steps: The episode's step records (``StepRecord``, with ``t`` and ``controllers``).
        gaps: Validated runs ``{"agent", "from_t", "to_t"}`` (inclusive).
        participants: ``agent -> participant id`` of the game's human players.
    """
    meta = [{**gap, "participant": participants.get(str(gap["agent"]))} for gap in gaps]
    if not gaps:
        return steps, meta
    flagged = []
    for step in steps:
        agents = [g["agent"] for g in gaps if g["from_t"] <= step.t <= g["to_t"]]
        if agents:
            step = dataclasses.replace(step, controllers={**(step.controllers or {}),
                                                          **{a: GAP_CONTROLLER for a in agents}})
        flagged.append(step)
    return flagged, meta
