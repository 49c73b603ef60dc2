"""Peer-to-peer games in real browsers against the real server: two Chromium contexts play Fruit Gatherers with
the rollback netcode in Pyodide, inputs over WebRTC (direct, or relayed by a real coturn), and both uploads must
agree frame by frame.

The expired-credential refusal is covered by test_webrtc_transport.py::test_expired_ephemeral_credential_is_refused_by_coturn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from p2p_experiments import open_player, p2p_app, play_randomly, read_db, wait_over, wait_playing
from playwright.sync_api import Page


def check_agreeing_complete_game(db: Path, pages: list[Page], max_steps: int, connection: str) -> dict[str, Any]:
    """Both peers uploaded the whole episode, the server's parity verdict agrees, the connection type is stored."""
    data = read_db(db)
    episodes = data["episodes"]
    assert [e["status"] for e in episodes] == ["complete", "complete"], episodes
    assert len({e["game_id"] for e in episodes}) == 1
    a, b = episodes
    assert [s["t"] for s in a["steps"]] == list(range(max_steps))
    for field in ("actions", "rewards", "terminated", "truncated"):
        assert [s[field] for s in a["steps"]] == [s[field] for s in b["steps"]], field
    assert data["verdicts"] and all(v["agree"] for v in data["verdicts"]), data["verdicts"]
    for episode in episodes:
        network = episode["meta"]["network"]
        assert network["connection"]["type"] == connection
        assert network["turn_used"] is (connection == "relay")
        assert network["desyncs"] == [] and network["packets"]["row_mismatches"] == 0
        # Each peer's own keys explain its own agent's actions (rollback-corrected rows, not predictions).
        agent = next(iter(episode["steps"][0]["keys"]))
        moved = [s for s in episode["steps"] if s["keys"][agent]]
        assert moved, f"{episode['source']} never pressed a key"
    for page in pages:
        assert page.evaluate("window.interactiveGym.p2p.connectionType") == connection
    return data


def test_two_browsers_play_a_direct_p2p_episode(live_server, new_context, tmp_path: Path) -> None:
    db = tmp_path / "direct.sqlite"
    server = live_server(p2p_app(db, max_steps=150).asgi)
    pages = [open_player(new_context().new_page(), server.url, s) for s in ("alice", "bob")]
    wait_playing(pages)
    assert play_randomly(pages, seed=1) > 10
    for page in pages:
        assert wait_over(page) == "complete"
    check_agreeing_complete_game(db, pages, 150, "direct")
    for page in pages:
        page.click("#continue")
        page.wait_for_selector(".scene-end")
