"""ServerMode: keys reach a running game; keys racing a game's end are ignored quietly, for a few seconds."""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
from pathlib import Path
from typing import Any

from interactive_gym.scenes.gym_scene import GymScene
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.server_mode import ENDED_GAME_KEYS_QUIET_S, ServerMode

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


class FakeSio:
    """Records emits; rooms are no-ops (the tests look at game state, not at what pages receive)."""

    def __init__(self) -> None:
        self.emits: list[tuple[str, Any, str | None, str | None]] = []

    async def emit(self, event: str, data: Any = None, to: str | None = None, room: str | None = None) -> None:
        assert to or room, f"{event} emitted without a target"
        self.emits.append((event, data, to, room))

    async def enter_room(self, sid: str, room: str) -> None:
        pass

    async def leave_room(self, sid: str, room: str) -> None:
        pass


class Hooks:
    """The participant flow's side, as the modes see it: records game-overs instead of moving anyone."""

    def __init__(self, people: dict[str, Participant]) -> None:
        self.people = people
        self.ended: list[str] = []

    def lookup(self, participant_id: str) -> Participant | None:
        return self.people.get(participant_id)

    def game_over(self, participant_id: str, scene_id: str, record: dict[str, str], show: bool) -> None:
        self.ended.append(f"{participant_id}:{record['reason']}")
        person = self.people[participant_id]
        person.last_game_id, person.game_id = person.game_id, None  # as the flow does

    def wait_timeout(self, participant_id: str, scene_id: str) -> None:
        raise AssertionError("nobody should time out")

    async def notify(self, participant: Participant, event: str, data: dict[str, Any]) -> None:
        pass

    async def record_event(self, kind: str, data: dict[str, Any], participant: Any = None, scene_id: Any = None,
                           game_id: Any = None) -> None:
        pass


async def play_one_game(clock: Clock) -> tuple[ServerMode, list[Participant], str, list[str]]:
    """Two participants play a 3-step game to its end; returns the mode, them, the game id, game-over log."""
    the_scene = scene()
    people = [Participant(pid, {}, [the_scene], tab_id="t", sid=f"sid-{pid}") for pid in ("alice", "bob")]
    hooks = Hooks({p.participant_id: p for p in people})
    mode = ServerMode(FakeSio(), FakeWriter(), hooks, clock=clock)
    for person in people:
        await mode.join(person, the_scene)
    game_id = people[0].game_id
    assert game_id is not None and game_id in mode.runners
    # Keys reach the running game.
    assert mode.set_keys(people[0], game_id, ["ArrowUp"], 1) is None
    assert mode.runners[game_id].game.inputs["agent_0"].held == ["ArrowUp"]
    for _ in range(500):
        if len(hooks.ended) == 2:
            break
        await asyncio.sleep(0.01)
    await mode.shutdown()
    return mode, people, game_id, hooks.ended


def test_keys_after_the_end_from_its_players_are_ignored_quietly_however_late() -> None:
    """Found by the capacity benchmark: under load a game-over reached pages up to 18 s late, and each of their
    keys in that time was answered with an error (about 33,000 in one 100-game run)."""
    clock = Clock()

    async def main() -> list[str | None]:
        mode, (alice, bob), game_id, ended = await play_one_game(clock)
        assert sorted(ended) == ["alice:complete", "bob:complete"]
        replies = [mode.set_keys(alice, game_id, ["ArrowUp"], 2), mode.set_keys(bob, game_id, [], 9)]
        # Before the participant's own record of the end is set (it is set on their queue): the ended-games record.
        alice.last_game_id = None
        clock.now += ENDED_GAME_KEYS_QUIET_S - 0.1
        replies.append(mode.set_keys(alice, game_id, [], 3))
        clock.now += 0.2
        replies.append(mode.set_keys(alice, game_id, [], 4))
        alice.last_game_id = game_id
        clock.now += 60
        replies += [mode.set_keys(alice, game_id, [], 5), mode.set_keys(bob, game_id, [], 10)]
        return replies

    assert run(main()) == [None, None, None, NOT_IN_GAME, None, None]


def test_only_the_ended_games_players_are_quiet() -> None:
    clock = Clock()

    async def main() -> list[str | None]:
        mode, (alice, _), game_id, _ = await play_one_game(clock)
        stranger = Participant("eve", {}, [scene()], tab_id="t", sid="sid-eve")
        return [mode.set_keys(stranger, game_id, [], 1), mode.set_keys(alice, "g-never-existed", [], 1)]

    assert run(main()) == [NOT_IN_GAME, NOT_IN_GAME]
