"""BrowserScenes against a real DataWriter and SQLite: each config is a committed attempt, a reload never
overwrites an earlier attempt, seeds survive a server restart (an in-flight upload still validates), the two
visits of a Repeat are stored apart, and the server, not the page, decides when the game is over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from interactive_gym import EndScene, RemoteConfig, Stager
from interactive_gym.experiment_loader import import_experiment_module
from interactive_gym.scenes.stager import Repeat
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.storage import Location, Storage

ROOT = Path(__file__).resolve().parents[2]


def _config(db: Path, seed: int | None = None) -> RemoteConfig:
    demo = import_experiment_module(ROOT / "examples" / "demo" / "experiment.py")
    scene = demo.browser_game(fps=10, max_steps=3, num_episodes=2)
    scene.seed = seed
    return RemoteConfig().experiment("visits", stager=Stager([Repeat(scene, 2), EndScene("end")]), db=db)


def _participant(config: RemoteConfig, index: int = 0) -> Any:
    sequence = config.stager.sequence_for("p1")  # type: ignore[union-attr]
    return SimpleNamespace(participant_id="p1", index=index, sequence=sequence, scene=sequence[index])


def _payload(config: dict[str, Any], episode: int, steps: int = 3, partial: bool = False) -> dict[str, Any]:
    now = time.time()
    rows = [{"t": t, "keys": {"agent_0": []}, "actions": {"agent_0": 0, "agent_1": 0},
             "rewards": {"agent_0": 0.0, "agent_1": 0.0}, "terminated": {"agent_0": False, "agent_1": False},
             "truncated": {"agent_0": t == 2, "agent_1": t == 2}, "client_ts": now - 1 + 0.1 * t}
            for t in range(steps)]
    return {"scene_id": config["scene_id"], "episode": episode, "seed": config["seeds"][episode],
            "bundle_hash": config["bundle"]["hash"], "partial": partial,
            "end_reason": "page_closed" if partial else "done", "steps": rows,
            "scene_index": config["scene_index"], "attempt": config["attempt"],
            "clock": {"started_at": now - 1.05, "ended_at": now - 0.7, "offset_s": 0.0, "rtt_s": 0.001}}


async def _started(db: Path) -> DataWriter:
    writer = DataWriter(db, experiment_id="visits")
    await writer.start()
    return writer


def test_reload_restart_and_repeat(new_db: Callable[..., Location]) -> None:
    db = new_db("v")
    config = _config(db)

    async def body() -> None:
        writer = await _started(db)
        browser = BrowserScenes(config, writer)
        who = _participant(config)
        first = await browser.config_for(who, who.scene)
        assert (first["scene_index"], first["attempt"], first["episodes"]) == (0, 1, [0, 1])
        assert browser.preload_for(who)["agents"] == first["agents"]  # type: ignore[index]
        episode_0 = _payload(first, 0)
        done = await browser.receive_upload(who, episode_0)
        assert done.ack["ok"] and done.game_over is None
        reload = await browser.config_for(who, who.scene)  # the page is reloaded during episode 1
        assert (reload["attempt"], reload["episodes"], reload["seeds"]) == (2, [1], first["seeds"])
        stale = await browser.receive_upload(who, _payload(first, 1, steps=2, partial=True))  # attempt 1's
        assert stale.ack["ok"] and stale.game_over is None
        await writer.close()

        # Server restart: a fresh BrowserScenes knows nothing in memory; the database has the seeds.
        writer = await _started(db)
        browser = BrowserScenes(config, writer)
        again = await browser.receive_upload(who, episode_0)  # an in-flight retry of attempt 1
        assert again.ack["ok"]
        other = await browser.receive_upload(who, _payload(first, 0))  # other data under the same key
        assert other.ack["code"] == "conflict"
        over = await browser.receive_upload(who, _payload(reload, 1))
        assert over.ack["ok"] and over.game_over is not None and over.game_over["reason"] == "complete"

        # The Repeat's second visit: its own visit, new seeds, its own rows.
        second = _participant(config, index=1)
        repeat = await browser.config_for(second, second.scene)
        assert (repeat["scene_index"], repeat["attempt"], repeat["episodes"]) == (1, 1, [0, 1])
        assert (await browser.receive_upload(second, _payload(repeat, 0))).ack["ok"]
        error = {**_payload(repeat, 1, steps=1, partial=True), "end_reason": "error", "error": "Traceback"}
        failed = await browser.receive_upload(second, error)
        assert failed.game_over is not None and failed.game_over["reason"] == "error"
        await writer.close()

    asyncio.run(body())
    with Storage(db, readonly=True) as storage:
        rows = sorted((e.scene_index, e.attempt, e.episode, e.status, e.step_count) for e in storage.episodes())
    assert rows == [(0, 1, 0, "complete", 3), (0, 1, 1, "partial", 2), (0, 2, 1, "complete", 3),
                    (1, 1, 0, "complete", 3), (1, 1, 1, "partial", 1)]


def test_uploads_for_visits_never_sent_or_with_a_wrong_seed_are_refused(new_db: Callable[..., Location]) -> None:
    db = new_db("v")
    config = _config(db)

    async def body() -> None:
        writer = await _started(db)
        browser = BrowserScenes(config, writer)
        who = _participant(config)
        sent = await browser.config_for(who, who.scene)
        future = await browser.receive_upload(who, {**_payload(sent, 0), "scene_index": 1})
        assert future.ack == {"ok": False, "code": "wrong_visit", "error": future.ack["error"], "retryable": False}
        forged = await browser.receive_upload(who, {**_payload(sent, 0), "attempt": 2})
        assert forged.ack["code"] == "bad_attempt"
        wrong_seed = await browser.receive_upload(who, {**_payload(sent, 0), "seed": sent["seeds"][0] + 1})
        assert wrong_seed.ack["code"] == "bad_seed"
        await writer.close()

    asyncio.run(body())


def test_a_seeded_scene_gives_the_same_seeds_in_a_new_experiment(new_db: Callable[..., Location]) -> None:
    async def seeds(db: Path) -> list[int]:
        config = _config(db, seed=1234)
        writer = await _started(db)
        who = _participant(config)
        sent = await BrowserScenes(config, writer).config_for(who, who.scene)
        await writer.close()
        return sent["seeds"]

    assert asyncio.run(seeds(new_db("a"))) == asyncio.run(seeds(new_db("b")))


def test_an_episode_played_again_after_a_late_stash_is_stored_flagged_as_a_repeat(new_db: Callable[..., Location]) -> None:
    # Offline: attempt 1 finished episode 0 and stashed it; the reload got attempt 2 (episode 0 not complete
    # yet), the stash arrived, and the participant played episode 0 again. Both are stored; the later one is
    # flagged, counted once, and a retry of either (also after a server restart) changes nothing.
    db = new_db("r")
    config = _config(db, seed=7)

    async def body() -> None:
        writer = await _started(db)
        browser = BrowserScenes(config, writer)
        who = _participant(config)
        first = await browser.config_for(who, who.scene)
        reload = await browser.config_for(who, who.scene)
        assert reload["episodes"] == [0, 1]
        stashed = _payload(first, 0)
        assert (await browser.receive_upload(who, stashed)).ack["ok"]
        played_again = _payload(reload, 0)
        again = await browser.receive_upload(who, played_again)
        assert again.ack["ok"] and again.game_over is None
        # Concurrent duplicates of both (a retry racing its ack) change nothing.
        dupes = await asyncio.gather(browser.receive_upload(who, played_again), browser.receive_upload(who, stashed))
        assert all(d.ack["ok"] and d.game_over is None for d in dupes)
        await writer.close()

        writer = await _started(db)  # restart: the first attempt of episode 0 is no longer known in memory
        browser = BrowserScenes(config, writer)
        retries = [await browser.receive_upload(who, p) for p in (played_again, stashed)]
        assert all(r.ack["ok"] and r.game_over is None for r in retries)
        other = _payload(reload, 0)
        other["steps"][1]["rewards"] = {"agent_0": 5.0, "agent_1": 0.0}
        conflict = await browser.receive_upload(who, other)  # other data under the repeat's key: refused
        assert conflict.ack["code"] == "conflict"
        over = await browser.receive_upload(who, _payload(reload, 1))
        assert over.game_over is not None and over.game_over["reason"] == "complete"  # each episode once
        await writer.close()

    asyncio.run(body())
    with Storage(db, readonly=True) as storage:
        rows = sorted((e.attempt, e.episode, e.status, e.meta.get("repeat"), e.meta.get("repeat_of_attempt"))
                      for e in storage.episodes())
        events = [e.data for e in storage.events("browser_episode_repeat")]
    assert rows == [(1, 0, "complete", None, None), (2, 0, "complete", True, 1), (2, 1, "complete", None, None)]
    assert events[0] == {"episode": 0, "attempt": 2, "repeat_of_attempt": 1}


def test_repeat_rule() -> None:
    from interactive_gym.server.browser_scenes import repeat_of

    assert repeat_of(None, set(), 0, 1, False) == (False, None)  # the first complete upload
    assert repeat_of(1, {0}, 0, 1, False) == (False, None)  # a retry of that same attempt
    assert repeat_of(1, {0}, 0, 2, False) == (True, 1)  # another attempt completing it again
    assert repeat_of(None, {0}, 0, 2, False) == (True, None)  # complete in an attempt this process never saw
    assert repeat_of(1, {0}, 0, 2, True) == (False, None)  # a partial never completes anything
    assert repeat_of(1, {0}, 1, 2, False) == (False, None)  # another episode
