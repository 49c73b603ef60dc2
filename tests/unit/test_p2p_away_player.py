"""P2PMode: a player whose socket is away when their partner ends the game can still upload and end it.

Found by the chaos test (tests/e2e/test_chaos.py): the coordinator forgets a game once every player has
finished or disconnected, so a player offline for a few seconds at the end of a game came back to a server
that refused their upload ("not in this game") and their game end, and could never continue.
"""

from __future__ import annotations

from typing import Any

from mode_fakes import run
from test_p2p_mode import setup


async def _game_of_two(mode: Any, scene: Any, people: dict[str, Any]) -> str:
    for pid in ("ann", "bob"):
        await mode.join(people[pid], scene, None)
    game_id = people["ann"].game_id
    assert game_id and people["bob"].game_id == game_id
    return game_id


def test_an_away_player_can_upload_and_end_after_the_partner_ended() -> None:
    async def main() -> tuple[dict[str, Any], bool, dict[str, Any] | None, int, int]:
        mode, scene, _, _, people = setup()
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        ann.sid = None
        await mode.disconnected(ann)  # offline for a moment; her page goes on playing
        assert await mode.game_end(bob, game_id, "complete")
        ann.sid = "sid-ann-2"
        await mode.reconnected(ann)
        ack = await mode.upload(ann, {"game_id": game_id})  # found: judged on its content, not refused
        ended = await mode.game_end(ann, game_id, "complete")
        return ack, ended, ann.game_over, len(mode.awaiting_return), len(mode.configs)

    ack, ended, over, awaiting, configs = run(main())
    assert ack["ok"] is False and ack["code"] != "not_in_game"
    assert ended and over is not None and over["reason"] == "complete"
    assert awaiting == 0 and configs == 0  # nothing kept once the game is over for both


def test_a_player_dropped_while_away_still_ends_their_game() -> None:
    async def main() -> tuple[bool, dict[str, Any] | None, int, int, bool]:
        mode, scene, _, _, people = setup()
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        ann.sid = None
        await mode.disconnected(ann)
        assert await mode.game_end(bob, game_id, "partner_left")
        await mode.dropped(ann)  # gone past the drop delay: the server stops keeping her game
        kept = len(mode.awaiting_return), len(mode.configs)
        ann.sid = "sid-ann-2"
        await mode.reconnected(ann)
        ended = await mode.game_end(ann, game_id, "partner_left")
        other = await mode.game_end(ann, "p2p-not-hers", "complete")
        return ended, ann.game_over, *kept, other

    ended, over, awaiting, configs, other = run(main())
    assert awaiting == 0 and configs == 0
    assert ended and over is not None and over["reason"] == "partner_left"
    assert other is False


def test_a_reload_of_the_away_player_leaves_the_kept_game() -> None:
    async def main() -> tuple[dict[str, Any] | None, int, list[Any]]:
        mode, scene, _, sio, people = setup()
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        ann.sid = None
        await mode.disconnected(ann)
        assert await mode.game_end(bob, game_id, "complete")
        ann.sid = "sid-ann-2"
        await mode.join(ann, scene, None)  # a new page: her simulation is gone, she left that game
        return ann.game_over, len(mode.awaiting_return), sio.to("sid-ann-2", "pyodide_game_ready")

    over, awaiting, ready = run(main())
    assert over is not None and over["reason"] == "left"
    assert awaiting == 0 and ready == []  # never put in a second game while the first was hers


def test_a_game_ending_in_error_tells_the_partner_at_once() -> None:
    async def main() -> list[Any]:
        mode, scene, _, sio, people = setup()
        game_id = await _game_of_two(mode, scene, people)
        assert await mode.game_end(people["ann"], game_id, "error", "RuntimeLoadError: files: Failed to fetch")
        return sio.to("sid-bob", "p2p_partner_left")

    told = run(main())  # bob's page may still be connecting (no peer channel yet): only the server can tell him
    assert len(told) == 1 and told[0]["player_id"] is not None
    # With the page's error: a game running on bob's page fails with it, whichever page reached the step first.
    assert told[0]["reason"] == "error" and told[0]["error"] == "RuntimeLoadError: files: Failed to fetch"


def test_a_partner_error_is_passed_on_cut_to_the_event_limit_and_other_ends_carry_no_error() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        mode, scene, _, sio, people = setup()
        game_id = await _game_of_two(mode, scene, people)
        assert await mode.game_end(people["ann"], game_id, "error", "x" * 5000 + "ZeroDivisionError")
        first = sio.to("sid-bob", "p2p_partner_left")
        mode2, scene2, _, sio2, people2 = setup()
        game2 = await _game_of_two(mode2, scene2, people2)
        assert await mode2.game_end(people2["ann"], game2, "desync")
        return first, sio2.to("sid-bob", "p2p_partner_left")

    (errored,), (desynced,) = run(main())
    assert len(errored["error"]) == 4000 and errored["error"].endswith("ZeroDivisionError")  # the traceback's tail
    assert desynced["reason"] == "desync" and "error" not in desynced


def test_a_complete_game_end_tells_nobody() -> None:
    async def main() -> list[Any]:
        mode, scene, _, sio, people = setup()
        game_id = await _game_of_two(mode, scene, people)
        assert await mode.game_end(people["ann"], game_id, "complete")
        return sio.to("sid-bob", "p2p_partner_left")

    assert run(main()) == []  # bob finishes his own last frames; he did not lose a partner


def test_a_player_away_when_the_partner_left_is_told_on_return() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        mode, scene, _, sio, people = setup()
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        ann.sid = None
        await mode.disconnected(ann)  # away while bob's page fails and ends the game
        assert await mode.game_end(bob, game_id, "error", "boom")
        before = sio.to("sid-ann-2", "p2p_partner_left")
        ann.sid = "sid-ann-2"
        await mode.reconnected(ann)
        return before, sio.to("sid-ann-2", "p2p_partner_left")

    before, after = run(main())
    assert before == [] and len(after) == 1  # else her page waits for bob for ever
    # The same notice bob's end sent the connected: her running game fails with his error, as it would have.
    assert after[0]["reason"] == "error" and after[0]["error"] == "boom" and after[0]["player_id"] is not None


def test_a_player_away_when_the_partner_went_past_the_grace_is_told_they_left_on_return() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        mode, scene, _, sio, people = setup()
        ann, bob = people["ann"], people["bob"]
        await _game_of_two(mode, scene, people)
        for person in (ann, bob):
            person.sid = None
            await mode.disconnected(person)
        await mode.expire(mode.clock() + 3600)  # both gone past the grace: nobody connected to tell now
        ann.sid = "sid-ann-2"
        await mode.reconnected(ann)
        return sio.to("sid-ann-2", "p2p_partner_left"), [d for e, d, _ in sio.emits if e == "p2p_partner_left"]

    told, every = run(main())
    assert len(told) == 1 and told[0]["reason"] == "left" and "error" not in told[0]
    assert every == told
