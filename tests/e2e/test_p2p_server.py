"""The p2p server side with real Socket.IO clients: matching under simultaneous arrivals, per-player game
announcements with TURN credentials, signaling confined to a game, parity verdicts, partner loss."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import db_under_test
import socketio
from experiment_harness import build_app, load_example, run_async

SCENE = "orchard_p2p"


class Client:
    """One simulated participant page (a real python-socketio client)."""

    def __init__(self, url: str, subject: str) -> None:
        self.url = url
        self.subject = subject
        self.inbox: list[tuple[str, object]] = []
        self.sio = socketio.AsyncClient(reconnection=False)
        self.sio.on("*", lambda event, data: self.inbox.append((event, data)))

    async def connect(self) -> None:
        await self.sio.connect(self.url, auth={"url_params": {"subject_id": self.subject}, "tab_id": self.subject},
                               transports=["websocket"])

    def events(self, name: str) -> list:
        return [data for event, data in self.inbox if event == name]

    async def wait(self, name: str, timeout: float = 10.0) -> dict:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"{self.subject}: no {name!r}; got {[e for e, _ in self.inbox]}")


def _app(tmp_path: Path, **kwargs):
    example = load_example("examples/demo/p2p_pair.py")
    return build_app(example.build_config(consent=False, db=str(tmp_path / "p2p.sqlite"), **kwargs))


def test_simultaneous_arrivals_form_disjoint_pairs_with_per_player_credentials(live_server, tmp_path) -> None:
    app = _app(tmp_path, webrtc={"turn_secret": "s3cret", "turn_urls": ["turn:127.0.0.1:3478"], "stun_urls": []})
    server = live_server(app.asgi)

    async def scenario() -> list[Client]:
        clients = [Client(server.url, f"p{i:02d}") for i in range(24)]
        await asyncio.gather(*(c.connect() for c in clients))
        await asyncio.gather(*(c.wait("scene") for c in clients))
        acks = await asyncio.gather(*(c.sio.call("p2p_join", {"scene_index": 0, "scene_id": SCENE}) for c in clients))
        assert all(ack == {"ok": True} for ack in acks)
        await asyncio.gather(*(c.wait("pyodide_game_ready") for c in clients))
        await asyncio.sleep(0.3)  # any duplicate announcement would have arrived by now
        for c in clients:
            await c.sio.disconnect()
        return clients

    clients = run_async(scenario())
    games: dict[str, list[tuple[str, dict]]] = {}
    for c in clients:
        ready = c.events("pyodide_game_ready")
        assert len(ready) == 1, f"{c.subject} got {len(ready)} game announcements"
        games.setdefault(ready[0]["game_id"], []).append((c.subject, ready[0]))
    assert len(games) == 12
    for members in games.values():
        assert len(members) == 2
        (a, ra), (b, rb) = members
        assert ra["seed"] == rb["seed"] and ra["config"]["seeds"] == rb["config"]["seeds"]
        assert {ra["my_player_id"], rb["my_player_id"]} == {0, 1}
        # A page learns player indices, never its partner's participant id.
        assert "player_subjects" not in ra and b not in repr(ra) and a not in repr(rb)
        for subject, ready in members:
            turn = ready["turn_config"]
            assert turn["username"].endswith(":" + subject)  # minted for this participant only
            assert "s3cret" not in json.dumps(ready)
            assert ready["config"]["mode"] == "p2p" and ready["config"]["p2p"]["num_players"] == 2


def test_signaling_stays_inside_a_game_and_parity_is_judged(live_server, tmp_path) -> None:
    app = _app(tmp_path, max_steps=3)
    server = live_server(app.asgi)

    def steps(action_b: int) -> list[dict]:
        return [{"t": t, "actions": {"agent_0": 1, "agent_1": action_b if t == 2 else 0},
                 "rewards": {"agent_0": 0.0, "agent_1": 0.0}, "terminated": {"agent_0": False, "agent_1": False},
                 "truncated": {"agent_0": t == 2, "agent_1": t == 2}, "keys": {}, "checksum": f"{t:x}"}
                for t in range(3)]

    async def scenario() -> None:
        a, b, c, d = (Client(server.url, s) for s in ("ann", "ben", "cat", "dan"))
        for client in (a, b, c, d):
            await client.connect()
            await client.wait("scene")
            await client.sio.call("p2p_join", {"scene_index": 0, "scene_id": SCENE})
        ready = {cl.subject: await cl.wait("pyodide_game_ready") for cl in (a, b, c, d)}
        game_ab, game_cd = ready["ann"]["game_id"], ready["cat"]["game_id"]
        assert game_ab == ready["ben"]["game_id"] != game_cd
        # cat (another game) tries to signal into ann's game: refused, ann receives nothing.
        await c.sio.emit("webrtc_signal", {"game_id": game_ab, "to_player": ready["ann"]["my_player_id"],
                                           "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}})
        err = await c.wait("error")
        assert err["event"] == "webrtc_signal"
        # ben signals ann inside their game: delivered, with ben as the sender.
        await b.sio.emit("webrtc_signal", {"game_id": game_ab, "to_player": ready["ann"]["my_player_id"],
                                           "kind": "offer", "data": {"type": "offer", "sdp": "v=0"}})
        got = await a.wait("webrtc_signal")
        assert got["from_player"] == ready["ben"]["my_player_id"]
        assert not [e for e in a.events("webrtc_signal") if e.get("from_player") is None]

        def upload(client: Client, game: str, seeds: list[int], action_b: int) -> dict:
            now = time.time()  # the page's clock reading of when the episode was played (p2p uploads carry it)
            return {"game_id": game, "scene_id": SCENE, "episode": 0, "seed": seeds[0],
                    "bundle_hash": ready[client.subject]["config"]["bundle"]["hash"], "partial": False,
                    "steps": steps(action_b), "stats": {"connection": {"type": "direct"}},
                    "clock": {"started_at": now - 1.0, "ended_at": now - 0.5, "offset_s": 0.0, "rtt_s": 0.001}}

        for client, game, action in ((a, game_ab, 2), (b, game_ab, 2), (c, game_cd, 2), (d, game_cd, 3)):
            ack = await client.sio.call("p2p_episode", upload(client, game, ready[client.subject]["config"]["seeds"],
                                                              action))
            assert ack == {"ok": True}, ack
        bad = await a.sio.call("p2p_episode", upload(a, game_cd, ready["cat"]["config"]["seeds"], 2))
        assert bad["ok"] is False and bad["code"] == "not_in_game"
        for client, game in ((a, game_ab), (b, game_ab), (c, game_cd), (d, game_cd)):
            assert await client.sio.call("p2p_game_end", {"game_id": game, "reason": "complete"}) == {"ok": True}
            assert (await client.sio.call("advance", {"scene_index": 0, "scene_id": SCENE}))["ok"] is True
            await client.sio.disconnect()

    run_async(scenario())
    with db_under_test.connect(tmp_path / "p2p.sqlite") as con:
        verdicts = {game: json.loads(data) for game, data in
                    con.execute("SELECT game_id, data FROM events WHERE kind='p2p_parity'")}
        episodes = con.execute("SELECT mode, source, status FROM episodes ORDER BY source").fetchall()
    assert sorted(v["agree"] for v in verdicts.values()) == [False, True]
    mismatch = next(v for v in verdicts.values() if not v["agree"])["first_mismatch"]
    assert mismatch["t"] == 2 and mismatch["field"] == "actions"
    assert episodes == [("p2p", s, "complete") for s in ("ann", "ben", "cat", "dan")]


def test_partner_gone_past_grace_is_announced(live_server, tmp_path) -> None:
    server = live_server(_app(tmp_path, disconnect_grace_s=0.5).asgi)

    async def scenario() -> None:
        a, b = Client(server.url, "stay"), Client(server.url, "leave")
        for client in (a, b):
            await client.connect()
            await client.wait("scene")
            await client.sio.call("p2p_join", {"scene_index": 0, "scene_id": SCENE})
        ready = await a.wait("pyodide_game_ready")
        await b.wait("pyodide_game_ready")
        await b.sio.disconnect()
        left = await a.wait("p2p_partner_left", timeout=5)
        assert left["game_id"] == ready["game_id"] and left["player_id"] == 1 - ready["my_player_id"]
        await a.sio.disconnect()

    run_async(scenario())
