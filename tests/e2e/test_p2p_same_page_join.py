"""p2p joins and ends that arrive twice, against a real server with real python-socketio clients.

A page's ``p2p_join`` may arrive twice (a socket that dropped while waiting re-sends it, a retry, two tabs of
code racing) or late, after its game started. The same page (same ``page_id``) joining again is not a reload: it is
re-attached and gets its game again, and nobody is told anyone left. A reload (a new page id) of a running two-player
game gets the game back from the partner (``rejoin``). A second ``p2p_game_end`` of the same game is acknowledged
and changes nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from experiment_harness import build_app, load_example, run_async
from lifecycle_support import Page, event_kinds, read_db

SCENE = "orchard_p2p"
JOIN = {"scene_index": 0, "scene_id": SCENE}


def _app(db: Path, **kwargs: Any) -> Any:
    example = load_example("examples/demo/p2p_pair.py")
    return build_app(example.build_config(consent=False, db=str(db), max_steps=3, **kwargs))


async def _open(url: str, *subjects: str) -> list[Page]:
    pages = [await Page(url, s).open() for s in subjects]
    for page in pages:
        await page.wait_scene(SCENE)
    return pages


def _games_created(db: Path) -> list[Any]:
    return [e for e in read_db(db, lambda s: s.events()) if e.kind == "p2p_game_created"]


def test_two_concurrent_joins_of_the_same_page_make_one_game_and_nobody_leaves(live_server, tmp_path) -> None:
    db = tmp_path / "twice.sqlite"
    server = live_server(_app(db).asgi)

    async def scenario() -> tuple[Page, Page]:
        waits, twice = await _open(server.url, "waits", "twice")
        assert await waits.call("p2p_join", JOIN) == {"ok": True}
        acks = await asyncio.gather(twice.call("p2p_join", JOIN), twice.call("p2p_join", JOIN))
        assert acks == [{"ok": True}, {"ok": True}]
        await waits.wait("pyodide_game_ready")
        await twice.wait("pyodide_game_ready")
        # Both pages of a new pair send their join twice at once.
        one, two = await _open(server.url, "one", "two")
        acks = await asyncio.gather(*(p.call("p2p_join", JOIN) for p in (one, two, one, two)))
        assert acks == [{"ok": True}] * 4
        for page in (one, two):
            await page.wait("pyodide_game_ready")
        await asyncio.sleep(0.3)  # anything the repeats caused has arrived by now
        for page in (waits, twice, one, two):
            assert page.events("p2p_partner_left") == [] and page.events("error") == []
        return waits, twice

    waits, twice = run_async(scenario())
    assert len(_games_created(db)) == 2
    ready = twice.events("pyodide_game_ready")
    assert len(ready) in (1, 2) and {r["game_id"] for r in ready} == {waits.events("pyodide_game_ready")[0]["game_id"]}
    assert len(waits.events("pyodide_game_ready")) == 1  # the partner is not told about the repeat
    assert all(r["my_player_id"] == ready[0]["my_player_id"] and not r.get("rejoin") for r in ready)
    kinds = event_kinds(db)
    assert "p2p_partner_left" not in kinds and "p2p_rejoin" not in kinds


def test_a_late_join_of_the_same_page_gets_its_game_again(live_server, tmp_path) -> None:
    """The page's first announcement was lost with its socket: the join it re-sends after reconnecting (same page)
    gets the running game again; the partner keeps playing and is never told anything."""
    db = tmp_path / "late.sqlite"
    server = live_server(_app(db, disconnect_grace_s=1.0).asgi)

    async def scenario() -> tuple[dict[str, Any], list[dict[str, Any]], Page]:
        stays, blips = await _open(server.url, "stays", "blips")
        for page in (stays, blips):
            assert await page.call("p2p_join", JOIN) == {"ok": True}
        first = await blips.wait("pyodide_game_ready")
        await blips.blip()
        await blips.wait_scene(SCENE)
        assert await blips.call("p2p_join", JOIN) == {"ok": True}
        await asyncio.sleep(1.5)  # past the grace period
        # Signaling reaches the re-attached socket.
        await stays.emit("webrtc_signal", {"game_id": first["game_id"], "to_player": first["my_player_id"],
                                           "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}})
        await blips.wait("webrtc_signal")
        assert stays.events("p2p_partner_left") == [] and stays.events("p2p_peer_rejoining") == []
        return first, blips.events("pyodide_game_ready"), stays

    first, readies, stays = run_async(scenario())
    assert len(readies) == 2
    again = readies[1]
    assert again["game_id"] == first["game_id"] and again["my_player_id"] == first["my_player_id"]
    assert again["config"] == first["config"] and not again.get("rejoin")
    assert 0 <= again["countdown_s"] <= first["countdown_s"]  # what is left of the start countdown
    assert "p2p_join_repeated" in event_kinds(db, "blips")
    assert "p2p_partner_left" not in event_kinds(db)


def test_a_reload_rejoins_and_a_reload_with_nobody_to_send_the_game_leaves(live_server, tmp_path) -> None:
    db = tmp_path / "reload.sqlite"
    server = live_server(_app(db).asgi)

    async def scenario() -> dict[str, Any]:
        stays, reloads = await _open(server.url, "stays", "reloads")
        for page in (stays, reloads):
            assert await page.call("p2p_join", JOIN) == {"ok": True}
        first = await reloads.wait("pyodide_game_ready")
        await reloads.reload()
        await reloads.wait_scene(SCENE)
        assert await reloads.call("p2p_join", JOIN) == {"ok": True}
        again = await reloads.wait("pyodide_game_ready", lambda r: r.get("rejoin") is True)
        notice = await stays.wait("p2p_peer_rejoining")
        assert again["game_id"] == first["game_id"] and again["my_player_id"] == first["my_player_id"]
        assert again["sender"] == notice["sender"] == 1 - first["my_player_id"] and again["can_rejoin"] is True
        assert notice["player_id"] == first["my_player_id"] and again["countdown_s"] == 0
        # The rejoined page's join repeated: the same rejoin again (it may have missed the first one).
        assert await reloads.call("p2p_join", JOIN) == {"ok": True}
        await reloads.wait("pyodide_game_ready", lambda r: r is not again and r.get("rejoin") is True)
        assert len(stays.events("p2p_peer_rejoining")) == 1 and notice["attempt"] == 1
        # The partner's socket blips before its page could act on the notice: it is told again, as the same
        # attempt (its page ignores a notice it has seen).
        await stays.blip()
        await stays.wait("p2p_peer_rejoining", lambda n: n is not notice)
        assert [n["attempt"] for n in stays.events("p2p_peer_rejoining")] == [1, 1]
        # The partner's page goes away for good; a second reload has nobody to get the game from: it has left.
        await stays.close()
        await reloads.reload()
        await reloads.wait_scene(SCENE)
        assert await reloads.call("p2p_join", JOIN) == {"ok": True}
        over = await reloads.wait("scene", lambda s: (s["scene"].get("game_over") or {}).get("reason") == "left")
        return over

    run_async(scenario())
    kinds = event_kinds(db, "reloads")
    assert kinds.count("p2p_rejoin") == 1 and kinds.count("p2p_join_repeated") == 1


def test_a_second_game_end_is_acknowledged_and_changes_nothing(live_server, tmp_path) -> None:
    db = tmp_path / "end.sqlite"
    server = live_server(_app(db).asgi)

    async def scenario() -> Page:
        ann, bob = await _open(server.url, "ann", "bob")
        for page in (ann, bob):
            assert await page.call("p2p_join", JOIN) == {"ok": True}
        ready = await ann.wait("pyodide_game_ready")
        end = {"game_id": ready["game_id"], "reason": "complete"}
        assert await ann.call("p2p_game_end", end) == {"ok": True}
        acks = await asyncio.gather(ann.call("p2p_game_end", end),
                                    ann.call("p2p_game_end", {**end, "reason": "error", "error": "late"}))
        assert acks == [{"ok": True}, {"ok": True}]
        assert await ann.call("p2p_game_end", {**end, "game_id": "p2p-not-hers"}) != {"ok": True}
        await asyncio.sleep(0.2)
        assert bob.events("p2p_partner_left") == []  # the late "error" end told nobody anything
        return ann

    ann = run_async(scenario())
    errors = [e for e in ann.events("error") if e.get("event") == "p2p_game_end"]
    assert len(errors) == 1  # only the end of a game she was never in
    assert "game_error" not in event_kinds(db, "ann")
