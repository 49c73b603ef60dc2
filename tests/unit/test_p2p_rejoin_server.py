"""p2p rejoin on the server: who may rejoin, parity over the pieces of a rejoined player, the gap data."""

from __future__ import annotations

from typing import Any

from interactive_gym.server.modes.p2p_gaps import GAP_CONTROLLER, flag_gap_steps, rejoin_source
from interactive_gym.server.pyodide_game_coordinator import PyodideGameCoordinator
from interactive_gym.server.storage_records import StepRecord
from interactive_gym.server.upload_validation import UploadRejected, UploadRules, validate_episode_upload

RULES = UploadRules(scene_id="duo", num_episodes=1, max_steps=10, agent_ids=("agent_0", "agent_1"), seeds=(7,),
                    bundle_hash="h")


def step(t: int, reward: float = 0.0) -> dict[str, Any]:
    return {"t": t, "keys": {}, "actions": {"agent_0": 0, "agent_1": 0}, "rewards": {"agent_0": reward},
            "terminated": {}, "truncated": {}, "checksum": None}


def upload(steps: list[dict[str, Any]], **extra: Any) -> Any:
    payload = {"scene_id": "duo", "episode": 0, "seed": 7, "bundle_hash": "h", "partial": True,
               "end_reason": "partner_left", "steps": steps, **extra}
    return validate_episode_upload(payload, participant_id="p", participant_scene_id="duo", rules=RULES)


def test_uploads_may_start_at_first_t_and_list_gaps() -> None:
    ok = upload([step(4), step(5)], first_t=4, gaps=[{"agent": "agent_1", "from_t": 1, "to_t": 3}])
    assert not isinstance(ok, UploadRejected) and ok.first_t == 4 and ok.gaps[0]["to_t"] == 3
    for bad in [dict(first_t=4, steps=[step(0)]), dict(first_t=10), dict(first_t=-1), dict(first_t=True),
                dict(gaps=[{"agent": "nobody", "from_t": 0, "to_t": 1}]),
                dict(gaps=[{"agent": "agent_1", "from_t": 3, "to_t": 1}]),
                dict(gaps=[{"agent": "agent_1", "from_t": 0, "to_t": 10}]), dict(gaps="all")]:
        steps = bad.pop("steps", [step(0)])
        assert isinstance(upload(steps, **bad), UploadRejected), bad
    browser = UploadRules(**{**RULES.__dict__, "scene_index": 0, "attempts_issued_at": (0.0,)})
    refused = validate_episode_upload({"scene_id": "duo", "episode": 0, "seed": 7, "bundle_hash": "h",
                                       "partial": True, "end_reason": "page_closed", "steps": [step(3)],
                                       "first_t": 3, "scene_index": 0, "attempt": 1},
                                      participant_id="p", participant_scene_id="duo", rules=browser)
    assert isinstance(refused, UploadRejected) and "p2p" in refused.message


def test_a_new_page_rejoins_only_while_a_partner_can_send_the_game() -> None:
    coord = PyodideGameCoordinator()
    game = coord.create_game("duo", [("a", "sa"), ("b", "sb")], ["agent_0", "agent_1"], now=0.0, seed=1)
    coord.disconnected("b", 1.0)
    assert coord.rejoin("b", "sb2") == (game, 1, 0)
    assert game.sids[1] == "sb2" and game.rejoining == {1} and coord.member_of("sb2") == (game.game_id, 1)
    assert coord.rejoin("b", "sb3") == (game, 1, 0)  # the event twice: the same answer
    coord.disconnected("a", 2.0)
    assert coord.rejoin("b", "sb4") is None  # nobody connected to send the snapshot: left, as before
    lone = coord.create_game("duo", [("c", "sc"), ("d", "sd")], ["agent_0", "agent_1"], now=0.0, seed=1)
    lone.partner_left_sent = True
    assert coord.rejoin("d", "sd2") is None


def test_parity_waits_for_the_rejoined_page_and_compares_the_steps_both_played() -> None:
    coord = PyodideGameCoordinator()
    game = coord.create_game("duo", [("a", "sa"), ("b", "sb")], ["agent_0", "agent_1"], now=0.0, seed=1)
    coord.rejoin("b", "sb2")
    full = [step(t) for t in range(8)]
    assert coord.add_upload(game, 0, "b", full[:3], partial=True) is None  # the old page, on closing
    assert coord.add_upload(game, 0, "a", full, partial=False) is None  # waits for the new page
    verdict = coord.add_upload(game, 0, "b", full[5:], partial=False, rejoined_page=True)
    assert verdict is not None and verdict.agree and verdict.frames_compared == 6  # steps 0-2 and 5-7
    assert coord.pending_verdicts(game) == []
    other = coord.create_game("duo", [("c", "sc"), ("d", "sd")], ["agent_0", "agent_1"], now=0.0, seed=1)
    coord.rejoin("d", "sd2")
    coord.add_upload(other, 0, "d", full[:3], partial=True)
    coord.add_upload(other, 0, "c", [*full[:6], step(6, reward=1.0), full[7]], partial=False)
    assert coord.add_upload(other, 1, "d", [step(0)], partial=True, rejoined_page=True) is None
    ((episode, judged),) = coord.pending_verdicts(other)  # episode 0 waited; its rejoin piece never came
    assert episode == 0 and judged.agree and judged.frames_compared == 3


def test_gap_steps_name_the_gap_controller_and_the_meta_the_participant() -> None:
    steps = [StepRecord(t=t, observation=None, actions={}, rewards={}, terminated={}, truncated={}, info=None,
                        keys={}, server_ts=None, client_ts=None) for t in range(6)]
    flagged, meta = flag_gap_steps(steps, [{"agent": "agent_1", "from_t": 2, "to_t": 3}], {"agent_1": "bob"})
    assert [s.controllers for s in flagged] == [None, None, {"agent_1": GAP_CONTROLLER},
                                                 {"agent_1": GAP_CONTROLLER}, None, None]
    assert meta == [{"agent": "agent_1", "from_t": 2, "to_t": 3, "participant": "bob"}]
    assert rejoin_source("bob", 5) == "bob:rejoined@5"
