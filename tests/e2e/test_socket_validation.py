"""Malformed Socket.IO payloads from a real client get a specific error, to that client only, are counted, and
never disturb another participant's running game."""

from __future__ import annotations

import asyncio
from pathlib import Path

import socketio
from experiment_harness import build_app, load_example, run_async

MALFORMED = [
    ("advance", "not an object", "payload must be an object"),
    ("advance", {"scene_index": "0", "scene_id": "consent"}, "scene_index: expected a number"),
    ("advance", {"scene_index": 0, "scene_id": "../../etc/passwd"}, "scene_id: invalid format"),
    ("advance", {"scene_index": 0, "scene_id": "consent", "extra": 1}, "unknown field(s): extra"),
    ("advance", {"scene_index": 0}, "scene_id: missing"),
    ("keys", {"game_id": "g-1", "held": ["ArrowLeft"] * 17, "seq": 1}, "held: more than 16 items"),
    ("keys", {"game_id": "g-1", "held": [1], "seq": 1}, "held[0]: expected a string"),
    ("keys", {"game_id": "g-1", "held": [], "seq": True}, "seq: expected a number"),
    ("keys", {"game_id": "g-nope", "held": [], "seq": 1}, "you are not in this game"),
    ("join_game", {"scene_index": 5, "scene_id": "orchard_pair"}, "that is not your current game scene"),
    ("visibility", {"visible": "yes"}, "visible: expected true or false"),
    ("advance", {"scene_index": 0, "scene_id": "consent", "answers": {"consent": False}}, "must agree"),
]


async def _client(url: str, subject: str, inbox: list) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)
    client.on("*", lambda event, data: inbox.append((event, data)))
    await client.connect(url, auth={"url_params": {"subject_id": subject}, "tab_id": subject},
                         transports=["websocket"])
    return client


async def _wait_for(inbox: list, event: str, timeout: float = 10.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for name, data in inbox:
            if name == event:
                return data
        await asyncio.sleep(0.02)
    raise AssertionError(f"no {event!r} event; got {[n for n, _ in inbox]}")


def test_malformed_payloads_are_rejected_without_harming_a_running_game(live_server, tmp_path: Path) -> None:
    example = load_example("examples/demo/two_humans.py")
    app = build_app(example.build_config(max_steps=100_000, fps=20, db=str(tmp_path / "v.sqlite")))
    server = live_server(app.asgi)

    async def scenario() -> None:
        a_inbox: list = []
        b_inbox: list = []
        c_inbox: list = []
        a = await _client(server.url, "player_a", a_inbox)
        b = await _client(server.url, "player_b", b_inbox)
        for client, inbox in ((a, a_inbox), (b, b_inbox)):
            scene = await _wait_for(inbox, "scene")
            ack = await client.call("advance", {"scene_index": 0, "scene_id": scene["scene"]["scene_id"],
                                                "answers": {"consent": True}})
            assert ack == {"ok": True}
        for client in (a, b):
            await client.emit("join_game", {"scene_index": 1, "scene_id": "orchard_pair"})
        # episode_start, not game_start: a pair game ticks only after its start countdown.
        await _wait_for(a_inbox, "episode_start")
        await _wait_for(b_inbox, "episode_start")

        # A third client, still on the consent page, sends every malformed payload in the table.
        attacker = await _client(server.url, "mallory", c_inbox)
        await _wait_for(c_inbox, "scene")
        for event, payload, expected in MALFORMED:
            c_inbox.clear()
            reply = await attacker.call(event, payload)
            if event not in ("keys", "visibility"):
                assert reply["ok"] is False and expected in reply["error"], (event, payload, reply)
            error = await _wait_for(c_inbox, "error")
            assert error["event"] == event and expected in error["message"], (event, payload, error)

        # The running game never saw any of it: both players keep receiving frames, and no error reached them.
        before = sum(1 for name, _ in a_inbox if name == "render")
        await asyncio.sleep(0.5)
        after = sum(1 for name, _ in a_inbox if name == "render")
        assert after - before >= 5
        assert not [d for name, d in a_inbox + b_inbox if name == "error"]
        for client in (a, b, attacker):
            await client.disconnect()

    run_async(scenario())
    assert sum(app.server.flow.rejections.values()) == len(MALFORMED)
    assert app.server.flow.rejections["advance"] == 6
