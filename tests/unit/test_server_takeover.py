"""Server mode with GymScene(on_partner_drop="ai"): a human gone past the grace period is replaced by the policy.

The runner is ticked by a real TickScheduler on a fake clock and stores through a real DataWriter into SQLite,
so the assertions read what the researcher would export.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path
from typing import Any

import pytest

from interactive_gym.envs.agent_runtime import agent_rng
from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.scenes.partner_drop import GAP_CONTROLLER
from interactive_gym.server.data_writer import DataWriter
from interactive_gym.server.game_runner import GameRunner
from interactive_gym.server.remote_game import ServerGame
from interactive_gym.server.storage import Storage
from interactive_gym.server.tick_scheduler import TickScheduler

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

CONTROLS = {"ArrowUp": gatherers.UP, "ArrowDown": gatherers.DOWN, "ArrowLeft": gatherers.LEFT,
            "ArrowRight": gatherers.RIGHT}
FPS = 10
GRACE_S = 1.0
HUMANS = {"agent_0": "alice", "agent_1": "bob"}


def scene(**overrides: Any) -> GymScene:
    width, height = gatherers.canvas_size()
    kwargs: dict[str, Any] = dict(
        env_creator=gatherers.make_env, render_fn=gatherers.render, width=width, height=height, controls=CONTROLS,
        default_action=gatherers.STAY, policy_mapping={"agent_0": "human", "agent_1": "human"}, fps=FPS,
        max_steps=40, num_episodes=2, disconnect_grace_s=GRACE_S, on_partner_drop="ai",
        partner_drop_policy=gatherers.greedy_policy)
    kwargs.update(overrides)
    s = GymScene("orchard", **kwargs)
    s.check()
    return s


def play(tmp_path: Path, game: ServerGame, script: dict[int, list[tuple[str, str]]]) -> tuple[str, Storage, list]:
    """Runs the game to its end; ``script`` maps a tick number to (``"leave"`` | ``"back"``, agent) calls made
    before that tick. Returns the end reason, the opened storage and the emitted events."""
    emitted: list[tuple[str, Any]] = []
    reasons: list[str] = []

    async def emit(event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None:
        emitted.append((event, data))

    async def finished(runner: GameRunner, reason: str) -> None:
        reasons.append(reason)

    async def main() -> None:
        clock = [0.0]
        ticks = [0]
        runner: GameRunner | None = None

        async def sleep(delay: float) -> None:
            clock[0] += delay
            ticks[0] += 1
            assert runner is not None
            for action, agent in script.get(ticks[0], []):
                runner.human_left(agent) if action == "leave" else runner.human_back(agent)
            await asyncio.sleep(0)

        writer = DataWriter(tmp_path / "exp.db", experiment_id="exp", flush_interval_s=0.01)
        await writer.start()
        ticker = TickScheduler(FPS, time=lambda: clock[0], sleep=sleep)
        runner = GameRunner(game, emit, writer, finished, ticker)
        await runner.run()
        await ticker.close()
        await writer.close()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # Playwright may own this thread's loop
        pool.submit(asyncio.run, main()).result()
    (reason,) = reasons
    return reason, Storage(tmp_path / "exp.db", experiment_id="exp"), emitted


def test_a_partner_gone_past_the_grace_is_played_by_the_policy_to_the_end(tmp_path: Path) -> None:
    game = ServerGame("g-1", scene(), HUMANS, game_seed=7)
    reason, storage, emitted = play(tmp_path, game, {3: [("leave", "agent_1")]})
    assert reason == "complete"  # the remaining human played both episodes
    first, second = storage.episodes()
    assert (first.status, second.status) == ("complete", "complete")
    steps = storage.steps(first.id)
    flagged = [s.t for s in steps if s.controllers]
    assert flagged and flagged == list(range(flagged[0], len(steps)))  # every step from the drop on, none before
    taken = [s.t for s in steps if s.controllers == {"agent_1": "ai-takeover:greedy_policy"}]
    start = taken[0]
    assert taken == list(range(start, len(steps)))  # the policy from the takeover to the end ...
    # ... and the default input, flagged as nobody's, from the drop until then.
    assert flagged[0] < start and all(s.controllers == {"agent_1": GAP_CONTROLLER} for s in steps[flagged[0]:start])
    # The policy chose agent_1's actions: greedy_policy of the observation the step was chosen from.
    assert all(s.actions["agent_1"] == gatherers.greedy_policy(s.observation["agent_1"], "agent_1")
               for s in steps[start:])
    assert all("agent_1" not in s.keys for s in steps[start:]) and all("agent_0" in s.keys for s in steps)
    # The grace is measured on the ticker's clock: gone at tick 3, replaced one grace period (10 ticks) later.
    assert 8 <= start <= 14
    assert first.meta["takeovers"] == [{"agent": "agent_1", "participant": "bob", "controller":
                                        "ai-takeover:greedy_policy", "from_t": start, "since_episode": 0}]
    assert second.meta["takeovers"][0]["from_t"] == 0
    assert all(s.controllers == {"agent_1": "ai-takeover:greedy_policy"} for s in storage.steps(second.id))
    (event,) = storage.events("partner_takeover")
    assert (event.participant_id, event.game_id, event.data) == ("bob", "g-1", {
        "agent": "agent_1", "participant": "bob", "controller": "ai-takeover:greedy_policy", "episode": 0,
        "frame": start})
    assert [d for e, d in emitted if e == "partner_takeover"] == [
        {"game_id": "g-1", "agent_id": "agent_1", "episode": 0, "t": start}]
    storage.close()


def test_the_takeover_generator_is_seeded_like_any_ai_agent(tmp_path: Path) -> None:
    def rng_policy(observation: Any, agent_id: str, rng: Any) -> int:
        return rng.randrange(5)

    rng_policy.__module__ = gatherers.__name__  # server mode ships nothing; a local function is fine there
    game = ServerGame("g-2", scene(partner_drop_policy=rng_policy, num_episodes=1), HUMANS, game_seed=3)
    _, storage, _ = play(tmp_path, game, {2: [("leave", "agent_1")]})
    (episode,) = storage.episodes()
    steps = storage.steps(episode.id)
    start = next(s.t for s in steps if s.controllers and s.controllers["agent_1"] != GAP_CONTROLLER)
    rng = agent_rng(episode.seed, "agent_1")
    assert [s.actions["agent_1"] for s in steps[start:]] == [rng.randrange(5) for _ in steps[start:]]
    storage.close()


def test_a_partner_back_within_the_grace_keeps_playing_and_only_the_absence_is_flagged(tmp_path: Path) -> None:
    game = ServerGame("g-3", scene(num_episodes=1), HUMANS, game_seed=1)
    reason, storage, emitted = play(tmp_path, game, {3: [("leave", "agent_1")], 8: [("back", "agent_1")]})
    (episode,) = storage.episodes()
    assert reason == "complete" and "takeovers" not in episode.meta
    flagged = [s for s in storage.steps(episode.id) if s.controllers]
    # The steps played while away had the default input: flagged as nobody's, and only those.
    assert [s.t for s in flagged] == list(range(flagged[0].t, flagged[0].t + len(flagged))) and 3 <= len(flagged) <= 6
    assert all(s.controllers == {"agent_1": GAP_CONTROLLER} and s.keys["agent_1"] == [] for s in flagged)
    assert storage.events("partner_takeover") == [] and "partner_takeover" not in [e for e, _ in emitted]
    storage.close()


def test_every_human_gone_ends_the_game_as_partner_left(tmp_path: Path) -> None:
    game = ServerGame("g-4", scene(), HUMANS, game_seed=1)
    reason, storage, _ = play(tmp_path, game, {3: [("leave", "agent_0"), ("leave", "agent_1")]})
    (episode,) = storage.episodes()
    assert (reason, episode.status) == ("partner_left", "partial")
    steps = storage.steps(episode.id)
    # Both gone from the same tick: every step after it played nobody's input, and says so.
    assert all(s.controllers == {"agent_0": GAP_CONTROLLER, "agent_1": GAP_CONTROLLER}
               for s in steps if s.controllers) and steps[-1].controllers
    storage.close()


def test_the_last_human_leaving_after_a_takeover_ends_the_game(tmp_path: Path) -> None:
    game = ServerGame("g-5", scene(max_steps=200), HUMANS, game_seed=1)
    reason, storage, _ = play(tmp_path, game, {2: [("leave", "agent_1")], 20: [("leave", "agent_0")]})
    (episode,) = storage.episodes()
    assert (reason, episode.status) == ("partner_left", "partial")
    steps = storage.steps(episode.id)
    # agent_0 was never taken over: its steps after it left are the default input until the game ends.
    assert steps[-1].controllers == {"agent_1": "ai-takeover:greedy_policy", "agent_0": GAP_CONTROLLER}
    assert len(storage.events("partner_takeover")) == 1
    storage.close()


def test_keys_and_presence_of_a_taken_over_agent_change_nothing() -> None:
    game = ServerGame("g-6", scene(), HUMANS, game_seed=1)
    game.start_episode()
    assert game.scene.takeover is not None
    record = game.take_over("agent_1", game.scene.takeover)
    assert (record.agent, record.participant, record.t) == ("agent_1", "bob", 0)
    assert game.set_keys("agent_1", ["ArrowUp"], 5) is False
    game.set_connected("agent_1", True)
    assert game.humans_in_control == ["agent_0"]
    with pytest.raises(KeyError, match="not a human agent still played by its participant"):
        game.take_over("agent_1", game.scene.takeover)


def test_on_partner_drop_end_is_todays_behaviour(tmp_path: Path) -> None:
    game = ServerGame("g-7", scene(on_partner_drop="end", partner_drop_policy=None), HUMANS, game_seed=1)
    reason, storage, _ = play(tmp_path, game, {3: [("leave", "agent_1")]})
    (episode,) = storage.episodes()
    assert (reason, episode.status) == ("partner_left", "partial")
    storage.close()
