"""P2PMode without sockets: GymScene(seed=) is honoured, a hidden waiter who returns is matched, a game that
cannot start puts its group back in the queue, and pages never learn their partner's id."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from interactive_gym import EndScene, GymScene, RemoteConfig, Stager
from interactive_gym.server.browser_scenes import BrowserScenes
from interactive_gym.server.flow.participants import Participant
from interactive_gym.server.modes.p2p_mode import P2PMode

DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"
if str(DEMO_DIR) not in sys.path:
    sys.path.insert(0, str(DEMO_DIR))

import gatherers  # noqa: E402
from mode_fakes import FakeHooks, FakeSio, FakeWebrtc, run  # noqa: E402


class FakeWriter:
    async def record_event(self, *args: Any, **kwargs: Any) -> None:
        pass


def setup(seed: int | None = 100, env_creator: Any = gatherers.make_env) -> tuple[P2PMode, GymScene, FakeHooks, FakeSio,
                                                                                  dict[str, Participant]]:
    width, height = gatherers.canvas_size()
    scene = GymScene("duo", env_creator=env_creator, render_fn=gatherers.render, width=width, height=height,
                     controls={"ArrowUp": gatherers.UP}, default_action=gatherers.STAY,
                     policy_mapping={"agent_0": "human", "agent_1": "human"}, mode="p2p", seed=seed,
                     max_steps=5, num_episodes=2, waiting_room_timeout_s=30)
    config = RemoteConfig().experiment("p2p_unit", stager=Stager([scene, EndScene("end")]))
    config.validate()
    people = {pid: Participant(pid, {}, [scene], tab_id=pid, sid=f"sid-{pid}") for pid in ("ann", "bob", "cy", "di")}
    sio = FakeSio()
    hooks = FakeHooks(people, sio)
    mode = P2PMode(sio, FakeWriter(), BrowserScenes(config), FakeWebrtc(), hooks)
    return mode, scene, hooks, sio, people


def test_seed_gives_each_game_its_own_reproducible_seed() -> None:
    async def main() -> list[int]:
        mode, scene, _, sio, people = setup(seed=100)
        for pid in ("ann", "bob", "cy", "di"):
            await mode.join(people[pid], scene, None)
        return [sio.to(f"sid-{pid}", "pyodide_game_ready")[0]["seed"] for pid in ("ann", "bob", "cy", "di")]

    assert run(main()) == [100, 100, 101, 101]


def test_pages_learn_indices_never_partner_ids() -> None:
    async def main() -> list[dict[str, Any]]:
        mode, scene, _, sio, people = setup()
        for pid in ("ann", "bob"):
            await mode.join(people[pid], scene, None)
        return [sio.to("sid-ann", "pyodide_game_ready")[0], sio.to("sid-bob", "pyodide_game_ready")[0]]

    ann, bob = run(main())
    assert "bob" not in repr(ann) and "ann" not in repr(bob)
    assert {ann["my_player_id"], bob["my_player_id"]} == {0, 1} and ann["players"] == [0, 1]


def test_a_hidden_waiter_who_returns_is_matched() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        mode, scene, _, sio, people = setup()
        ann, bob = people["ann"], people["bob"]
        await mode.join(ann, scene, None)
        ann.visible = False
        await mode.presence_changed(ann)
        await mode.join(bob, scene, None)  # ann is hidden: no game yet
        before = sio.to("sid-bob", "pyodide_game_ready")
        ann.visible = True
        await mode.presence_changed(ann)  # the group forms now
        return before, sio.to("sid-ann", "pyodide_game_ready") + sio.to("sid-bob", "pyodide_game_ready")

    before, after = run(main())
    assert before == [] and len(after) == 2 and after[0]["game_id"] == after[1]["game_id"]


def test_a_waiter_whose_socket_blips_keeps_their_place() -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        mode, scene, _, sio, people = setup()
        ann, bob = people["ann"], people["bob"]
        await mode.join(ann, scene, None)
        ann.sid = None
        await mode.disconnected(ann)
        await mode.join(bob, scene, None)
        waiting = [d for d in sio.to("sid-bob", "waiting")]
        ann.sid = "sid-ann-2"
        await mode.reconnected(ann)
        return waiting, sio.to("sid-ann-2", "pyodide_game_ready")

    waiting, ready = run(main())
    assert waiting[-1]["waiting"] == 2 and waiting[-1]["needed"] == 2  # ann still counted while away
    assert len(ready) == 1


def test_a_game_that_cannot_start_puts_the_group_back_with_a_notice() -> None:
    async def main() -> tuple[list[Any], list[str]]:
        mode, scene, _, sio, people = setup()

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("config failed")

        mode.scene_config = broken  # type: ignore[method-assign]
        await mode.join(people["ann"], scene, None)
        await mode.join(people["bob"], scene, None)
        notices = [d.get("notice") for d in sio.to("sid-ann", "waiting")]
        return notices, mode.rooms.room_for(scene).waiting()

    notices, waiting = run(main())
    assert notices[-1] and "could not start" in notices[-1]
    assert waiting == ["ann", "bob"]  # both queued again, in arrival order
