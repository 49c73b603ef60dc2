"""A server-mode game its process left behind: what its players are shown and which episodes are closed."""

from __future__ import annotations

from typing import Any

import pytest

from interactive_gym.server.lost_games import SERVER_LOST, LeftBehind, game_left_behind
from interactive_gym.server.storage_records import EpisodeRow


def episode(id: int, status: str, agents: dict[str, str], *, scene: str = "game", mode: str = "server",
            meta: dict[str, Any] | None = None) -> EpisodeRow:
    return EpisodeRow(id=id, experiment_id="x", scene_id=scene, game_id=f"g{id}", episode=0, mode=mode,
                      source="server", seed=None, agents=agents, status=status, started_at=0.0, ended_at=None,
                      env_hash=None, meta=meta or {}, step_count=0)


PAIR = {"agent_0": "alice", "agent_1": "bob"}
CASES = [
    ("no episode at all", [], None),
    ("someone else's game", [episode(1, "in_progress", {"agent_0": "carol", "agent_1": "dan"})], None),
    ("another scene's game", [episode(1, "in_progress", PAIR, scene="practice")], None),
    ("a p2p game (it runs in the browsers)", [episode(1, "in_progress", PAIR, mode="p2p")], None),
    ("cut short now", [episode(1, "in_progress", PAIR)], LeftBehind(SERVER_LOST, (1,))),
    ("cut short, closed by the partner's takeover",
     [episode(1, "partial", PAIR, meta={"ended_by": SERVER_LOST})], LeftBehind(SERVER_LOST, ())),
    ("played to its end before the stop", [episode(1, "complete", PAIR)], LeftBehind("complete", ())),
    ("a partner left, then the stop", [episode(1, "partial", PAIR, meta={"ended_by": "partner_left"})],
     LeftBehind("complete", ())),
    ("second episode cut short", [episode(1, "complete", PAIR), episode(2, "in_progress", PAIR)],
     LeftBehind(SERVER_LOST, (2,))),
]


@pytest.mark.parametrize(("case", "episodes", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_game_a_participant_left_behind(case: str, episodes: list[EpisodeRow],
                                            expected: LeftBehind | None) -> None:
    assert game_left_behind(episodes, "alice", "game") == expected
