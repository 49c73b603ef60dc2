"""Keys a page sends for its game after the game ended, against a real server with real python-socketio clients.

Found by the capacity benchmark: under load a game-over reached pages up to 18 s late, and every key they sent
in that time was answered with an error (about 33,000 in one 100-game run): the server's own extra load, and an
error where the page did nothing wrong. A player's keys for the game they last played are now ignored quietly
however late they come; keys for a game that was never theirs are still refused.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from experiment_harness import build_app, run_async
from lifecycle_support import Page, TwoCounters, game_config, humans_scene

from interactive_gym.server.modes.server_mode import ENDED_GAME_KEYS_QUIET_S


def test_a_players_late_keys_for_the_ended_game_are_ignored_and_a_strangers_are_refused(live_server,
                                                                                     tmp_path: Path) -> None:
    db = tmp_path / "late.sqlite"
    scene = humans_scene("duo", TwoCounters, fps=30, max_steps=10, start_countdown_s=0)
    app = build_app(game_config(db, scene))
    server = live_server(app.asgi)

    async def scenario() -> tuple[list, dict, int]:
        pages = [await Page(server.url, subject).open() for subject in ("ann", "bob")]
        for page in pages:
            await page.wait_scene("duo")
            await page.emit("join_game", {"scene_index": 0, "scene_id": "duo"})
        start = await pages[0].wait("game_start")
        for page in pages:
            await page.wait("game_over")
        await asyncio.sleep(ENDED_GAME_KEYS_QUIET_S + 1)  # past the server's short record of ended games
        before = app.server.flow.rejections["keys"]
        for seq, page in enumerate(pages, start=1):
            await page.emit("keys", {"game_id": start["game_id"], "held": ["ArrowUp"], "seq": 100 + seq})
        for page in pages:
            await page.call("ping", {"t": 0})  # answered after their keys (one participant's events in order)
        quiet = [e for page in pages for e in page.events("error")]
        stranger = await Page(server.url, "cy").open()
        await stranger.wait_scene("duo")
        await stranger.emit("keys", {"game_id": start["game_id"], "held": [], "seq": 1})
        refused = await stranger.wait("error")
        for page in [*pages, stranger]:
            await page.close()
        return quiet, refused, app.server.flow.rejections["keys"] - before

    quiet, refused, counted = run_async(scenario())
    assert quiet == []
    assert refused["event"] == "keys" and "not in this game" in refused["message"]
    assert counted == 1  # the stranger's only
