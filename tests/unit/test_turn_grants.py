"""TURN credentials per participant per game (minted once, renewed before expiry, sent as ``turn_refresh``), and
the server's one warning per game when an upload says the game ran over the Socket.IO relay (``server_relay``)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from mode_fakes import FakeHooks, FakeSio, run
from test_p2p_mode import gatherers
from test_p2p_upload_times import upload

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
from interactive_gym.configurations.webrtc import WebRTCSettings
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.p2p_mode import P2PMode
from interactive_gym.server.storage import Storage
from interactive_gym.server.turn_fallback import server_relay_report
from interactive_gym.server.turn_grants import TurnGrants

NOW = 1_700_000_000.0
SECRET = "grant-secret"  # noqa: S105 - a test value
EPHEMERAL = WebRTCSettings.from_config(turn_secret=SECRET, credential_ttl_s=600, turn_urls=["turn:127.0.0.1:3478"],
                                       stun_urls=[], environ={})


# -- the cache (pure) ------------------------------------------------------------------------------------------------
def test_a_participant_gets_one_grant_per_game() -> None:
    grants = TurnGrants(EPHEMERAL)
    first = grants.for_player("g1", "alice", NOW)
    again = grants.for_player("g1", "alice", NOW + 100)  # a second announcement, a later look-up
    assert again is first and grants.minted == 1
    other_game = grants.for_player("g2", "alice", NOW + 100)
    assert other_game.turn_config["username"] == f"{int(NOW) + 700}:alice"  # type: ignore[index]
    assert grants.for_player("g1", "bob", NOW) is not first and grants.minted == 3


def test_grants_are_renewed_only_within_the_margin_and_forgotten_with_their_game() -> None:
    grants = TurnGrants(EPHEMERAL)  # ttl 600 s -> renewed in the last 300 s
    grants.for_player("g1", "alice", NOW)
    grants.for_player("g1", "bob", NOW + 200)
    assert grants.renew_due(NOW + 299) == []
    renewed = grants.renew_due(NOW + 300)
    assert [(g, p) for g, p, _ in renewed] == [("g1", "alice")]
    assert renewed[0][2].expires_at == int(NOW) + 900
    assert grants.for_player("g1", "alice", NOW + 301) is renewed[0][2]  # the renewed one is kept from now on
    assert [p for _, p, _ in grants.renew_due(NOW + 10_000)] == ["alice", "bob"]  # long expired: renewed too
    grants.forget_game("g1")
    assert len(grants) == 0 and grants.renew_due(NOW + 10**6) == []


def test_static_credentials_are_never_renewed() -> None:
    grants = TurnGrants(WebRTCSettings.from_config("u", "c", environ={}))
    grants.for_player("g1", "alice", NOW)
    assert grants.renew_due(NOW + 10**9) == [] and grants.minted == 1


# -- the server_relay report (pure) -----------------------------------------------------------------------------------
def _stats(kind: str | None, errors: Any = ()) -> dict[str, Any]:
    return {"connection": {"type": kind}, "peers": {"1": {"type": kind, "ice_errors": list(errors)}}}


def test_only_server_relay_uploads_are_reported() -> None:
    for kind in ("direct", "relay", None):
        assert server_relay_report(_stats(kind)) is None
    assert server_relay_report({}) is None and server_relay_report({"connection": "server_relay"}) is None


def test_the_report_names_the_turn_errors_merged_across_peers() -> None:
    error = {"error_code": 401, "url": "turn:127.0.0.1:3478?transport=udp", "error_text": "Unauthorized", "count": 3}
    stats = _stats("server_relay", [error, {**error, "error_code": 701, "error_text": "", "count": 1}])
    stats["peers"]["2"] = {"type": "server_relay", "ice_errors": [{**error, "count": 2}]}
    report = server_relay_report(stats)
    assert report is not None and report.peers == ("1", "2")
    assert [(e.error_code, e.count) for e in report.errors] == [(401, 5), (701, 1)]
    line = report.message("p2p-abc", 0)
    assert "p2p-abc" in line and "Socket.IO relay" in line and "401 'Unauthorized'" in line and "x5" in line
    assert report.to_dict()["turn_errors"][0] == {**error, "count": 5}


def test_a_hostile_report_is_bounded_and_printable() -> None:
    junk = [{"error_code": "401", "url": "turn:x\n\x1b[31mFAKE LOG LINE", "error_text": "y" * 10_000, "count": 10**12},
            "not an object", {"error_code": True}]
    report = server_relay_report({"connection": {"type": "server_relay"},
                                  "peers": {"1": {"type": "server_relay", "ice_errors": junk * 100}, "2": "junk"}})
    assert report is not None and len(report.errors) <= 8
    line = report.message("g", 1)
    assert "\n" not in line and "\x1b" not in line and len(line) < 4000
    assert report.errors[0].error_code is None  # a string code is not taken as a number


# -- the p2p mode: announcement, renewal, reconnection ---------------------------------------------------------------
def _mode(settings: WebRTCSettings) -> tuple[P2PMode, GymScene, FakeSio, dict[str, Participant]]:
    width, height = gatherers.canvas_size()
    scene = GymScene("duo", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height,
                     controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                     policy_mapping={"agent_0": "human", "agent_1": "human"}, mode="p2p", max_steps=5,
                     num_episodes=1, waiting_room_timeout_s=30)
    config = RemoteConfig().experiment("turn_unit", stager=Stager([scene, EndScene("end")]))
    config.validate()
    people = {pid: Participant(pid, {}, [scene], tab_id=pid, sid=f"sid-{pid}") for pid in ("ann", "bob")}
    sio = FakeSio()
    hooks = FakeHooks(people, sio)
    return P2PMode(sio, FakeWriterEvents(), BrowserScenes(config), settings, hooks), scene, sio, people


class FakeWriterEvents:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    async def record_event(self, kind: str, data: Any = None, **kwargs: Any) -> None:
        self.events.append((kind, data))


def test_the_ready_event_carries_the_one_grant_and_renewals_reach_each_page() -> None:
    async def main() -> tuple[P2PMode, FakeSio, dict[str, Participant]]:
        mode, scene, sio, people = _mode(EPHEMERAL)
        for pid in ("ann", "bob"):
            await mode.join(people[pid], scene, None)
        return mode, sio, people

    mode, sio, people = run(main())
    for pid in ("ann", "bob"):
        [ready] = sio.to(f"sid-{pid}", "pyodide_game_ready")
        config, turn = ready["rtc_configuration"], ready["turn_config"]
        assert set(turn) == {"username", "credential", "force_relay", "expires_at"}  # the seed's names (+ expiry)
        assert turn["username"].endswith(":" + pid) and turn["expires_at"] > time.time()
        assert config == {"iceServers": [{"urls": ["turn:127.0.0.1:3478"], "username": turn["username"],
                                          "credential": turn["credential"]}], "iceTransportPolicy": "all"}
        assert "ice_servers" not in ready and "stun_urls" not in ready  # one shape only
        assert SECRET not in repr(ready)
    assert mode.turn_grants.minted == 2
    game_id = sio.to("sid-ann", "pyodide_game_ready")[0]["game_id"]

    async def later() -> None:
        await mode._renew_turn(time.time())  # nothing due yet
        assert sio.to("sid-ann", "turn_refresh") == []
        people["bob"].sid = None
        await mode.disconnected(people["bob"])
        await mode._renew_turn(time.time() + 400)  # within 300 s of expiry: renewed for both, sent to ann only
        people["bob"].sid = "sid-bob-2"
        await mode.reconnected(people["bob"])  # bob's page gets the grant renewed while it was away

    run(later())
    [ann_refresh] = sio.to("sid-ann", "turn_refresh")
    [bob_refresh] = sio.to("sid-bob-2", "turn_refresh")
    assert sio.to("sid-bob", "turn_refresh") == []
    ann_ready = sio.to("sid-ann", "pyodide_game_ready")[0]
    assert ann_refresh["game_id"] == game_id
    assert ann_refresh["turn_config"]["expires_at"] > ann_ready["turn_config"]["expires_at"]
    assert ann_refresh["rtc_configuration"]["iceServers"][0]["username"] == ann_refresh["turn_config"]["username"]
    assert bob_refresh["turn_config"]["username"].endswith(":bob") and mode.turn_grants.minted == 4


def test_grants_of_a_game_that_is_over_are_dropped() -> None:
    async def main() -> tuple[int, int, list[Any]]:
        mode, scene, sio, people = _mode(EPHEMERAL)
        for pid in ("ann", "bob"):
            await mode.join(people[pid], scene, None)
        game_id = sio.to("sid-ann", "pyodide_game_ready")[0]["game_id"]
        during = len(mode.turn_grants)
        for pid in ("ann", "bob"):
            await mode.game_end(people[pid], game_id, "complete")
        await mode._renew_turn(time.time() + 10_000)
        return during, len(mode.turn_grants), sio.to("sid-ann", "turn_refresh")

    during, after, refreshes = run(main())
    assert (during, after, refreshes) == (2, 0, [])


# -- the p2p mode: server_relay uploads ------------------------------------------------------------------------------
def test_concurrent_server_relay_uploads_warn_once_per_game(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "relay.sqlite"
    error = {"error_code": 401, "url": "turn:127.0.0.1:3478?transport=udp", "error_text": "Unauthorized",
             "count": 2, "first_ms": 1, "last_ms": 2}

    def relayed(stats_peer: str) -> dict[str, Any]:
        return {"connection": {"type": "server_relay"},
                "peers": {stats_peer: {"type": "server_relay", "ice_errors": [error]}}}

    async def main() -> list[dict[str, Any]]:
        width, height = gatherers.canvas_size()
        scene = GymScene("duo", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                         height=height, controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                         policy_mapping={"agent_0": "human", "agent_1": "human"}, mode="p2p", max_steps=3,
                         num_episodes=1)
        config = RemoteConfig().experiment("relay_unit", stager=Stager([scene, EndScene("end")]), db=db)
        config.validate()
        writer = DataWriter(db, experiment_id="relay_unit")
        await writer.start()
        sio = FakeSio()
        people = [Participant(pid, {}, [scene], tab_id=pid, sid=f"sid-{pid}") for pid in ("ann", "bob")]
        mode = P2PMode(sio, writer, BrowserScenes(config), EPHEMERAL, FakeHooks({p.participant_id: p for p in people}, sio))
        for person in people:
            await mode.join(person, scene, None)
        readies = {to: data for event, data, to in sio.emits if event == "pyodide_game_ready"}
        payloads = []
        for person, peer in zip(people, ("1", "0"), strict=True):
            ready = readies[person.sid]
            payload = upload(ready["config"], ready["game_id"], time.time() - 5.0, 0.0)
            payload["stats"] = relayed(peer)
            payloads.append(payload)
        # Both peers' uploads at once (each on its own participant's queue in the real server), then a repeat.
        acks = await asyncio.gather(*(mode.upload(p, payload) for p, payload in zip(people, payloads, strict=True)))
        acks.append(await mode.upload(people[0], payloads[0]))
        await writer.close()
        return acks

    with caplog.at_level(logging.WARNING, logger="interactive_gym.p2p"):
        acks = run(main())
    assert all(a["ok"] for a in acks)
    warnings = [r.getMessage() for r in caplog.records if "Socket.IO relay" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "401 'Unauthorized'" in warnings[0] and "turn:127.0.0.1:3478?transport=udp" in warnings[0]
    with Storage(db, readonly=True) as storage:
        episodes = storage.episodes()
        events = [e for e in storage.events() if e.kind == "p2p_server_relay"]
    assert {e.meta["network"]["connection"]["type"] for e in episodes} == {"server_relay"}
    assert len(events) == 1 and events[0].data["turn_errors"][0]["error_code"] == 401
