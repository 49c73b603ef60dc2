"""A game that ends while a player's new page is still getting it back (found by tests/e2e/test_chaos.py).

The partner played the game to its end while the reloaded page loaded: the new page had been given the game to
rejoin, its sender's game was over and nobody would ever send it, so it waited on "Getting your game back…" for
ever. The server now tells such a page which partners' games are over (``p2p_peer_finished``), also after a blip
of its socket and when the end races the rejoin; the page's end is stored (``p2p_game_end``) with its reason.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from mode_fakes import run
from test_p2p_away_player import _game_of_two
from test_p2p_mode import setup

from interactive_gym.server.game_over import END_MESSAGES, P2P_END_REASONS
from interactive_gym.server.schemas import PayloadError, validate_payload


def _recording(hooks: Any) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    async def record_event(kind: str, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        events.append((kind, data))

    hooks.record_event = record_event
    return events


async def _reload(mode: Any, scene: Any, bob: Any, sid: str) -> None:
    bob.sid = None
    await mode.disconnected(bob)
    bob.sid, bob.page_id = sid, f"page-{sid}"
    await mode.join(bob, scene, None)


def test_a_page_still_getting_the_game_is_told_its_sender_finished_and_ends_with_its_reason() -> None:
    async def main() -> tuple[Any, ...]:
        mode, scene, hooks, sio, people = setup()
        events = _recording(hooks)
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        await _reload(mode, scene, bob, "sid-bob-2")
        (ready,) = sio.to("sid-bob-2", "pyodide_game_ready")
        before = sio.to("sid-bob-2", "p2p_peer_finished")
        assert await mode.game_end(ann, game_id, "complete")
        told = sio.to("sid-bob-2", "p2p_peer_finished")
        # The page blips before acting on it: told again on its new socket.
        bob.sid = None
        await mode.disconnected(bob)
        bob.sid = "sid-bob-3"
        await mode.reconnected(bob)
        again = sio.to("sid-bob-3", "p2p_peer_finished")
        assert await mode.game_end(bob, game_id, "ended_while_away")
        assert await mode.game_end(bob, game_id, "ended_while_away")  # the event twice: stored once
        return ready, before, told, again, bob.game_over, events, len(mode.awaiting_return), ann

    ready, before, told, again, over, events, awaiting, ann = run(main())
    assert ready["rejoin"] is True and before == []
    ann_player = 1 - ready["my_player_id"]
    assert told == again == [{"game_id": ready["game_id"], "player_id": ann_player}]
    assert over == {"reason": "ended_while_away", "message": END_MESSAGES["ended_while_away"]}
    assert [d["reason"] for k, d in events if k == "p2p_game_end"] == ["complete", "ended_while_away"]
    assert awaiting == 0


def test_a_partner_that_is_not_getting_the_game_hears_nothing_of_a_complete_end() -> None:
    async def main() -> list[Any]:
        mode, scene, _, sio, people = setup()
        game_id = await _game_of_two(mode, scene, people)
        assert await mode.game_end(people["ann"], game_id, "complete")
        return sio.to("sid-bob", "p2p_peer_finished") + sio.to("sid-bob", "p2p_partner_left")

    assert run(main()) == []  # bob plays his own last frames


def test_an_end_racing_the_rejoin_never_leaves_the_new_page_waiting() -> None:
    """The partner's end and the new page's join run at once (their events are on different participants'
    queues): either the page is given the game and told the sender finished, or it is told it left."""
    outcomes = set()
    for order in range(6):
        async def main(order: int = order) -> str:
            mode, scene, _, sio, people = setup()
            ann, bob = people["ann"], people["bob"]
            game_id = await _game_of_two(mode, scene, people)
            bob.sid = None
            await mode.disconnected(bob)
            bob.sid, bob.page_id = "sid-bob-2", "page-2"

            async def end() -> None:
                for _ in range(order // 2):
                    await asyncio.sleep(0)
                await mode.game_end(ann, game_id, "complete")

            first, second = (mode.join(bob, scene, None), end()) if order % 2 else (end(), mode.join(bob, scene, None))
            await asyncio.gather(first, second)
            rejoined = [r for r in sio.to("sid-bob-2", "pyodide_game_ready") if r.get("rejoin")]
            if rejoined:
                assert sio.to("sid-bob-2", "p2p_peer_finished"), "given the game, never told its sender finished"
                return "told"
            assert bob.game_over is not None and bob.game_over["reason"] == "left"
            return "left"

        outcomes.add(run(main()))
    assert outcomes == {"told", "left"}  # both interleavings happen across the orders tried


def test_every_p2p_end_reason_has_words_and_passes_the_schema() -> None:
    for reason in P2P_END_REASONS:
        assert reason in END_MESSAGES
        assert validate_payload("p2p_game_end", {"game_id": "p2p-ab", "reason": reason})["reason"] == reason
    for bad in ("left", "complete ", "ended_by_researcher", "complete|error", "x" * 40):
        with pytest.raises(PayloadError):
            validate_payload("p2p_game_end", {"game_id": "p2p-ab", "reason": bad})


def test_the_game_config_carries_the_words_the_page_shows() -> None:
    async def main() -> Any:
        mode, scene, _, sio, people = setup()
        await _game_of_two(mode, scene, people)
        return sio.to("sid-ann", "pyodide_game_ready")[0]["config"]["end_messages"]

    assert run(main()) == END_MESSAGES


def _writer_events(mode: Any) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    async def record_event(kind: str, data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        events.append((kind, data))

    mode.writer.record_event = record_event
    return events


def _steps(count: int) -> list[dict[str, Any]]:
    return [{"t": t, "keys": {}, "actions": {"agent_0": 0, "agent_1": 0}, "rewards": {}, "terminated": {},
             "truncated": {}, "checksum": None} for t in range(count)]


@pytest.mark.parametrize("end", ["ended_while_away", "error", "partner gone past the grace"])
def test_a_new_page_that_never_resumed_does_not_hold_back_the_parity_verdict(end: str) -> None:
    """Found by the chaos test on CI: both peers had uploaded (the old page on closing, the partner at its end),
    the verdict waited for the new page's piece, and the new page ended without resuming: no verdict, ever."""
    async def main() -> list[dict[str, Any]]:
        mode, scene, _, _, people = setup()
        events = _writer_events(mode)
        ann, bob = people["ann"], people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        game = mode.coordinator.games[game_id]
        await _reload(mode, scene, bob, "sid-bob-2")
        bob_player = game.player_of("bob")
        assert game.rejoining == {bob_player}
        mode.coordinator.add_upload(game, 0, "bob", _steps(3), partial=True)  # the old page, on closing
        mode.coordinator.add_upload(game, 0, "ann", _steps(5), partial=False)
        if end == "partner gone past the grace":
            bob.sid = None
            await mode.disconnected(bob)
            await mode.expire(time.time() + 3600)
        else:
            assert await mode.game_end(ann, game_id, "complete")
            assert [k for k, _ in events if k == "p2p_parity"] == []  # bob's new page may still resume
            assert await mode.game_end(bob, game_id, end)
        return [d for k, d in events if k == "p2p_parity"]

    (verdict,) = run(main())
    assert verdict["episode"] == 0 and verdict["agree"] and verdict["frames_compared"] == 3


def test_a_new_page_that_resumes_still_gets_its_piece_judged() -> None:
    async def main() -> list[dict[str, Any]]:
        mode, scene, _, _, people = setup()
        events = _writer_events(mode)
        bob = people["bob"]
        game_id = await _game_of_two(mode, scene, people)
        game = mode.coordinator.games[game_id]
        await _reload(mode, scene, bob, "sid-bob-2")
        mode.coordinator.add_upload(game, 0, "bob", _steps(3), partial=True)
        mode.coordinator.add_upload(game, 0, "ann", _steps(5), partial=False)
        await mode.expire(time.time())  # nobody gone past the grace: the rejoin goes on
        return [d for k, d in events if k == "p2p_parity"]

    assert run(main()) == []
