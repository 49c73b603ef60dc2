"""Groups across scenes, the start countdown, balanced conditions and require_prolific_pid against a real server
with real python-socketio clients (the auth the page sends) and the real SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import socketio
from experiment_harness import build_app, run_async
from lifecycle_support import Page, TwoCounters, event_kinds, humans_scene, participant_row, read_db

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager, StaticScene
from interactive_gym.scenes.stager import AssignCondition


def pair_game(scene_id: str, **kwargs: Any) -> GymScene:
    return humans_scene(scene_id, TwoCounters, fps=20, max_steps=3, **kwargs)


def keep_config(db: Path, timeout_s: float = 20.0) -> RemoteConfig:
    stager = Stager([pair_game("first", start_countdown_s=0), StaticScene("break", title="Break"),
                     pair_game("second", keep_group_from="first", waiting_room_timeout_s=timeout_s),
                     EndScene("end", completion_code="DONE1")])
    return RemoteConfig().experiment("keepgroup", stager=stager, db=db)


async def _play(page: Page, scene_index: int, scene_id: str) -> dict[str, Any]:
    """Joins the game scene, waits for its start and its end; returns the game_start."""
    await page.wait_scene(scene_id)
    assert await page.call("join_game", {"scene_index": scene_index, "scene_id": scene_id}) == {"ok": True}
    start = await page.wait("game_start", lambda s: s["scene_id"] == scene_id)
    await page.wait("game_over", lambda g: g["game_id"] == start["game_id"])
    return start


async def _advance(page: Page, index: int, scene_id: str) -> None:
    for _ in range(50):  # the game-over is applied on the participant's queue just after the page hears of it
        ack = await page.call("advance", {"scene_index": index, "scene_id": scene_id})
        if ack.get("ok"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{page.subject} could not leave {scene_id}")


def test_pairs_re_form_after_a_restart_even_when_arrivals_interleave(live_server, tmp_path: Path) -> None:
    """Two pairs play "first" (a1+a2, then b1+b2); the server restarts; in "second" the arrivals interleave
    a1, b1, b2, a2 (first come, first served would pair a1 with b1): the same pairs form, each member in the
    same role, after the start countdown; group_formed rows name every group."""
    db = tmp_path / "keep.sqlite"
    first_server = live_server(build_app(keep_config(db)).asgi)
    names = ["a1", "a2", "b1", "b2"]
    pages = {n: Page(first_server.url, n) for n in names}
    roles: dict[str, str] = {}

    async def first_scene() -> None:
        for pair in (("a1", "a2"), ("b1", "b2")):
            for n in pair:
                await pages[n].open()
            starts = await asyncio.gather(*(_play(pages[n], 0, "first") for n in pair))
            assert starts[0]["game_id"] == starts[1]["game_id"] and starts[0]["countdown_s"] == 0
            for n, start in zip(pair, starts, strict=True):
                roles[n] = start["agent_id"]
        for n in names:
            await _advance(pages[n], 0, "first")
            await pages[n].wait_scene("break")
            await _advance(pages[n], 1, "break")
            await pages[n].wait_scene("second")
            await pages[n].close()

    run_async(first_scene())
    first_server.stop()
    second_server = live_server(build_app(keep_config(db)).asgi, port=first_server.port)

    async def second_scene() -> dict[str, dict[str, Any]]:
        starts: dict[str, dict[str, Any]] = {}
        for n in ("a1", "b1", "b2", "a2"):
            page = pages[n]
            page.url, page.inbox = second_server.url, []
            await page.open()
            await page.wait_scene("second")
            assert await page.call("join_game", {"scene_index": 2, "scene_id": "second"}) == {"ok": True}
            if n == "a1":
                told = await page.wait("waiting")
                assert "your partner from the previous game" in told["notice"] and told["waiting"] == 1
        for n in names:
            starts[n] = await pages[n].wait("game_start", lambda s: s["scene_id"] == "second")
            game_id = starts[n]["game_id"]
            episode = await pages[n].wait("episode_start", lambda e, g=game_id: e["game_id"] == g)
            assert episode["episode"] == 0
        for n in names:
            await pages[n].close()
        return starts

    starts = run_async(second_scene())
    assert starts["a1"]["game_id"] == starts["a2"]["game_id"] != starts["b1"]["game_id"] == starts["b2"]["game_id"]
    assert {n: s["agent_id"] for n, s in starts.items()} == roles
    assert all(2.0 < s["countdown_s"] <= 3.0 for s in starts.values())  # the default countdown of a pair scene
    groups = read_db(db, lambda s: [(e.scene_id, e.data["members"]) for e in s.events("group_formed")])
    assert sorted(groups) == [("first", ["a1", "a2"]), ("first", ["b1", "b2"]),
                              ("second", ["a1", "a2"]), ("second", ["b1", "b2"])]


def test_a_partner_who_never_arrives_times_the_other_out_with_a_clear_page(live_server, tmp_path: Path) -> None:
    """c2 leaves after the first game; c1 waits for them alone (never paired with a member of the other
    pair) and reaches the end page as timed_out; the other pair, arriving meanwhile, plays."""
    db = tmp_path / "gone.sqlite"
    server = live_server(build_app(keep_config(db, timeout_s=2.0)).asgi)

    async def scenario() -> None:
        pages = {n: Page(server.url, n) for n in ("c1", "c2", "d1", "d2")}
        for pair in (("c1", "c2"), ("d1", "d2")):
            for n in pair:
                await pages[n].open()
            await asyncio.gather(*(_play(pages[n], 0, "first") for n in pair))
        await pages["c2"].close()  # c2 is gone for good
        for n in ("c1", "d1", "d2"):
            await _advance(pages[n], 0, "first")
            await _advance(pages[n], 1, "break")
        for n in ("c1", "d1", "d2"):
            assert await pages[n].call("join_game", {"scene_index": 2, "scene_id": "second"}) == {"ok": True}
        end = (await pages["c1"].wait_scene("end", timeout=10))["scene"]
        assert "No other participant arrived in time" in end["notice"]
        assert pages["c1"].events("game_start")[-1]["scene_id"] == "first"  # never started a second game
        d_starts = [await pages[n].wait("game_start", lambda s: s["scene_id"] == "second") for n in ("d1", "d2")]
        assert d_starts[0]["game_id"] == d_starts[1]["game_id"]
        for page in pages.values():
            await page.close()

    run_async(scenario())
    assert participant_row(db, "c1").status == "timed_out"
    assert event_kinds(db, "c1").count("waiting_room_timeout") == 1


# -- recruitment -------------------------------------------------------------------------------------------------
class ProlificPage(Page):
    """A page opened with the given URL parameters (Prolific's, or none)."""

    def __init__(self, url: str, subject: str, params: dict[str, str]) -> None:
        super().__init__(url, subject)
        self.params = params

    async def open(self, *, with_secret: bool = True) -> ProlificPage:
        client = socketio.AsyncClient(reconnection=False)
        client.on("*", self._received)
        await client.connect(self.url, auth={"url_params": self.params, "tab_id": self.tab_id,
                                             "page_id": self.page_id, "generated_id": f"anon-{self.subject}",
                                             "resume": {}}, transports=["websocket"])
        self.sio = client
        return self


def test_require_prolific_pid_refuses_a_visitor_without_it_and_keeps_no_row(live_server, tmp_path: Path) -> None:
    db = tmp_path / "prolific.sqlite"
    config = keep_config(db).recruitment(require_prolific_pid=True)
    server = live_server(build_app(config).asgi)

    async def scenario() -> None:
        stray = await ProlificPage(server.url, "stray", {"subject_id": "stray"}).open()
        refused = await stray.wait("refused")
        assert refused["message"].startswith("Please open this study from Prolific")
        assert stray.scenes() == []
        empty = await ProlificPage(server.url, "empty", {"PROLIFIC_PID": ""}).open()
        assert (await empty.wait("refused"))["message"].startswith("Please open this study from Prolific")
        real = await ProlificPage(server.url, "5f0c", {"PROLIFIC_PID": "5f0c9a", "STUDY_ID": "s1"}).open()
        assert (await real.wait("scene"))["participant_id"] == "5f0c9a"
        for page in (stray, empty, real):
            await page.close()

    run_async(scenario())
    rows = read_db(db, lambda s: [p.participant_id for p in s.participants()])
    assert rows == ["5f0c9a"]  # no row for the refused visitors


# -- balanced conditions -----------------------------------------------------------------------------------------
def conditions_config(db: Path) -> RemoteConfig:
    block = AssignCondition({"easy": StaticScene("easy", title="Easy"), "hard": StaticScene("hard", title="Hard")},
                            seed=3)
    return RemoteConfig().experiment("arms", stager=Stager([block, EndScene("end", completion_code="DONE1")]), db=db)


def test_simultaneous_arrivals_fill_the_arms_evenly_and_keep_their_arm_after_a_restart(live_server,
                                                                                        tmp_path: Path) -> None:
    """12 participants connect at once: 6 per arm, each arm recorded as a condition_assigned event; 5 of the
    easy arm complete; after a restart every one resumes in their own arm; the next arrival goes to the hard arm
    (6 in progress against easy's 5 completed + 1 in progress: equal loads, fewer completed), the one after
    to the easy arm (lighter load)."""
    db = tmp_path / "arms.sqlite"
    first = live_server(build_app(conditions_config(db)).asgi)
    names = [f"p{i:02d}" for i in range(12)]
    pages = {n: Page(first.url, n) for n in names}
    arms: dict[str, str] = {}

    async def arrive() -> None:
        await asyncio.gather(*(pages[n].open() for n in names))
        for n in names:
            arms[n] = (await pages[n].wait("scene"))["scene"]["scene_id"]
        easy = [n for n in names if arms[n] == "easy"]
        for n in easy[:5]:
            assert await pages[n].call("advance", {"scene_index": 0, "scene_id": "easy"}) == {"ok": True}
            await pages[n].wait_scene("end")
        await asyncio.gather(*(p.close() for p in pages.values()))

    run_async(arrive())
    assert sorted(arms.values()).count("easy") == 6
    recorded = read_db(db, lambda s: {e.participant_id: e.data["conditions"]["condition"]
                                      for e in s.events("condition_assigned")})
    assert recorded == arms
    first.stop()
    second = live_server(build_app(conditions_config(db)).asgi, port=first.port)

    async def after_restart() -> list[str]:
        for n in names:
            pages[n].url, pages[n].inbox = second.url, []
        unfinished = [n for n in names if not (arms[n] == "easy" and participant_row(db, n).status == "completed")]
        for n in unfinished:
            await pages[n].open()
            assert (await pages[n].wait("scene"))["scene"]["scene_id"] == arms[n]
            await pages[n].close()
        newcomers = [Page(second.url, f"new{i}") for i in range(2)]
        got = []
        for page in newcomers:
            await page.open()
            got.append((await page.wait("scene"))["scene"]["scene_id"])
            await page.close()
        return got

    assert run_async(after_restart()) == ["hard", "easy"]
