"""Two participants play one server-mode game together in two real browser contexts; and a partner who
leaves mid-game ends it for the other after the grace period, with everything played kept."""

from __future__ import annotations

import json
from pathlib import Path

import db_under_test
from experiment_harness import build_app, load_example


def _enter_game(page, url: str) -> None:
    page.goto(url)
    page.check("#consent")
    page.click("#continue")


def test_two_humans_play_one_server_game(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    db = tmp_path / "pairs.sqlite"
    server = live_server(build_app(example.build_config(max_steps=30, fps=10, db=str(db))).asgi)
    alice, bob = new_context().new_page(), new_context().new_page()
    _enter_game(alice, f"{server.url}/?subject_id=alice")
    alice.wait_for_selector("#game-status[data-state=waiting]")  # alone: waits for a partner
    _enter_game(bob, f"{server.url}/?subject_id=bob")
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=playing]")
    agents = {name: page.evaluate("window.interactiveGym.game.agentId") for name, page in (("alice", alice), ("bob", bob))}
    assert sorted(agents.values()) == ["agent_0", "agent_1"]

    alice.keyboard.down("ArrowDown")
    bob.keyboard.down("ArrowUp")
    alice.wait_for_timeout(600)
    alice.keyboard.up("ArrowDown")
    bob.keyboard.up("ArrowUp")
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=over]", timeout=15_000)
        assert page.get_attribute("#game-status", "data-reason") == "complete"
        assert page.evaluate("window.interactiveGym.game.frames") >= 25  # both saw the whole game drawn
        page.click("#continue")
        page.wait_for_selector(".scene-end")

    with db_under_test.connect(db) as con:
        episodes = con.execute("SELECT id, agents, status FROM episodes").fetchall()
        assert len(episodes) == 1
        episode_id, agents_json, status = episodes[0]
        assert status == "complete"
        assert json.loads(agents_json) == {agents["alice"]: "alice", agents["bob"]: "bob"}
        steps = con.execute("SELECT keys, actions FROM steps WHERE episode_id=? ORDER BY t", (episode_id,)).fetchall()
    assert len(steps) == 30
    keys = [json.loads(k) for k, _ in steps]
    alice_down = [k[agents["alice"]] for k in keys].count(["ArrowDown"])
    bob_up = [k[agents["bob"]] for k in keys].count(["ArrowUp"])
    assert alice_down >= 3 and bob_up >= 3  # each human's own keys drove their own agent
    for k, a in steps:
        k, a = json.loads(k), json.loads(a)
        assert a[agents["alice"]] == (2 if k[agents["alice"]] == ["ArrowDown"] else 0)
        assert a[agents["bob"]] == (1 if k[agents["bob"]] == ["ArrowUp"] else 0)


def test_partner_leaving_ends_game_after_grace_and_keeps_data(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    db = tmp_path / "leave.sqlite"
    config = example.build_config(max_steps=10_000, fps=10, disconnect_grace_s=1.5, db=str(db))
    server = live_server(build_app(config).asgi)
    alice_ctx, bob_ctx = new_context(), new_context()
    alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
    _enter_game(alice, f"{server.url}/?subject_id=alice2")
    _enter_game(bob, f"{server.url}/?subject_id=bob2")
    for page in (alice, bob):
        page.wait_for_selector("#game-status[data-state=playing]")
    alice.wait_for_function("window.interactiveGym.game.frames > 10")
    bob.close()  # the partner closes the tab mid-episode
    alice.wait_for_selector("#game-status[data-state=over]", timeout=10_000)
    assert alice.get_attribute("#game-status", "data-reason") == "partner_left"
    assert "partner left" in alice.text_content("#game-status")
    alice.click("#continue")
    alice.wait_for_selector(".scene-end")

    with db_under_test.connect(db) as con:
        status, episode_id = con.execute("SELECT status, id FROM episodes").fetchone()
        played = con.execute("SELECT COUNT(*) FROM steps WHERE episode_id=?", (episode_id,)).fetchone()[0]
    assert status == "partial"
    assert played >= 10  # everything played before (and during the grace period) is kept


def test_waiting_alone_times_out_to_a_clear_page(live_server, new_context, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    db = tmp_path / "alone.sqlite"
    server = live_server(build_app(example.build_config(waiting_room_timeout_s=1.5, db=str(db))).asgi)
    page = new_context().new_page()
    _enter_game(page, f"{server.url}/?subject_id=lonely")
    page.wait_for_selector("#game-status[data-state=waiting]")
    page.wait_for_selector(".scene-end #notice", timeout=10_000)  # the server moved them on; no endless wait
    assert "No other participant arrived in time" in page.text_content("#notice")
    with db_under_test.connect(db) as con:
        status, = con.execute("SELECT status FROM participants WHERE participant_id='lonely'").fetchone()
        kinds = [k for k, in con.execute("SELECT kind FROM events WHERE participant_id='lonely'")]
    assert status == "timed_out" and "waiting_room_timeout" in kinds
