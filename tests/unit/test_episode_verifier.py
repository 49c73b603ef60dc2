"""EpisodeVerifier: every uploaded episode is replayed off the event loop and a verdict is stored beside it.

Real parts throughout: real demo episodes recorded by BrowserGameHost, validated by the real upload validation,
replayed in a real spawned worker process, verdicts written by the real DataWriter into SQLite.
"""

from __future__ import annotations

import asyncio
import copy
import multiprocessing
import os
import sys
import time
from pathlib import Path
from typing import Any

from interactive_gym.envs.determinism import PYTHON_HASH_SEED
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.episode_verifier import VERDICT_EVENT, EpisodeVerifier
from interactive_gym.server.storage import Storage
from interactive_gym.server.upload_validation import EpisodeUpload, UploadRules, validate_episode_upload

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO) not in sys.path:
    sys.path.append(str(DEMO))  # gatherers.py, importable here and in the spawned replay worker

import gatherers  # noqa: E402
from test_browser_replay import record  # noqa: E402

AGENTS = ("agent_0", "agent_1")
CONTROLS = {"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}


def make_exiting_env() -> Any:
    """An env factory that kills the replay worker (a crash the pool must survive)."""
    if multiprocessing.parent_process() is None:
        raise RuntimeError("only meant to run in a worker process")
    os._exit(7)


def scene(max_steps: int = 450, env_creator: Any = gatherers.make_env) -> GymScene:
    width, height = gatherers.canvas_size()
    return GymScene("solo", env_creator=env_creator, render_fn=gatherers.render, width=width, height=height,
                    controls=CONTROLS, policy_mapping={"agent_0": "human", "agent_1": gatherers.greedy_policy},
                    mode="browser", max_steps=max_steps)


def upload_of(steps: list[dict[str, Any]], seed: int, max_steps: int = 450, participant: str = "P1") -> EpisodeUpload:
    rules = UploadRules("solo", 1, max_steps, AGENTS, (seed,), "h" * 64)
    result = validate_episode_upload(
        {"scene_id": "solo", "episode": 0, "seed": seed, "bundle_hash": "h" * 64, "partial": False, "steps": steps},
        participant_id=participant, participant_scene_id="solo", rules=rules)
    assert isinstance(result, EpisodeUpload), result
    return result


def key(participant: str = "P1") -> dict[str, Any]:
    return {"scene_id": "solo", "game_id": participant, "episode": 0, "source": participant}


async def verdicts_after(db: Path, submit: Any, **kwargs: Any) -> list[Any]:
    """Runs ``submit(verifier)`` against a real writer and verifier, then returns the stored verdict events."""
    writer = DataWriter(db, experiment_id="exp")
    await writer.start()
    verifier = EpisodeVerifier(writer, **kwargs)
    try:
        await submit(verifier)
    finally:
        await verifier.close()
        await writer.close()
    with Storage(db, readonly=True) as storage:
        return storage.events(VERDICT_EVENT)


def test_a_real_upload_of_a_real_episode_matches(tmp_path: Path) -> None:
    steps = record(gatherers, seed=11, frames=450, max_steps=450)
    assert len(steps) == 450

    async def submit(verifier: EpisodeVerifier) -> None:
        verifier.submit(scene(), "P1", key(), upload_of(steps, 11))

    [event] = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit))
    assert event.kind == VERDICT_EVENT and event.participant_id == "P1" and event.scene_id == "solo"
    assert event.game_id == "P1"
    data = event.data
    assert data["status"] == "match" and data["match"] is True and data["verified"] is True
    assert data["steps"] == data["replayed"] == 450 and data["first_mismatch"] is None
    assert data["episode"] == key() and data["hash_seed"] == PYTHON_HASH_SEED
    assert data["replay_s"] > 0 and data["wait_s"] >= data["replay_s"]


def test_a_tampered_reward_and_a_forged_early_termination_do_not_match_and_name_the_step(tmp_path: Path) -> None:
    steps = record(gatherers, seed=12, frames=60, max_steps=60)
    tampered = copy.deepcopy(steps)
    tampered[17]["rewards"]["agent_0"] += 3.0
    # A hostile page's one-step episode: every agent "terminated" at once, uploaded as complete.
    forged = [dict(copy.deepcopy(steps[0]), terminated={a: True for a in AGENTS})]

    async def submit(verifier: EpisodeVerifier) -> None:
        verifier.submit(scene(60), "P1", key("P1"), upload_of(tampered, 12, 60, "P1"))
        verifier.submit(scene(60), "P2", key("P2"), upload_of(forged, 12, 60, "P2"))

    events = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit))
    by_participant = {e.participant_id: e.data for e in events}
    reward = by_participant["P1"]
    assert reward["status"] == "mismatch" and reward["match"] is False and reward["total_mismatches"] == 1
    assert reward["first_mismatch"] == {"t": 17, "what": "rewards", "agent": "agent_0",
                                        "recorded": steps[17]["rewards"]["agent_0"] + 3.0,
                                        "replayed": steps[17]["rewards"]["agent_0"]}
    early = by_participant["P2"]
    assert early["status"] == "mismatch" and early["steps"] == 1
    assert early["first_mismatch"]["t"] == 0 and early["first_mismatch"]["what"] == "terminated"
    assert early["first_mismatch"]["recorded"] is True and early["first_mismatch"]["replayed"] is False


def test_a_busy_verifier_records_busy_and_never_blocks(tmp_path: Path) -> None:
    steps = record(gatherers, seed=13, frames=450, max_steps=450)
    upload = upload_of(steps, 13)
    timings: dict[str, Any] = {}

    async def submit(verifier: EpisodeVerifier) -> None:
        started = time.perf_counter()
        for participant in ("P1", "P2", "P3"):
            verifier.submit(scene(), participant, key(participant), upload)
        timings["submit_s"] = time.perf_counter() - started
        timings["pending"] = verifier.pending
        timings["stats"] = verifier.stats

    events = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit, max_pending=1))
    statuses = {e.participant_id: e.data["status"] for e in events}
    assert statuses == {"P1": "match", "P2": "busy", "P3": "busy"}
    assert all(e.data["verified"] is False and e.data["match"] is None for e in events if e.participant_id != "P1")
    assert timings["pending"] == 1  # the first replay was still queued or running when submit returned
    assert timings["submit_s"] < 1.0  # sanity bound: submit only schedules (a replay runs in another process)
    assert timings["stats"].busy == 2 and timings["stats"].submitted == 3


def test_the_event_loop_stays_responsive_while_replays_run(tmp_path: Path) -> None:
    steps = record(gatherers, seed=14, frames=450, max_steps=450)
    upload = upload_of(steps, 14)
    lags: list[float] = []

    async def submit(verifier: EpisodeVerifier) -> None:
        for participant in ("P1", "P2", "P3", "P4"):
            verifier.submit(scene(), participant, key(participant), upload)
        while verifier.pending:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    events = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit, max_pending=4))
    assert [e.data["status"] for e in events] == ["match"] * 4
    replaying_s = sum(e.data["replay_s"] for e in events)
    assert len(lags) > 10  # the loop kept running while four 450-step replays took their time
    assert max(lags) < 0.5, (max(lags), replaying_s)  # generous sanity bound, not a performance figure


def test_a_crashing_worker_gives_an_error_verdict_and_the_next_upload_is_verified(tmp_path: Path) -> None:
    steps = record(gatherers, seed=15, frames=30, max_steps=30)

    async def submit(verifier: EpisodeVerifier) -> None:
        verifier.submit(scene(30, make_exiting_env), "P1", key("P1"), upload_of(steps, 15, 30, "P1"))
        while verifier.pending:
            await asyncio.sleep(0.01)
        verifier.submit(scene(30), "P2", key("P2"), upload_of(steps, 15, 30, "P2"))

    events = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit))
    by_participant = {e.participant_id: e.data for e in events}
    assert by_participant["P1"]["status"] == "error" and by_participant["P1"]["verified"] is False
    assert "BrokenProcessPool" in by_participant["P1"]["error"]
    assert by_participant["P2"]["status"] == "match"


def test_an_upload_after_close_is_not_verified_and_nothing_raises(tmp_path: Path) -> None:
    steps = record(gatherers, seed=16, frames=20, max_steps=20)

    async def main() -> EpisodeVerifier:
        writer = DataWriter(tmp_path / "d.sqlite", experiment_id="exp")
        await writer.start()
        verifier = EpisodeVerifier(writer)
        await verifier.close()
        verifier.submit(scene(20), "P1", key(), upload_of(steps, 16, 20))
        await verifier.close()
        await writer.close()
        return verifier

    verifier = asyncio.run(main())
    assert verifier.stats.submitted == 0 and verifier.pending == 0


def test_the_same_upload_twice_at_once_gets_two_verdicts(tmp_path: Path) -> None:
    steps = record(gatherers, seed=17, frames=50, max_steps=50)
    upload = upload_of(steps, 17, 50)

    async def submit(verifier: EpisodeVerifier) -> None:
        verifier.submit(scene(50), "P1", key(), upload)
        verifier.submit(scene(50), "P1", key(), upload)  # a retried upload: stored again, verified again

    events = asyncio.run(verdicts_after(tmp_path / "d.sqlite", submit))
    assert [e.data["status"] for e in events] == ["match", "match"]
    assert events[0].data["submitted_at"] <= events[1].data["submitted_at"]
