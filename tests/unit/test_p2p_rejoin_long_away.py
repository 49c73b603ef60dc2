"""Rejoin after a long absence: the survivor keeps the gap rows from the partner's drop on (``partner_away``).

Found in real browsers: a page reload that took longer than the session's input history (512 frames, 17 s at
30 fps) made the survivor's page fail when the rejoin request came, because the rows of the gap had not been
collected while the inputs they needed were discarded. Two real P2PGameHosts over the in-memory network.
"""

from __future__ import annotations

import json
from typing import Any

from test_p2p_rejoin import Game, config, payload

from interactive_gym.netcode.netsim import NetworkConditions


class AwayGame(Game):
    """The survivor's page calls ``partner_away`` on the partner's drop, as p2p_game.js does in a rejoin game."""

    def step(self, lose_at: int | None, goodbye: bool, away_ms: float) -> bool:
        survivor = self.hosts[0]
        before = len(survivor.events)
        going = super().step(lose_at, goodbye, away_ms)
        for event in survivor.events[before:]:
            if event["type"] == "Disconnected" and event["player"] == 1:
                survivor.partner_away(1)
        return going


def test_a_partner_away_longer_than_the_input_history_still_rejoins() -> None:
    game = AwayGame(config(max_steps=1200, episodes=1), NetworkConditions(), seed=7)
    game.play(lose_at=60, goodbye=True, away_ms=25_000)  # 750 frames away
    survivor, rejoined = game.hosts
    place: dict[str, Any] | None = rejoined.rejoined
    assert place is not None and place["t"] > 60 + 600
    assert survivor.desyncs == [] and rejoined.desyncs == []
    assert survivor.completed == [0] and rejoined.completed == [0]
    full = payload(survivor, 0)
    (gap,) = full["gaps"]
    assert gap["agent"] == "agent_1" and gap["to_t"] == place["t"] - 1 and gap["from_t"] <= 60 + 3
    assert len(full["steps"]) == 1200
    assert json.loads(survivor.stats_json())["row_mismatches"] == 0


def test_without_a_return_the_partner_left_upload_marks_the_gap_it_played() -> None:
    game = AwayGame(config(max_steps=600, episodes=1), NetworkConditions(), seed=9)
    for _ in range(3000):  # page 1 goes away at frame 40 and never comes back
        game.step(lose_at=40, goodbye=True, away_ms=10**9)
        if game.hosts[0].session.current_frame >= 300:
            break
    partial = payload(game.hosts[0], 0, partial=True)
    (gap,) = partial["gaps"]
    assert gap["agent"] == "agent_1" and gap["to_t"] == partial["steps"][-1]["t"]
    assert all(s["actions"]["agent_1"] == 0 for s in partial["steps"][gap["from_t"]:])


def test_the_servers_notice_ends_the_wait_for_a_page_gone_without_a_goodbye() -> None:
    """Found in real browsers: a reload whose goodbye packets were lost left the partner stalled until the silence
    timeout (the grace period). The server's ``p2p_peer_rejoining`` says the old page is gone: play on at once."""
    game = AwayGame(config(max_steps=600, episodes=1), NetworkConditions(), seed=11)
    while game.old is None:
        game.step(lose_at=30, goodbye=False, away_ms=10**9)
    survivor = game.hosts[0]
    assert not survivor.session.player_disconnected(1)
    survivor.expect_rejoin(1)
    assert survivor.session.player_disconnected(1)
    start = survivor.session.current_frame
    for _ in range(60):  # 2 s; the silence timeout is 1 s (30 frames) plus the 8-frame prediction window
        game.step(lose_at=None, goodbye=False, away_ms=10**9)
    assert survivor.session.current_frame >= start + 58
