"""Participant-lifecycle findings of p2p mode (issue 8) against a real server with real python-socketio clients:
a hidden waiter who returns is matched and one who never returns times out (finding 4), a socket blip mid-game
or while waiting keeps the participant in their game or queue (5), and a peer cannot change its stored data after
the parity verdict (10)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from experiment_harness import build_app, load_example, run_async
from lifecycle_support import Page, event_kinds, participant_row, read_db, until

SCENE = "orchard_p2p"
JOIN = {"scene_index": 0, "scene_id": SCENE}


def _app(db: Path, **kwargs: Any) -> Any:
    example = load_example("examples/demo/p2p_pair.py")
    return build_app(example.build_config(consent=False, db=str(db), max_steps=3, **kwargs))


def _upload(ready: dict[str, Any], action_b: int = 0) -> dict[str, Any]:
    """One confirmed 3-step episode as a p2p page uploads it."""
    now = time.time()
    steps = [{"t": t, "actions": {"agent_0": 1, "agent_1": action_b}, "rewards": {"agent_0": 0.0, "agent_1": 0.0},
              "terminated": {"agent_0": False, "agent_1": False}, "truncated": {"agent_0": t == 2, "agent_1": t == 2},
              "keys": {}, "checksum": f"{t:x}"} for t in range(3)]
    return {"game_id": ready["game_id"], "scene_id": SCENE, "episode": 0, "seed": ready["config"]["seeds"][0],
            "bundle_hash": ready["config"]["bundle"]["hash"], "partial": False, "steps": steps,
            "stats": {"connection": {"type": "direct"}},
            "clock": {"started_at": now - 1.0, "ended_at": now - 0.5, "offset_s": 0.0, "rtt_s": 0.001}}


async def _pair(url: str, *subjects: str) -> list[Page]:
    pages = [await Page(url, s).open() for s in subjects]
    for page in pages:
        await page.wait_scene(SCENE)
        assert await page.call("p2p_join", JOIN) == {"ok": True}
    for page in pages:
        await page.wait("pyodide_game_ready")
    return pages


def test_a_hidden_waiter_who_returns_is_matched_and_one_who_stays_hidden_times_out(live_server, tmp_path) -> None:
    """Finding 4: a waiter whose tab is hidden is not matched (nobody would play), is matched as soon as the tab
    is visible again, and one who stays hidden still times out to the end page. The old server dropped the
    hidden waiter's presence and never looked at them again: never matched, never timed out."""
    db = tmp_path / "f4.sqlite"
    server = live_server(_app(db, waiting_room_timeout_s=2.0).asgi)

    async def scenario() -> None:
        hider, arrival, lonely = (Page(server.url, s) for s in ("hider", "arrival", "lonely"))
        await hider.open()
        await hider.wait_scene(SCENE)
        assert await hider.call("p2p_join", JOIN) == {"ok": True}
        await hider.emit("visibility", {"visible": False})
        await hider.wait("waiting")
        await arrival.open()
        await arrival.wait_scene(SCENE)
        assert await arrival.call("p2p_join", JOIN) == {"ok": True}
        told = await arrival.wait("waiting")
        assert (told["waiting"], told["needed"]) == (2, 2)  # the hidden waiter counts, but is not matched
        await asyncio.sleep(0.3)
        assert hider.events("pyodide_game_ready") == arrival.events("pyodide_game_ready") == []
        await hider.emit("visibility", {"visible": True})
        ready = [await page.wait("pyodide_game_ready") for page in (hider, arrival)]
        assert ready[0]["game_id"] == ready[1]["game_id"]

        await lonely.open()
        await lonely.wait_scene(SCENE)
        assert await lonely.call("p2p_join", JOIN) == {"ok": True}
        await lonely.emit("visibility", {"visible": False})
        end = await lonely.wait_scene("end", timeout=8)
        assert "notice" in end["scene"]
        for page in (hider, arrival, lonely):
            await page.close()

    run_async(scenario())
    created = read_db(db, lambda s: s.events("p2p_game_created"))
    assert [sorted(e.data["players"].values()) for e in created] == [["arrival", "hider"]]
    assert participant_row(db, "lonely").status == "timed_out"
    assert event_kinds(db, "lonely").count("waiting_room_timeout") == 1
    assert "waiting_room_timeout" not in event_kinds(db, "hider")


def test_a_socket_blip_mid_game_reattaches_the_page_to_its_game(live_server, tmp_path) -> None:
    """Finding 5: one player's socket drops and the same page reconnects (same tab, page id and resume secret)
    within the grace period. The partner is never told the player left, signaling flows both ways between the
    partner and the new socket, and uploads from the new socket are accepted and judged. The old server never
    re-attached the new socket: the partner got p2p_partner_left after the grace period."""
    db = tmp_path / "f5.sqlite"
    server = live_server(_app(db, disconnect_grace_s=1.0).asgi)

    async def scenario() -> None:
        stays, blips = await _pair(server.url, "stays", "blips")
        ready = {p.subject: p.events("pyodide_game_ready")[0] for p in (stays, blips)}
        game_id = ready["stays"]["game_id"]
        await blips.blip()
        await blips.wait("scene", lambda s: s["index"] == 0)
        offer = {"game_id": game_id, "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}}
        await stays.emit("webrtc_signal", {**offer, "to_player": ready["blips"]["my_player_id"]})
        got = await blips.wait("webrtc_signal")
        assert got["from_player"] == ready["stays"]["my_player_id"]
        answer = {"game_id": game_id, "kind": "answer", "data": {"type": "answer", "sdp": "v=0"}}
        await blips.emit("webrtc_signal", {**answer, "to_player": ready["stays"]["my_player_id"]})
        back = await stays.wait("webrtc_signal")
        assert back["from_player"] == ready["blips"]["my_player_id"] and back["kind"] == "answer"
        await asyncio.sleep(1.6)  # past the grace period
        assert stays.events("p2p_partner_left") == []
        for page in (blips, stays):
            assert await page.call("p2p_episode", _upload(ready[page.subject])) == {"ok": True}
            assert await page.call("p2p_game_end", {"game_id": game_id, "reason": "complete"}) == {"ok": True}
            assert (await page.call("advance", JOIN))["ok"] is True
            await page.close()

    run_async(scenario())
    assert "p2p_reconnected" in event_kinds(db, "blips")
    assert read_db(db, lambda s: s.events("p2p_partner_left")) == []
    verdicts = read_db(db, lambda s: s.events("p2p_parity"))
    assert [v.data["agree"] for v in verdicts] == [True]
    assert sorted(e.source for e in read_db(db, lambda s: s.episodes())) == ["blips", "stays"]


def test_a_socket_blip_while_waiting_keeps_the_place_in_the_queue(live_server, tmp_path) -> None:
    """Finding 5: a waiter whose socket blips (the page does not join again) is still queued and is matched with
    the next arrival. The old server removed a disconnected waiter and never re-queued the returning socket."""
    db = tmp_path / "f5b.sqlite"
    server = live_server(_app(db, waiting_room_timeout_s=10.0).asgi)

    async def scenario() -> None:
        first = await Page(server.url, "first").open()
        await first.wait_scene(SCENE)
        assert await first.call("p2p_join", JOIN) == {"ok": True}
        await first.wait("waiting")
        await first.blip()
        second = await Page(server.url, "second").open()
        await second.wait_scene(SCENE)
        assert await second.call("p2p_join", JOIN) == {"ok": True}
        ready = [await page.wait("pyodide_game_ready") for page in (first, second)]
        assert ready[0]["game_id"] == ready[1]["game_id"]
        await first.close()
        await second.close()

    run_async(scenario())
    assert len(read_db(db, lambda s: s.events("p2p_game_created"))) == 1


def test_an_upload_after_the_parity_verdict_changes_nothing(live_server, tmp_path) -> None:
    """Finding 10: once both peers' uploads of an episode are judged, a re-upload with other data is acked
    without effect: the stored episode, its steps and the verdict stay as judged. The old server stored it."""
    db = tmp_path / "f10.sqlite"
    server = live_server(_app(db).asgi)
    judged: dict[str, Any] = {}

    async def scenario() -> None:
        ann, ben = await _pair(server.url, "ann", "ben")
        ready = {p.subject: p.events("pyodide_game_ready")[0] for p in (ann, ben)}
        for page in (ann, ben):
            assert await page.call("p2p_episode", _upload(ready[page.subject])) == {"ok": True}
        await until(lambda: bool(read_db(db, lambda s: s.events("p2p_parity"))), 5, "the parity verdict")
        judged.update(_stored(db))
        again = await ann.call("p2p_episode", _upload(ready["ann"], action_b=3))
        assert again == {"ok": True, "already_judged": True}
        for page in (ann, ben):
            await page.close()

    run_async(scenario())
    assert _stored(db) == judged
    assert [v.data["agree"] for v in read_db(db, lambda s: s.events("p2p_parity"))] == [True]


def _stored(db: Path) -> dict[str, Any]:
    """Each peer's stored episode: content hash and the actions of its steps."""
    def read(storage: Any) -> dict[str, Any]:
        return {e.source: (e.content_hash, e.step_count, [s.actions for s in storage.steps(e.id)])
                for e in storage.episodes()}
    return read_db(db, read)
