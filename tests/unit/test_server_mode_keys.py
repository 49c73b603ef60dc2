"""GameManager: keys reach a running game; keys racing a game's end are ignored quietly, for a few seconds."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.game_manager import ENDED_GAME_KEYS_QUIET_S, GameManager
from interactive_gym.server.participants import Participant

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402

NOT_IN_GAME = "you are not in this game"


def run(coro: Any) -> Any:
    """``asyncio.run`` in a worker thread: in a full test session Playwright's loop owns this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


class FakeWriter:
    def __init__(self) -> None:
        self.statuses: list[str] = []

    async def begin_episode(self, **fields: Any) -> int:
        return len(self.statuses) + 1

    def append_steps(self, episode_id: int, steps: list[Any]) -> None:
        pass

    async def end_episode(self, episode_id: int, *, status: str, meta: dict[str, Any]) -> None:
        self.statuses.append(status)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def scene() -> GymScene:
    width, height = gatherers.canvas_size()
    built = GymScene("orchard", env_creator=gatherers.make_env, render_fn=gatherers.render, width=width,
                     height=height, controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                     policy_mapping={"agent_0": "human", "agent_1": "human"}, max_steps=3, num_episodes=1,
                     fps=60)
    built.check()
    return built


async def play_one_game(clock: Clock) -> tuple[GameManager, list[Participant], str, list[str]]:
    """Two participants play a 3-step game to its end; returns the manager, them, the game id, game-over log."""
    ended: list[str] = []

    async def emit(event: str, data: Any, *, room: str | None = None, to: str | None = None) -> None:
        pass

    async def enter_room(sid: str, room: str) -> None:
        pass

    async def on_game_over(participant_id: str, reason: str, message: str) -> None:
        ended.append(f"{participant_id}:{reason}")
        by_id[participant_id].game_id = None  # as ExperimentServer does

    async def on_wait_timeout(participant_id: str) -> None:
        raise AssertionError("nobody should time out")

    manager = GameManager(emit, FakeWriter(), enter_room, on_game_over, on_wait_timeout, clock=clock)
    the_scene = scene()
    people = [Participant(pid, {}, [the_scene], tab_id="t", sid=f"sid-{pid}") for pid in ("alice", "bob")]
    by_id = {p.participant_id: p for p in people}
    for person in people:
        await manager.join(person, the_scene, now=0.0, lookup=by_id.get)
    game_id = people[0].game_id
    assert game_id is not None and game_id in manager.runners
    # Keys reach the running game.
    assert manager.set_keys(people[0], game_id, ["ArrowUp"], 1) is None
    assert manager.runners[game_id].game.inputs["agent_0"].held == ["ArrowUp"]
    for _ in range(500):
        if len(ended) == 2:
            break
        await asyncio.sleep(0.01)
    await manager.shutdown()
    return manager, people, game_id, ended


def test_keys_just_after_the_end_are_ignored_quietly_then_refused() -> None:
    clock = Clock()

    async def main() -> list[str | None]:
        manager, (alice, bob), game_id, ended = await play_one_game(clock)
        assert sorted(ended) == ["alice:complete", "bob:complete"]
        replies = [manager.set_keys(alice, game_id, ["ArrowUp"], 2), manager.set_keys(bob, game_id, [], 9)]
        clock.now += ENDED_GAME_KEYS_QUIET_S - 0.1
        replies.append(manager.set_keys(alice, game_id, [], 3))
        clock.now += 0.2
        replies.append(manager.set_keys(alice, game_id, [], 4))
        return replies

    assert run(main()) == [None, None, None, NOT_IN_GAME]


def test_only_the_ended_games_players_are_quiet() -> None:
    clock = Clock()

    async def main() -> list[str | None]:
        manager, (alice, _), game_id, _ = await play_one_game(clock)
        stranger = Participant("eve", {}, [scene()], tab_id="t", sid="sid-eve")
        return [manager.set_keys(stranger, game_id, [], 1), manager.set_keys(alice, "g-never-existed", [], 1)]

    assert run(main()) == [NOT_IN_GAME, NOT_IN_GAME]
