"""Replay: a recorded episode re-runs identically in CPython; tampering or nondeterminism is reported."""

from __future__ import annotations

import asyncio
import random
import sys
from pathlib import Path

import pytest

from interactive_gym.browser.host import BrowserGameHost
from interactive_gym.cli import main
from interactive_gym.controls import KeyMapping
from interactive_gym.rendering import Surface
from interactive_gym.replay import replay_episode
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.upload_validation import (
    UploadRules,
    episode_write_kwargs,
    validate_episode_upload,
)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
MAPPING = KeyMapping({"ArrowUp": 1, "ArrowDown": 2, "ArrowLeft": 3, "ArrowRight": 4}, default_action=0)


@pytest.fixture
def gatherers(monkeypatch):
    monkeypatch.syspath_prepend(str(DEMO))
    import gatherers as module

    return module


def record(gatherers, seed=21, frames=30, max_steps=25, env_kwargs=None):
    width, height = gatherers.canvas_size()
    host = BrowserGameHost(
        env_factory=gatherers.make_env, render_fn=gatherers.render, env_kwargs=env_kwargs or {},
        agents={"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "fn": gatherers.greedy_policy}},
        key_mapping=MAPPING, surface=Surface(width, height), max_steps=max_steps,
    )
    host.reset(seed)
    rng = random.Random(seed)
    keys = ["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight"]
    for _ in range(frames):
        if host.episode_over:
            break
        host.frame(rng.choice(keys + [""]))
    return host.steps


def test_a_recorded_episode_reproduces(gatherers) -> None:
    steps = record(gatherers)
    report = replay_episode(gatherers.make_env, {}, 21, steps, max_steps=25)
    assert report.match, report.summary()
    assert report.steps == 25
    assert "all 25 steps match" in report.summary()


def test_a_changed_reward_or_termination_or_observation_is_reported(gatherers) -> None:
    steps = record(gatherers)
    steps[5]["rewards"]["agent_1"] += 1
    steps[7]["terminated"]["agent_0"] = True
    steps[9]["observation"]["agent_0"][0] += 1
    report = replay_episode(gatherers.make_env, {}, 21, steps, max_steps=25)
    assert not report.match
    found = {(m.t, m.what, m.agent) for m in report.mismatches}
    assert found == {(5, "rewards", "agent_1"), (7, "terminated", "agent_0"), (9, "observation", None)}


def test_the_wrong_seed_or_kwargs_do_not_reproduce(gatherers) -> None:
    steps = record(gatherers, frames=60, max_steps=60)
    assert not replay_episode(gatherers.make_env, {}, 22, steps, max_steps=60).match
    assert not replay_episode(gatherers.make_env, {"num_fruits": 4}, 21, steps, max_steps=60).match


class Noisy:
    """Uses the global RNG instead of a seeded one: the classic nondeterminism bug."""

    possible_agents = ["a"]

    def reset(self, seed=None, options=None):
        return {"a": 0}, {"a": {}}

    def step(self, actions):
        return {"a": 0}, {"a": random.random()}, {"a": False}, {"a": False}, {"a": {}}


def make_noisy() -> Noisy:
    return Noisy()


class Crashing(Noisy):
    def __init__(self) -> None:
        self.calls = 0

    def step(self, actions):
        self.calls += 1
        if self.calls == 2:
            raise ValueError("boom")
        return {"a": 0}, {"a": 0.5}, {"a": False}, {"a": False}, {"a": {}}


def make_crashing() -> Crashing:
    return Crashing()


def test_nondeterministic_envs_are_caught_and_a_crashing_step_is_reported() -> None:
    steps = [{"t": t, "actions": {"a": 0}, "rewards": {"a": 0.5}, "terminated": {"a": False},
              "truncated": {"a": False}} for t in range(3)]
    report = replay_episode(make_noisy, {}, 1, steps)
    assert report.total_mismatches == 3
    report = replay_episode(make_crashing, {}, 1, steps)
    assert [(m.t, m.what) for m in report.mismatches] == [(1, "error")]
    assert "ValueError: boom" in report.summary()


def test_mismatch_listing_is_bounded(gatherers) -> None:
    steps = record(gatherers, frames=60, max_steps=60)
    for s in steps:
        s["rewards"]["agent_0"] = 99.0
    report = replay_episode(gatherers.make_env, {}, 21, steps, max_steps=60)
    assert report.total_mismatches == 60 and len(report.mismatches) == 20
    assert "and 40 more" in report.summary()


def store(db: Path, gatherers, steps, seed=21, partial=False, participant="P7") -> None:
    config = {"scene_id": "solo", "fps": 30, "max_steps": 25, "num_episodes": 1, "seeds": [seed],
              "bundle": {"hash": "h" * 64, "factory": "gatherers:make_env", "render": "gatherers:render",
                         "env_kwargs": {}},
              "agents": {"agent_0": {"kind": "human"}, "agent_1": {"kind": "python", "ref": "gatherers:greedy_policy"}}}
    rules = UploadRules("solo", 1, 25, ("agent_0", "agent_1"), (seed,), "h" * 64)
    upload = validate_episode_upload(
        {"scene_id": "solo", "episode": 0, "seed": seed, "bundle_hash": "h" * 64, "partial": partial,
         "steps": steps}, participant_id=participant, participant_scene_id="solo", rules=rules)
    kwargs = episode_write_kwargs(upload, config, received_at=1.0)

    async def write() -> None:
        writer = DataWriter(db, experiment_id="exp")
        await writer.start()
        await writer.write_episode(**kwargs)
        await writer.close()

    asyncio.run(write())


def test_cli_replays_from_the_database(gatherers, tmp_path, capsys, monkeypatch) -> None:
    db = tmp_path / "data.sqlite"
    steps = record(gatherers)
    store(db, gatherers, steps)
    monkeypatch.chdir(DEMO)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(DEMO)])
    assert main(["replay", str(db), "--participant", "P7", "--episode", "0"]) == 0
    out = capsys.readouterr().out
    assert "reproduced: all 25 steps match" in out and "seed 21" in out

    tampered = tmp_path / "tampered.sqlite"
    steps[3]["rewards"]["agent_0"] = 5.0
    store(tampered, gatherers, steps)
    assert main(["replay", str(tampered), "--participant", "P7", "--episode", "0"]) == 1
    assert "step 3 agent agent_0: rewards recorded 5.0" in capsys.readouterr().out


def test_cli_usage_errors_are_one_line(gatherers, tmp_path, capsys) -> None:
    assert main(["replay", str(tmp_path / "none.sqlite"), "--participant", "P", "--episode", "0"]) == 2
    assert "database not found" in capsys.readouterr().err
    db = tmp_path / "data.sqlite"
    store(db, gatherers, record(gatherers))
    assert main(["replay", str(db), "--participant", "nobody", "--episode", "0"]) == 2
    assert "no episode 0 of participant 'nobody'" in capsys.readouterr().err


def test_a_recording_that_goes_on_after_the_episode_ended_is_reported(gatherers) -> None:
    steps = record(gatherers, frames=25, max_steps=25)
    longer = steps + [dict(steps[-1], t=25)]
    report = replay_episode(gatherers.make_env, {}, 21, longer, max_steps=25)
    assert [(m.t, m.what, m.recorded, m.replayed) for m in report.mismatches] == [(25, "length", 26, 25)]
    assert report.replayed == 25 and report.to_dict()["first_mismatch"]["what"] == "length"


class GlobalDraws(Noisy):
    """Draws from Python's global generator after reset: reproducible only when that generator was seeded."""

    def step(self, actions):
        return {"a": 0}, {"a": float(random.randrange(1000))}, {"a": False}, {"a": False}, {"a": {}}


def make_global_draws() -> GlobalDraws:
    return GlobalDraws()


def test_p2p_replays_seed_the_global_generator_as_peers_do_and_restore_it() -> None:
    random.seed(99)
    steps = []
    for t in range(5):
        if t == 0:
            random.seed(7)  # what every p2p peer does before reset(seed=7)
        steps.append({"t": t, "actions": {"a": 0}, "rewards": {"a": float(random.randrange(1000))},
                      "terminated": {"a": False}, "truncated": {"a": False}})
    outside = random.getstate()
    assert replay_episode(make_global_draws, {}, 7, steps, seed_global_random=True).match
    assert not replay_episode(make_global_draws, {}, 7, steps).match
    assert random.getstate() == outside  # the replay leaves the caller's global generator as it was


def make_broken() -> Noisy:
    raise RuntimeError("no env today")


def test_an_env_that_cannot_be_built_and_a_missing_agent_value_are_reported() -> None:
    report = replay_episode(make_broken, {}, 1, [{"t": 0, "actions": {}, "rewards": {}, "terminated": {},
                                                  "truncated": {}}])
    assert [(m.t, m.what) for m in report.mismatches] == [(0, "error")] and report.replayed == 0
    assert "RuntimeError: no env today" in report.summary()
    steps = [{"t": 0, "actions": {"a": 0}, "rewards": {}, "terminated": {"a": False}, "truncated": {"a": False}}]
    report = replay_episode(make_crashing, {}, 1, steps)
    assert [(m.what, m.agent, m.recorded, m.replayed) for m in report.mismatches] == [("rewards", "a", None, 0.5)]
