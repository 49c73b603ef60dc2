"""A participant whose socket is away when their wait for partners runs out still reads why, when they return.

Found by the chaos test: the end page reached through the "already finished" refusal carried no notice, so a
participant who timed out during a network blip saw a completion code without the reason the game never began.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import socketio
from experiment_harness import build_app, load_example, run_async

from interactive_gym.server.flow.participant_flow import TIMEOUT_NOTICE


async def _connect(url: str, resume: dict[str, str], inbox: list[tuple[str, Any]]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    client.on("*", lambda event, data: inbox.append((event, data)))
    await client.connect(url, transports=["websocket"], auth={
        "url_params": {"subject_id": "away"}, "tab_id": "tab-away", "page_id": "page-1", "resume": resume})
    return client


async def _first(inbox: list[tuple[str, Any]], name: str, timeout: float = 10.0) -> Any:
    for _ in range(int(timeout / 0.02)):
        found = [data for event, data in inbox if event == name]
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {name!r}; got {[e for e, _ in inbox]}")


def test_a_participant_away_when_the_wait_runs_out_is_told_why_on_return(live_server, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    app = build_app(example.build_config(waiting_room_timeout_s=1.0, db=str(tmp_path / "away.sqlite")))
    server = live_server(app.asgi)

    async def scenario() -> Any:
        inbox: list[tuple[str, Any]] = []
        client = await _connect(server.url, {}, inbox)
        session = await _first(inbox, "session")
        await _first(inbox, "scene")
        ack = await client.call("advance", {"scene_index": 0, "scene_id": "consent", "answers": {"consent": True}})
        assert ack == {"ok": True}
        await client.call("join_game", {"scene_index": 1, "scene_id": "orchard_pair"})
        await _first(inbox, "waiting")
        await client.disconnect()  # a network blip: away while the wait runs out
        await asyncio.sleep(2.0)
        back: list[tuple[str, Any]] = []
        client = await _connect(server.url, {"away": session["resume_secret"]}, back)
        refused = await _first(back, "refused")
        await client.disconnect()
        return refused

    refused = run_async(scenario())
    assert refused["reason"] == "refused_finished"
    assert refused["end"]["kind"] == "end" and refused["end"]["notice"] == TIMEOUT_NOTICE
