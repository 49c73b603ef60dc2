"""Participant-lifecycle findings of game scenes (issue 8) against a real server with real python-socketio
clients: browser-mode reloads and server restarts (finding 6), the server deciding when a browser game is over
(10), group formation that survives a failing env creator and a raising matchmaker (8). Upload limits (finding
7: a 3 MB upload is handled, 5 MB answered too_large) are covered by tests/e2e/test_limits.py."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from experiment_harness import build_app, load_example, run_async
from lifecycle_support import CONSENT, Page, event_kinds, game_config, participant_row, read_db, until

from interactive_gym import EndScene, RemoteConfig, Stager
from interactive_gym.scenes.stager import RandomizeOrder
from interactive_gym.server.modes.base import START_FAILED_NOTICE

BROWSER = "orchard_in_browser"


def _browser_config(db: Path) -> RemoteConfig:
    demo = load_example("examples/demo/experiment.py")
    return game_config(db, demo.browser_game(fps=10, max_steps=3, num_episodes=2))


def _episode(config: dict[str, Any], episode: int, steps: int = 3, end: str = "truncated",
             end_reason: str = "done") -> dict[str, Any]:
    """A browser page's upload of ``episode`` of the attempt ``config`` was sent with."""
    now = time.time()
    last = steps - 1
    rows = [{"t": t, "keys": {"agent_0": []}, "actions": {"agent_0": 0, "agent_1": 0},
             "rewards": {"agent_0": 0.0, "agent_1": 0.0},
             "terminated": {a: end == "terminated" and t == last for a in ("agent_0", "agent_1")},
             "truncated": {a: end == "truncated" and t == last for a in ("agent_0", "agent_1")},
             "client_ts": now - 0.3 + 0.01 * t} for t in range(steps)]
    partial = end_reason != "done"
    return {"scene_id": BROWSER, "episode": episode, "seed": config["seeds"][episode],
            "bundle_hash": config["bundle"]["hash"], "partial": partial, "end_reason": end_reason,
            "error": "Traceback: ZeroDivisionError" if end_reason == "error" else None, "steps": rows,
            "scene_index": config["scene_index"], "attempt": config["attempt"],
            "clock": {"started_at": now - 0.35, "ended_at": now - 0.2, "offset_s": 0.0, "rtt_s": 0.001}}


def _attempt(scene_event: dict[str, Any]) -> dict[str, Any]:
    """The browser config (one attempt) of a ``scene`` event."""
    return scene_event["scene"]["browser"]


async def _next_scene(page: Page, seen: int) -> dict[str, Any]:
    await until(lambda: len(page.scenes()) > seen, 10, f"{page.subject} sent a scene")
    return page.scenes()[-1]


def test_a_reload_is_a_new_attempt_and_a_restart_keeps_the_seeds(live_server, tmp_path: Path) -> None:
    """Finding 6 at the socket level: a socket blip of the same page keeps its attempt; a reload is a new attempt
    that plays only the episodes without a complete upload (the old page restarted at episode 0 and overwrote
    the first attempt); after a server restart an in-flight upload of an earlier attempt still validates against
    the stored seeds (the old server kept seeds in memory and refused it as bad_seed)."""
    db = tmp_path / "f6.sqlite"
    first = live_server(build_app(_browser_config(db)).asgi)
    page = Page(first.url, "reloader")
    sent: dict[str, dict[str, Any]] = {}

    async def before_restart() -> None:
        await page.open()
        sent["first"] = _attempt(await page.wait_scene(BROWSER))
        assert (sent["first"]["attempt"], sent["first"]["episodes"]) == (1, [0, 1])
        seen = len(page.scenes())
        await page.blip()
        assert (await _next_scene(page, seen))["scene"]["browser"]["attempt"] == 1
        seen = len(page.scenes())
        await page.reload()
        sent["reload"] = (await _next_scene(page, seen))["scene"]["browser"]
        assert (sent["reload"]["attempt"], sent["reload"]["seeds"]) == (2, sent["first"]["seeds"])
        ack = await page.call("browser_episode", _episode(sent["reload"], 0))
        assert ack["ok"] is True, ack
        await page.close()

    run_async(before_restart())
    first.stop()
    second = live_server(build_app(_browser_config(db)).asgi, port=first.port)

    async def after_restart() -> None:
        await page.open()
        resumed = _attempt(await page.wait("scene", lambda s: s["scene"]["browser"]["attempt"] == 3))
        assert (resumed["seeds"], resumed["episodes"]) == (sent["first"]["seeds"], [1])
        in_flight = await page.call("browser_episode", _episode(sent["first"], 1))  # sent before the restart
        assert in_flight["ok"] is True, in_flight
        assert await page.call("advance", {"scene_index": 0, "scene_id": BROWSER}) == {"ok": True}
        await page.wait_scene("end")
        await page.close()

    page.url = second.url
    run_async(after_restart())
    rows = read_db(db, lambda s: sorted((e.scene_index, e.attempt, e.episode, e.status, e.seed)
                                        for e in s.episodes()))
    seeds = sent["first"]["seeds"]
    assert rows == [(0, 1, 1, "complete", seeds[1]), (0, 2, 0, "complete", seeds[0])]
    assert participant_row(db, "reloader").status == "completed"


def test_the_server_decides_when_a_browser_game_is_over(live_server, tmp_path: Path) -> None:
    """Finding 10: with num_episodes=2, a one-step "terminated" upload of episode 0 does not end the game (the
    old server ended it on any terminated upload), and a page reporting an environment error ends it as an
    error: the participant reaches the end page as ``errored`` with the error code, never the normal one."""
    db = tmp_path / "f10.sqlite"
    server = live_server(build_app(_browser_config(db)).asgi)

    async def scenario() -> None:
        page = await Page(server.url, "short").open()
        config = _attempt(await page.wait_scene(BROWSER))
        assert (await page.call("browser_episode", _episode(config, 0, steps=1, end="terminated")))["ok"] is True
        early = await page.call("advance", {"scene_index": 0, "scene_id": BROWSER})
        assert early == {"ok": False, "error": "the game is not over yet"}
        failed = await page.call("browser_episode", _episode(config, 1, steps=2, end="", end_reason="error"))
        assert failed["ok"] is True, failed
        assert await page.call("advance", {"scene_index": 0, "scene_id": BROWSER}) == {"ok": True}
        end = (await page.wait_scene("end"))["scene"]
        assert (end["status"], end["completion_code"]) == ("errored", "ERR1")
        await page.close()

    run_async(scenario())
    row = participant_row(db, "short")
    assert (row.status, row.completion_code) == ("errored", "ERR1")
    assert read_db(db, lambda s: [(e.episode, e.status, e.step_count) for e in s.episodes()]) == [
        (0, "complete", 1), (1, "partial", 2)]
    assert event_kinds(db, "short").count("game_error") == 1


class FlakyEnvCreator:
    """The demo env creator, failing the next ``failures`` calls (a game whose env cannot be built)."""

    def __init__(self, make: Any) -> None:
        self.make = make
        self.failures = 0

    def __call__(self, **kwargs: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the env could not be built")
        return self.make(**kwargs)


def test_a_game_that_fails_to_start_requeues_its_group_until_they_time_out(live_server, tmp_path: Path) -> None:
    """Finding 8: when the env creator raises as the first game starts, both waiters are told (a ``waiting``
    with a notice), stay queued, and time out to the end page as ``timed_out``. The old server let the
    exception escape the join: both stayed on "waiting" forever, no longer in any queue."""
    db = tmp_path / "f8.sqlite"
    example = load_example("examples/demo/two_humans.py")
    config = example.build_config(waiting_room_timeout_s=2.0, db=str(db))
    creator = FlakyEnvCreator(example.gatherers.make_env)
    config.stager.scene("orchard_pair").env_creator = creator
    app = build_app(config)
    creator.failures = 1  # validation built the env once; the first game's env fails
    server = live_server(app.asgi)

    async def scenario() -> list[Page]:
        pages = [await Page(server.url, s).open() for s in ("wait_a", "wait_b")]
        for page in pages:
            await page.wait_scene("consent")
            assert await page.call("advance", {"scene_index": 0, "scene_id": "consent", "answers": CONSENT}) == {
                "ok": True}
            assert await page.call("join_game", {"scene_index": 1, "scene_id": "orchard_pair"}) == {"ok": True}
        for page in pages:
            told = await page.wait("waiting", lambda w: w.get("notice") == START_FAILED_NOTICE)
            assert (told["waiting"], told["needed"]) == (2, 2)  # both back in the queue
        for page in pages:
            end = (await page.wait_scene("end", timeout=8))["scene"]
            assert "notice" in end
            await page.close()
        return pages

    pages = run_async(scenario())
    assert all(p.events("game_start") == [] for p in pages)
    assert [(participant_row(db, s).status) for s in ("wait_a", "wait_b")] == ["timed_out", "timed_out"]
    assert event_kinds(db).count("game_start_failed") == 1
    assert [event_kinds(db, s).count("waiting_room_timeout") for s in ("wait_a", "wait_b")] == [1, 1]


def _raising_matchmaker(waiters: Any, group_size: int) -> list[str] | None:
    raise RuntimeError("matchmaker bug")


def test_a_raising_matchmaker_strands_nobody_and_other_rooms_still_expire(live_server, tmp_path: Path) -> None:
    """Finding 8: a researcher's matchmaker that raises (on joins and on presence changes) leaves its waiters
    told where they stand and timing out as usual, and the other scene's room keeps expiring. The old server
    let the exception escape the join handler: the waiter never got a ``waiting`` message."""
    db = tmp_path / "f8b.sqlite"
    example = load_example("examples/demo/two_humans.py")
    broken, fine = (example.build_config(waiting_room_timeout_s=1.5).stager.scene("orchard_pair") for _ in range(2))
    broken.scene_id, fine.scene_id = "broken_match", "fine_match"
    broken.matchmaker = _raising_matchmaker
    stager = Stager([RandomizeOrder([broken, fine], keep=1), EndScene("end", completion_code="DONE1")])
    config = RemoteConfig().experiment("lifecycle", stager=stager, db=db)
    app = build_app(config)
    server = live_server(app.asgi)
    first_scene = {f"mm{i}": stager.sequence_for(f"mm{i}")[0].scene_id for i in range(40)}
    in_broken = [pid for pid, scene in first_scene.items() if scene == "broken_match"][:2]
    in_fine = [pid for pid, scene in first_scene.items() if scene == "fine_match"][:1]

    async def scenario() -> None:
        pages = [await Page(server.url, pid).open() for pid in in_broken + in_fine]
        for page in pages:
            scene = (await page.wait("scene"))["scene"]["scene_id"]
            assert await page.call("join_game", {"scene_index": 0, "scene_id": scene}) == {"ok": True}
            await page.wait("waiting")
        await pages[0].emit("visibility", {"visible": False})
        await pages[0].emit("visibility", {"visible": True})  # presence change: the matchmaker runs and raises
        for page in pages:
            await page.wait_scene("end", timeout=8)
        await asyncio.sleep(0.1)
        for page in pages:
            assert not [e for e in page.events("error") if "internal error" in e["message"]]
            await page.close()

    run_async(scenario())
    assert app.server.server_mode.rooms.matchmaker_failures >= 3
    assert [participant_row(db, pid).status for pid in in_broken + in_fine] == ["timed_out"] * 3
