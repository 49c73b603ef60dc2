"""The confirmed trajectory of one p2p peer: the rows of its uploads, kept frame by frame once final.

A row is final once its frame is *confirmed* (every player's input for it is known and the simulation has been
corrected); only then is it copied into the episode's rows, with this peer's own held keys for the frame and, on
checksum frames, the hex checksum of the state before the step. With 3+ players the survivors of a disconnection
may agree on a cut earlier than this peer had confirmed: :meth:`ConfirmedTrajectory.reopen_from` takes the rows
from that frame back. Steps played with a disconnected player's default input are listed as gaps.

Pure bookkeeping over the simulation's rows and the session's confirmed inputs; runs in Pyodide and CPython.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from interactive_gym.browser.p2p_rejoin import GapLog
from interactive_gym.browser.p2p_sim import P2PSimulation
from interactive_gym.netcode import requests as rq
from interactive_gym.netcode.p2p_session import P2PSession

FINALIZED_KEPT = 512  # rows that a 3+-player disconnection cut may still reopen (cuts are a few frames back)

# Called for every row kept: (frame, episode, t, the agents' controllers in that row).
RowHook = Callable[[int, int, int, Mapping[str, str]], None]


class ConfirmedTrajectory:
    """The rows one peer uploads, per episode.

    Args:
        sim: The simulation whose rows are collected.
        my_agent: This peer's agent (its held keys go in each row).

    Attributes:
        episodes: The kept rows of every episode.
        completed: Episodes whose rows are complete, in the order they completed.
        done: Whether every episode is complete.
        keys_by_frame: This peer's held keys for frames not yet confirmed.
        collected: The last frame whose row was collected.
        gaps: Steps played with a disconnected player's default input.
        row_mismatches: Rows whose simulated inputs differed from the confirmed ones (never expected; counted).
    """

    def __init__(self, sim: P2PSimulation, my_agent: str) -> None:
        self.sim = sim
        self.my_agent = my_agent
        self.episodes: list[list[dict[str, Any]]] = [[] for _ in sim.seeds]
        self.completed: list[int] = []
        self.done = False
        self.keys_by_frame: dict[int, list[str]] = {}
        self.collected = -1
        self.gaps = GapLog()
        self.row_mismatches = 0
        self._finalized: list[tuple[int, int]] = []  # (frame, episode) of recently finalized rows, oldest first

    def collect(self, session: P2PSession, up_to: int, on_row: RowHook | None = None) -> list[int]:
        """Keeps the rows of the frames after :attr:`collected` up to ``up_to``; returns the episodes completed."""
        newly: list[int] = []
        sim = self.sim
        for frame in range(self.collected + 1, up_to + 1):
            checksum = sim.checksums.pop(frame, None)
            keys = self.keys_by_frame.pop(frame, [])
            entry = sim.rows.pop(frame, None)
            if entry is None:
                continue  # after the last episode: nothing was simulated
            episode, row = entry
            final_inputs = session.confirmed_inputs(frame)
            if row.pop("inputs") != [data for data, _ in final_inputs]:
                self.row_mismatches += 1  # cannot happen if the session is correct; counted, never hidden
            row["keys"] = {self.my_agent: keys}
            row["checksum"] = None if checksum is None else f"{checksum & 0xFFFFFFFFFFFFFFFF:016x}"
            controllers = row.pop("controllers", None) or {}  # reported per game in stats["takeovers"]
            if on_row is not None:
                on_row(frame, episode, row["t"], controllers)
            away = [sim.player_agents[p] for p, (_, status) in enumerate(final_inputs)
                    if status == rq.InputStatus.DISCONNECTED and sim.player_agents[p] not in controllers]
            if away:
                self.gaps.note(episode, row["t"], away)
            self.episodes[episode].append(row)
            self._finalized.append((frame, episode))
            if len(self._finalized) > FINALIZED_KEPT:
                del self._finalized[: len(self._finalized) - FINALIZED_KEPT]
            ended = all(row["terminated"].get(a) or row["truncated"].get(a) for a in sim.agent_ids)
            if ended or row["t"] + 1 >= sim.max_steps:
                self.completed.append(episode)
                newly.append(episode)
        self.collected = max(self.collected, up_to)
        if len(self.completed) == len(self.episodes):
            self.done = True
        return newly

    def reopen_from(self, frame: int) -> None:
        """Un-finalizes rows from ``frame`` on (the runner re-simulates those frames)."""
        while self._finalized and self._finalized[-1][0] >= frame:
            done_frame, episode = self._finalized.pop()
            row = self.episodes[episode].pop()
            self.gaps.trim(episode, row["t"])
            self.keys_by_frame[done_frame] = row["keys"][self.my_agent]
            if episode in self.completed:
                self.completed.remove(episode)  # reported again when it completes again
        self.collected = frame - 1
        self.done = len(self.completed) == len(self.episodes)

    def resume_at(self, frame: int) -> None:
        """This page resumed from a snapshot at ``frame``: earlier episodes were played by its old page."""
        self.collected = frame - 1
        self.keys_by_frame.clear()
        self._finalized.clear()
        self.completed = list(range(min(self.sim.episode, len(self.episodes))))
        self.done = len(self.completed) == len(self.episodes)
